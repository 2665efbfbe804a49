"""CUDA: the WaveRNN step loop as one persistent kernel per chunk (csrc/cuda/wavernn_persistent.cuh).

Design (issue 5): the weights (R2: 3.9 M, 7.9 MB in fp16) are spread by output rows over a chain
of blocks, one per SM, each keeping its rows in shared memory for the whole chunk: block b owns a
range of GRU units (their r, z, n rows of both GRUs' matrices, so the GRU updates are local) and
ranges of fc1, fc2, fc3 rows. Per step the chain runs five all-gathers ([h1' | x1], [h2' | x2],
fc1, fc2, logits) through step-stamped release/acquire flags; the recurrent products W_hh h for
the next step are computed while a gather is under way; every block samples the gathered logits
with the float64 rule, so all agree on x without another broadcast. M streams (up to 4) share a
chain in lockstep; chains run side by side in one cooperative launch.

The step-independent projections are hoisted per chunk exactly as the eager loop does
(models/wavernn/runtime.py `_Step.hoist`). `emulate=True` runs the same kernel source on the CPU
through the fiber emulator (tests). Reference: the eager step loop (wavernn_persistent_ref below).
Interface of the other WaveRNN loops: new_state(B) -> (h1, h2, x); run_chunk(mel_up [B, n, C],
aux [B, n, 4A], state, noise= | teacher=) -> (samples [B, n], classes or None) or logits [B, n, OUT].
"""
from __future__ import annotations

import torch

from ._persistent import TAGS, WTYPES, PhaseProfile, Scratch, check_tensor, ext, launch_groups, pad8, stream_handle

MAX_STREAMS_PER_CHAIN = 4
# the profile's phases (csrc/cuda/wavernn_persistent_params.h, Phase), per step: the GRU1 input,
# each stage's product and publish, the next step's recurrent products (thread 0's share), and
# over the five gathers the waits for the other blocks and the reads of their slices
PHASES = ("input", "gru1", "gru2", "fc1", "recurrent", "fc2", "fc3", "wait", "read", "sample")
NPHASE = 10


