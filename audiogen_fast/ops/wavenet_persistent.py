"""CUDA: the WaveNet loop as one persistent kernel per chunk (csrc/cuda/wavenet_persistent.cuh).

Design (issue 5): the weights stay in shared memory for the whole chunk, spread over a chain of
blocks (one per SM): block r owns a run of consecutive layers (as many as fit in its shared
memory), the last block the output stack, the sampler and the input embedding. Each sample's
residual state h [R] goes round the chain through per-block mailboxes announced by
release/acquire flags; each block prepares its layers' conditioning and past-tap products before
the sample reaches it, so only the current tap, the gate and the residual product are on the
critical path; a block sends its layers' skip sum [S] to the output block after passing h on.
Two transports (`transport=`): "l2", mailboxes and flags in global memory (any GPU, cooperative
launch); "dsmem", a chain is one thread-block cluster and a block writes straight into the next
block's shared memory (sm_90; "auto" picks it when a chain fits a portable cluster of 8 blocks). M streams (up to 8) share a chain in lockstep; several chains run side by side in
one cooperative launch (all blocks resident, as the flags require).

This wrapper lays the weights out (padded to multiples of 8, zeros in the padding), checks every
input, plans the blocks, and launches on the current CUDA stream. `emulate=True` runs the same
kernel source on the CPU through the fiber emulator (audiogen_fast._C_cuda_emu, tests only).
The reference it must reproduce is the eager incremental loop (wavenet_persistent_ref, below).
Same interface as the other loops: new_state(B, initial) -> (hist, x); run_chunk(cond, hist, x,
t0, noise= | teacher=) -> samples [B, Tc] (or teacher-forced outputs [B, Tc, OUT]).
"""
from __future__ import annotations

import math

import torch

from ._persistent import TAGS, WTYPES, PhaseProfile, Scratch, check_tensor, ext, launch_groups, pad8, stream_handle

MODES = {"mulaw": 0, "mol": 1, "gaussian": 2}
# the profile's phases (csrc/cuda/wavenet_persistent_params.h, LayerPhase / OutPhase), per sample:
# a layer block gathers its past taps, sums their products, waits for h, reads it, runs its layers'
# critical path (summed over its layers: "gate" = ring-buffer store, current-tap product and gate;
# "res" = residual product), passes h on, computes and sends its skip partial; the output block waits for the
# skip partials, sums them, runs the two output products, samples, embeds and sends the next input
LAYER_PHASES = ("taps", "pre", "wait", "read", "gate", "res", "send", "skip")
OUTPUT_PHASES = ("wait", "sum", "hidden", "logits", "sample", "embed")
NPHASE = 8
# up to 8 streams per chain compute exactly what each would alone; 9-16 (asked for with
# streams_per_chain) run on tensor cores with 16-bit weights, their activations rounded to the
# weights' type as they enter each product: faster, but not bit-equal to a stream run alone
MAX_STREAMS_PER_CHAIN = 16


class WaveNetPersistentLoop:
    frame_cond = False

    def __init__(self, model, dtype=None, emulate: bool = False, smem_budget: int | None = None,
                 streams_per_chain: int | None = None, threads: int = 256, seed: int = 0, transport: str = "auto",
                 pack: str = "auto", profile: bool = False, fixed_shapes: bool = True,
                 register_weights: bool = False):
        cfg = model.config
        p = next(model.parameters())
        dtype = p.dtype if dtype is None else dtype
        if dtype not in WTYPES:
            raise ValueError(f"weight dtype must be float32, float16 or bfloat16, got {dtype}")
        if cfg.layers > 64:
            raise ValueError(f"the CUDA WaveNet kernel supports up to 64 layers, this model has {cfg.layers}")
        self.emulate, self.ext = emulate, ext(emulate)
        self.device = torch.device("cpu") if emulate else p.device
        if not emulate and self.device.type != "cuda":
            raise ValueError("the CUDA WaveNet loop needs the model on a CUDA device")
        self.model, self.cfg, self.wtype, self.threads, self.seed = model, cfg, WTYPES[dtype], int(threads), int(seed)
        self.M_fixed = streams_per_chain
        if streams_per_chain is not None and not 1 <= streams_per_chain <= MAX_STREAMS_PER_CHAIN:
            raise ValueError(f"streams_per_chain must be in [1, {MAX_STREAMS_PER_CHAIN}]")
        L, K, R, G, S, H = cfg.layers, cfg.kernel_size, cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.out_hidden
        G2, OUT, IN = G // 2, cfg.out_channels, cfg.in_channels
        Rp, G2p, Sp, Hp, OUTp = pad8(R), pad8(G2), pad8(S), pad8(H), pad8(OUT)
        wt = dict(device=self.device, dtype=dtype)
        f32 = dict(device=self.device, dtype=torch.float32)
        layers = model.conv_layers
        with torch.no_grad():
            wg = torch.zeros(L, K, 2 * G2p, Rp, **f32)        # rows 2c / 2c+1: tanh / sigmoid channel c
            wos = torch.zeros(L, Rp + Sp, G2p, **f32)         # rows < Rp residual, Rp.. skip
            bos = torch.zeros(L, Rp + Sp, **f32)
            for l, lay in enumerate(layers):
                w = lay.conv.weight.detach().to(**f32)         # [G, R, K]
                wg[l, :, 0:2 * G2:2, :R] = w[:G2].permute(2, 0, 1)
                wg[l, :, 1:2 * G2:2, :R] = w[G2:].permute(2, 0, 1)
                wos[l, :R, :G2] = lay.conv1x1_out.weight[:, :, 0].to(**f32)
                wos[l, Rp:Rp + S, :G2] = lay.conv1x1_skip.weight[:, :, 0].to(**f32)
                bos[l, :R] = lay.conv1x1_out.bias.to(**f32)
                bos[l, Rp:Rp + S] = lay.conv1x1_skip.bias.to(**f32)
            w1 = torch.zeros(Hp, Sp, **f32)
            w1[:H, :S] = model.last_conv1.weight[:, :, 0].to(**f32)
            b1 = torch.zeros(Hp, **f32)
            b1[:H] = model.last_conv1.bias.to(**f32)
            w2 = torch.zeros(OUTp, Hp, **f32)
            w2[:OUT, :H] = model.last_conv2.weight[:, :, 0].to(**f32)
            b2 = torch.zeros(OUTp, **f32)
            b2[:OUT] = model.last_conv2.bias.to(**f32)
            emb = torch.zeros(IN, Rp, **f32)
            emb[:, :R] = model.first_conv.weight[:, :, 0].t().to(**f32)
            emb_b = torch.zeros(Rp, **f32)
            emb_b[:R] = model.first_conv.bias.to(**f32)
        # the matrices in the storage dtype, the biases and the embedding in fp32
        self.t = dict(wg=wg.to(**wt).contiguous(), wos=wos.to(**wt).contiguous(), bos=bos, w1=w1.to(**wt).contiguous(),
                      b1=b1, w2=w2.to(**wt).contiguous(), b2=b2, emb=emb, emb_b=emb_b)
        dil = [int(lay.dilation) for lay in layers]
        hoff, acc = [], 0
        for d in dil:
            hoff.append(acc)
            acc += (K - 1) * d
        self.hist_rows = acc
        self.base = dict(L=L, K=K, R=R, Rp=Rp, G2=G2, G2p=G2p, S=S, Sp=Sp, H=H, Hp=Hp, OUT=OUT, OUTp=OUTp, IN=IN,
                         mode=MODES[cfg.output], nz=2 if cfg.output == "mol" else 1,
                         n_mix=cfg.n_mix if cfg.output == "mol" else 1, hist_rows=self.hist_rows,
                         skip_scale=math.sqrt(1.0 / L), log_scale_min=float(cfg.log_scale_min), dil=dil, hoff=hoff)
        self.base.update({k: v.data_ptr() for k, v in self.t.items()})
        props = None if emulate else self.ext.device_properties(self.device.index or 0)
        if smem_budget is None:
            smem_budget = 227 * 1024 if emulate else int(props["smem_per_block_optin"])
        self.smem_budget = int(smem_budget)
        if transport not in ("auto", "l2", "dsmem"):
            raise ValueError(f"transport must be 'auto', 'l2' or 'dsmem', got {transport!r}")
        self.clusters = emulate or float(props["cc"]) >= 9.0  # distributed shared memory: sm_90+
        if transport == "dsmem" and not self.clusters:
            raise ValueError(f"transport 'dsmem' needs thread-block clusters (compute capability 9.0+), this GPU is {props['cc']}")
        self.transport = transport
        # which weights a layer block keeps in shared memory: "full" all of its layers' weights;
        # "critical" only the current tap and residual rows where that packs more layers per block
        # (past taps and skip rows, off the critical path, then come from L2); "auto" full, or
        # critical for layers too big to fit whole (W4)
        packs = {"auto": 0, "full": 1, "critical": 2}
        if pack not in packs:
            raise ValueError(f"pack must be one of {', '.join(packs)}, got {pack!r}")
        self.base["pack"] = packs[pack]
        # fixed_shapes: W1's padded sizes with one stream per chain and 256 threads run the kernel
        # instance whose products have compile-time shapes (the same bits; False: the generic one);
        # register_weights: that instance with each thread's share of its block's critical matrices
        # (current tap, residual rows; the first 3 layers of a block, fp32 2) held in registers for
        # the launch instead of read from shared memory per product (the same bits again)
        if register_weights and not fixed_shapes:
            raise ValueError("register_weights needs fixed_shapes (the register instance is a fixed-shape one)")
        self.base["shapes"] = 2 if register_weights else int(bool(fixed_shapes))
        self._scratch = Scratch(self.device)
        # profile=True: every launch also sums clock ticks per phase and block (profile_report())
        self.profile = bool(profile)
        self.reset_profile()

    # ---- profile ----------------------------------------------------------------------------
    def reset_profile(self):
        self._prof = PhaseProfile(NPHASE)

    def profile_report(self) -> dict:
        """Mean clock ticks per sample (of one chain) and phase since the last reset_profile():
        {"layer": [per layer block {phase: ticks}], "output": {phase: ticks}, "samples": n}.
        Ticks are SM cycles (clock64) on a GPU; the emulator only counts calls."""
        t = self._prof.means()
        return {"layer": [{ph: t[b, i].item() for i, ph in enumerate(LAYER_PHASES)} for b in range(t.shape[0] - 1)],
                "output": {ph: t[-1, i].item() for i, ph in enumerate(OUTPUT_PHASES)}, "samples": self._prof.samples}

    # ---- planning ---------------------------------------------------------------------------
    def plan(self, B: int, M: int, dsmem: bool | None = None) -> dict:
        """The block plan for B streams, M per chain: nblk, blk_lo, blk_wsmem, smem, nchains, dsmem, ...
        dsmem None: the transport this loop uses for that plan (see _dsmem)."""
        if dsmem is None:
            dsmem = self._dsmem(B, M)
        d = dict(self._dict(B, M), dsmem=int(dsmem), blk_lo=self._partition(dsmem) if M > 1 else None)
        pl = self.ext.wavenet_persistent_plan(d, self.smem_budget, self.wtype)
        pl["dsmem"] = bool(dsmem)
        return pl

    def _partition(self, dsmem):
        """The layer partition of one stream per chain, kept for any number of streams: the
        partition fixes the order of the skip sums, so a stream's result does not depend on how
        many streams share its chain (only where the weights live may change)."""
        d = dict(self._dict(1, 1), dsmem=int(dsmem))
        return self.ext.wavenet_persistent_plan(d, self.smem_budget, self.wtype)["blk_lo"]

    def shape_variant(self, B: int, M: int = 1) -> int:
        """1 when B streams, M per chain run the compile-time-shaped kernel instance (W1's sizes,
        one stream per chain, 256 threads, fixed_shapes), 2 for that instance with register_weights,
        else 0."""
        return self.ext.wavenet_persistent_shape_variant(self._dict(B, M), self.threads)

    def _dict(self, B, M):
        d = dict(self.base, B=B, M=M, Tc=1, t0=0, teacher=0, tag=0)
        for k in ("cond", "hist", "x", "noise", "teacher_in", "out", "logits", "mail", "flags"):
            d[k] = 0
        return d

    def _dsmem(self, B: int, M: int) -> bool:
        """The cluster transport when asked, or ("auto") when the GPU has clusters and the chain fits a
        portable cluster of 8 blocks; the global-memory transport otherwise."""
        if self.transport == "l2" or not self.clusters:
            return False
        try:
            nblk = self.ext.wavenet_persistent_plan(dict(self._dict(B, 1), dsmem=1), self.smem_budget, self.wtype)["nblk"]
        except ValueError:
            if self.transport == "dsmem":
                raise
            return False
        return self.transport == "dsmem" or nblk + 1 <= 8

    def _fit(self, pl, M):
        """Chains the GPU holds at once with this plan."""
        if pl["dsmem"]:
            d = dict(self._dict(pl["nchains"] * M, M), dsmem=1, blk_lo=self._partition(True) if M > 1 else None)
            return self.ext.wavenet_persistent_max_clusters(d, self.smem_budget, self.wtype, self.threads)
        return self.ext.wavenet_persistent_max_blocks(self.wtype, M, self.threads, pl["smem"]) // (pl["nblk"] + 1)

    def _groups(self, B: int):
        """(M, plan, chains per launch): one stream per chain while the chains fit on the GPU at
        once, else M streams per chain (up to 8). With the global-memory transport more chains than
        fit run in several launches (a chain's blocks must all be resident); clusters are scheduled
        whole by the hardware, so one launch takes every chain."""
        if self.M_fixed is not None:
            M = min(self.M_fixed, B)
        else:
            M = 1
            if not self.emulate:
                pl = self.plan(B, 1)
                if B > self._fit(pl, 1):  # share chains (8 streams: the same arithmetic as one)
                    M = min(8, B)
        pl = self.plan(B, M)
        if self.emulate or pl["dsmem"]:
            if not self.emulate and self._fit(pl, M) < 1:
                raise RuntimeError(f"one cluster of {pl['nblk'] + 1} blocks with {pl['smem']} bytes of shared memory "
                                   "each does not fit this GPU: use transport='l2'")
            return M, pl, pl["nchains"]
        fit = self._fit(pl, M)
        if fit < 1:
            raise RuntimeError(f"one chain of the WaveNet kernel needs {pl['nblk'] + 1} resident blocks with "
                               f"{pl['smem']} bytes of shared memory each; this GPU cannot hold them at once")
        return M, pl, fit

    # ---- the loop interface -------------------------------------------------------------------
    def new_state(self, B: int, initial: float):
        hist = torch.zeros(B, self.hist_rows, self.cfg.residual_channels, device=self.device, dtype=torch.float32)
        x = torch.full((B,), float(initial), device=self.device, dtype=torch.float32)
        return hist, x

    def _check(self, t, name, shape):
        check_tensor(t, name, shape, self.device)

    def _check_inputs(self, v, name):
        """Mu-law inputs index the embedding: they must be whole classes in range."""
        if self.cfg.output == "mulaw":
            if ((v != v.round()) | (v < 0) | (v >= self.base["IN"])).any():
                raise ValueError(f"{name} must hold class indices in [0, {self.base['IN']}) for this mu-law model")
        elif ((v < -1) | (v > 1)).any():
            raise ValueError(f"{name} must hold samples in [-1, 1]")

    def run_chunk(self, cond, hist, x, t0, noise=None, teacher=None):
        """cond [B, Tc, L, G] fp32; noise [B, Tc, NZ] or teacher [B, Tc]. Returns samples [B, Tc]
        (or outputs [B, Tc, OUT] when teacher-forced); hist and x are updated in place."""
        if not isinstance(cond, torch.Tensor) or cond.ndim != 4:
            raise ValueError(f"cond must be [B, Tc, L, G], got {getattr(cond, 'shape', type(cond))}")
        B, Tc = cond.shape[:2]
        if B < 1 or Tc < 1:
            raise ValueError(f"cond must have B >= 1 and Tc >= 1, got {tuple(cond.shape)}")
        bs = self.base
        self._check(cond, "cond", (B, Tc, bs["L"], 2 * bs["G2"]))
        self._check(hist, "hist", (B, self.hist_rows, bs["R"]))
        self._check(x, "x", (B,))
        out = torch.empty(B, Tc, device=self.device, dtype=torch.float32)
        logits = None
        if teacher is not None:
            self._check(teacher, "teacher", (B, Tc))
            self._check_inputs(teacher, "teacher")
            logits = torch.empty(B, Tc, bs["OUT"], device=self.device, dtype=torch.float32)
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            self._check(noise, "noise", (B, Tc, bs["nz"]))
            self._check_inputs(x, "x")
        M, pl, fit = self._groups(B)
        for g0, g1, nch in launch_groups(B, M, fit):
            nb = g1 - g0
            mail = self._scratch.get("mail", nch * ((pl["nblk"] + 1) * M * bs["Rp"] + pl["nblk"] * M * bs["Sp"]), torch.float32)
            flags = self._scratch.get("flags", nch * (2 * pl["nblk"] + 1), torch.int64)
            d = dict(bs, B=nb, M=M, Tc=Tc, t0=int(t0), teacher=int(teacher is not None), tag=next(TAGS) << 32,
                     dsmem=int(pl["dsmem"]),
                     cond=cond[g0:g1].data_ptr(), hist=hist[g0:g1].data_ptr(), x=x[g0:g1].data_ptr(),
                     noise=noise[g0:g1].data_ptr() if noise is not None else 0,
                     teacher_in=teacher[g0:g1].data_ptr() if teacher is not None else 0,
                     out=out[g0:g1].data_ptr(), logits=logits[g0:g1].data_ptr() if logits is not None else 0,
                     mail=mail.data_ptr(), flags=flags.data_ptr())
            prof = self._prof.buffer(nch, pl["nblk"] + 1, self.device) if self.profile else None
            if prof is not None:
                d["prof"] = prof.data_ptr()
            if self.emulate:
                self.ext.wavenet_persistent(d, self.smem_budget, self.wtype, self.threads, self.seed)
            else:
                self.ext.wavenet_persistent(d, self.smem_budget, self.wtype, self.threads, stream_handle(self.device))
            if prof is not None:
                self._prof.add(prof, nch, pl["nblk"] + 1, Tc)
        return logits if teacher is not None else out


def wavenet_persistent_ref(model, n, mel=None, speaker=None, noise=None, teacher=None):
    """The reference this op must reproduce: the eager incremental loop."""
    from ..models.wavenet.runtime import run_torch

    return run_torch(model, n, mel=mel, speaker=speaker, noise=noise, teacher=teacher)