class WaveRNNPersistentLoop:
    def __init__(self, model, dtype=None, emulate: bool = False, smem_budget: int | None = None,
                 streams_per_chain: int | None = None, threads: int = 256, seed: int = 0,
                 min_blocks: int = 1, max_blocks: int | None = None, profile: bool = False):
        from ..models.wavernn.runtime import _Step

        cfg = model.config
        p = next(model.parameters())
        dtype = p.dtype if dtype is None else dtype
        if dtype not in WTYPES:
            raise ValueError(f"weight dtype must be float32, float16 or bfloat16, got {dtype}")
        self.emulate, self.ext = emulate, ext(emulate)
        self.device = torch.device("cpu") if emulate else p.device
        if not emulate and self.device.type != "cuda":
            raise ValueError("the CUDA WaveRNN loop needs the model on a CUDA device")
        if streams_per_chain is not None and not 1 <= streams_per_chain <= MAX_STREAMS_PER_CHAIN:
            raise ValueError(f"streams_per_chain must be in [1, {MAX_STREAMS_PER_CHAIN}]")
        self.model, self.cfg, self.st = model, cfg, _Step(model)
        self.wtype, self.threads, self.seed, self.M_fixed = WTYPES[dtype], int(threads), int(seed), streams_per_chain
        R, F, OUT = cfg.rnn_dims, cfg.fc_dims, cfg.n_classes
        Rp, Fp, OUTp = pad8(R), pad8(F), pad8(OUT)
        st = self.st
        f32 = dict(device=self.device, dtype=torch.float32)

        def rows(w, width):  # [n, k] -> [n, width] zero-padded
            out = torch.zeros(w.shape[0], width, **f32)
            out[:, :w.shape[1]] = w.detach().to(**f32)
            return out

        def gru(w):  # [3R, R] (gates r, z, n stacked) -> [R, 3, Rp]: unit j's three rows together
            return rows(w, Rp).view(3, R, Rp).transpose(0, 1).contiguous()

        def bias3(b):  # [3R] -> [R, 3]
            return b.detach().to(**f32).view(3, R).t().contiguous()

        with torch.no_grad():
            mats = dict(w_ih1=gru(st.w_ih1), w_hh1=gru(st.w_hh1), w_ih2=gru(st.w_ih2_x), w_hh2=gru(st.w_hh2),
                        w_f1=rows(st.w_fc1_x, Rp), w_f2=rows(st.w_fc2_x, Fp), w_f3=rows(model.fc3.weight, Fp))
            self.t = {k: v.to(dtype).contiguous() for k, v in mats.items()}
            self.t.update(b_ih1=bias3(st.b_ih1), b_hh1=bias3(st.b_hh1), b_hh2=bias3(st.b_hh2),
                          b_f3=model.fc3.bias.detach().to(**f32).contiguous(), w_ix=st.w_I_x.detach().to(**f32).contiguous())
        mode = cfg.mode_index
        self.base = dict(R=R, Rp=Rp, F=F, Fp=Fp, OUT=OUT, OUTp=OUTp, mode=mode, nz=2 if mode == 1 else 1,
                         n_mix=cfg.n_mix if mode == 1 else 1, log_scale_min=float(cfg.log_scale_min))
        self.base.update({k: v.data_ptr() for k, v in self.t.items()})
        if smem_budget is None:
            smem_budget = 227 * 1024 if emulate else int(self.ext.device_properties(self.device.index or 0)["smem_per_block_optin"])
        self.smem_budget = int(smem_budget)
        if max_blocks is None:
            max_blocks = 132 if emulate else int(self.ext.device_properties(self.device.index or 0)["sm_count"])
        self.min_blocks, self.max_blocks = int(min_blocks), int(max_blocks)
        self._scratch = Scratch(self.device)
        # profile=True: every launch also sums clock ticks per phase and block (profile_report())
        self.profile = bool(profile)
        self.reset_profile()

    def reset_profile(self):
        self._prof = PhaseProfile(NPHASE)

    def profile_report(self) -> dict:
        """Mean clock ticks per step (of one chain) and phase since the last reset_profile():
        {"blocks": [per block {phase: ticks}], "samples": n}. Ticks are SM cycles on a GPU; the
        emulator only counts calls."""
        t = self._prof.means()
        return {"blocks": [{ph: t[b, i].item() for i, ph in enumerate(PHASES)} for b in range(t.shape[0])],
                "samples": self._prof.samples}

    def plan(self, B: int, M: int) -> dict:
        """nblk (blocks per chain), wsmem, smem (bytes per block), nchains, buffer sizes."""
        lo, hi = self._blocks(M)
        return self.ext.wavernn_persistent_plan(self._dict(B, M), self.smem_budget, self.wtype, lo, hi)

    def _dict(self, B, M):
        d = dict(self.base, B=B, M=M, Tc=1, teacher=0, tag=0)
        for k in ("pre_I", "pre_2", "pre_f1", "pre_f2", "h1", "h2", "x", "noise", "teacher_in", "out", "cls",
                  "logits", "xbuf", "flags"):
            d[k] = 0
        return d

    def _blocks(self, M):
        """(min, max) blocks per chain for M streams: with several streams, exactly the blocks of one
        stream per chain, so each GRU unit is reduced the same way (a stream's result does not
        depend on how many streams share its chain; only where the weights live may change)."""
        if M == 1:
            return self.min_blocks, self.max_blocks
        n = self.ext.wavernn_persistent_plan(self._dict(1, 1), self.smem_budget, self.wtype, self.min_blocks,
                                             self.max_blocks)["nblk"]
        return n, n

    def _groups(self, B: int):
        M = min(self.M_fixed or 1, B)
        pl = self.plan(B, M)
        if self.emulate:
            return M, pl, pl["nchains"]
        fit = self.ext.wavernn_persistent_max_blocks(self.wtype, M, self.threads, pl["smem"]) // pl["nblk"]
        if self.M_fixed is None and B > fit >= 1:  # more streams than chains: share chains
            M = min(MAX_STREAMS_PER_CHAIN, B)
            pl = self.plan(B, M)
            fit = self.ext.wavernn_persistent_max_blocks(self.wtype, M, self.threads, pl["smem"]) // pl["nblk"]
        if fit < 1:
            raise RuntimeError(f"one chain of the WaveRNN kernel needs {pl['nblk']} resident blocks with "
                               f"{pl['smem']} bytes of shared memory each; this GPU cannot hold them at once")
        return M, pl, fit

    def new_state(self, B: int):
        z = dict(device=self.device, dtype=torch.float32)
        return torch.zeros(B, self.cfg.rnn_dims, **z), torch.zeros(B, self.cfg.rnn_dims, **z), torch.zeros(B, **z)

    def _check(self, t, name, shape):
        check_tensor(t, name, shape, self.device)

    @torch.inference_mode()
    def run_chunk(self, mel_up, aux, state, noise=None, teacher=None):
        cfg, A, R = self.cfg, self.cfg.aux_dims, self.cfg.rnn_dims
        if not isinstance(mel_up, torch.Tensor) or mel_up.ndim != 3 or not isinstance(aux, torch.Tensor) or aux.ndim != 3:
            raise ValueError("mel_up must be [B, n, C] and aux [B, n, 4A]")
        B, Tc = mel_up.shape[:2]
        if tuple(aux.shape) != (B, Tc, 4 * A) or mel_up.shape[2] != cfg.n_mels:
            raise ValueError(f"mel_up must be [B, n, {cfg.n_mels}] and aux [B, n, {4 * A}], got "
                             f"{tuple(mel_up.shape)} and {tuple(aux.shape)}")
        h1, h2, x = state
        for t, name, shape in ((h1, "h1", (B, R)), (h2, "h2", (B, R)), (x, "x", (B,))):
            self._check(t, name, shape)
        bs = self.base
        out = torch.empty(B, Tc, device=self.device, dtype=torch.float32)
        cls = torch.empty(B, Tc, device=self.device, dtype=torch.int64) if (cfg.mode == "RAW" and teacher is None) else None
        logits = torch.empty(B, Tc, bs["OUT"], device=self.device, dtype=torch.float32) if teacher is not None else None
        if teacher is not None:
            self._check(teacher, "teacher", (B, Tc))
            if ((teacher < -1) | (teacher > 1)).any():
                raise ValueError("teacher inputs must be samples in [-1, 1]")
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            noise = noise.reshape(B, Tc, bs["nz"]).float().contiguous() if noise.numel() == B * Tc * bs["nz"] else noise
            self._check(noise, "noise", (B, Tc, bs["nz"]))
        if Tc == 0:
            return logits if teacher is not None else (out, cls)
        dt = self.st.w_I_c.dtype
        dev_in = self.st.w_I_c.device
        mel_up, aux = mel_up.to(dev_in, dt), aux.to(dev_in, dt)
        cond = [mel_up] + [aux[..., i * A:(i + 1) * A] for i in range(4)]
        pre = [t.to(self.device, torch.float32).contiguous() for t in self.st.hoist(self.model, cond)]
        for t, name in zip(pre, ("pre_I", "pre_2", "pre_f1", "pre_f2")):
            if not torch.isfinite(t).all():
                raise ValueError(f"the conditioning gives NaN or infinity ({name})")
        M, pl, fit = self._groups(B)
        for g0, g1, nch in launch_groups(B, M, fit):
            nb = g1 - g0
            xbuf = self._scratch.get("xbuf", nch * 5 * M * max(2 * bs["Rp"], bs["Fp"], bs["OUTp"]), torch.float32)
            flags = self._scratch.get("flags", nch * pl["nblk"] * 16, torch.int64)
            d = dict(bs, B=nb, M=M, Tc=Tc, teacher=int(teacher is not None), tag=next(TAGS) << 32,
                     pre_I=pre[0][g0:g1].data_ptr(), pre_2=pre[1][g0:g1].data_ptr(), pre_f1=pre[2][g0:g1].data_ptr(),
                     pre_f2=pre[3][g0:g1].data_ptr(), h1=h1[g0:g1].data_ptr(), h2=h2[g0:g1].data_ptr(),
                     x=x[g0:g1].data_ptr(), noise=noise[g0:g1].data_ptr() if noise is not None else 0,
                     teacher_in=teacher[g0:g1].data_ptr() if teacher is not None else 0, out=out[g0:g1].data_ptr(),
                     cls=cls[g0:g1].data_ptr() if cls is not None else 0,
                     logits=logits[g0:g1].data_ptr() if logits is not None else 0,
                     xbuf=xbuf.data_ptr(), flags=flags.data_ptr())
            prof = self._prof.buffer(nch, pl["nblk"], self.device) if self.profile else None
            if prof is not None:
                d["prof"] = prof.data_ptr()
            lo, hi = self._blocks(M)
            if self.emulate:
                self.ext.wavernn_persistent(d, self.smem_budget, self.wtype, lo, hi, self.threads, self.seed)
            else:
                self.ext.wavernn_persistent(d, self.smem_budget, self.wtype, lo, hi, self.threads,
                                            stream_handle(self.device))
            if prof is not None:
                self._prof.add(prof, nch, pl["nblk"], Tc)
        return logits if teacher is not None else (out, cls)


def wavernn_persistent_ref(model, cond, noise=None, teacher=None):
    """The reference this op must reproduce: the eager step loop."""
    from ..models.wavernn.runtime import run_torch

    return run_torch(model, cond, noise=noise, teacher=teacher)
