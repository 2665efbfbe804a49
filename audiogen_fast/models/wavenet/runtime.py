"""WaveNet generation loops, one per backend, all with the same signature.

"torch" is the eager reference loop and the baseline every speed claim is measured against.
It is the Fast WaveNet algorithm (Paine et al. 2016): each layer keeps a ring buffer of its
last (K-1)*d inputs, so a sample costs O(layers) matrix-vector products whatever the receptive
field; the mel conditioning of every layer is projected for a block of time steps at once
(one matrix product per block) before the per-sample loop reaches it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ... import noise as noise_mod
from ...sampling import mulaw_decode, mulaw_encode, mulaw_expand, sample_gaussian, sample_mol, sample_softmax
from ..base import one_torch_thread, rowwise
from .cond import FrameCond, band
from .config import WaveNetConfig
from .reference import WaveNet

BACKENDS = ("torch", "cpp", "triton", "cuda")
# backends usable by name but never picked by "auto" until they have matched the reference on a
# GPU: none now (the CUDA persistent kernel passed tests/test_cuda_wavenet.py on an H200, 2026-11-30)
UNVERIFIED = ()
COND_BLOCK = 2048  # time steps of conditioning projected per matrix product


# ---- noise --------------------------------------------------------------------------------

def noise_shape(cfg: WaveNetConfig, n: int) -> tuple:
    return (n, 2) if cfg.output == "mol" else (n,)


def draw_noise(cfg: WaveNetConfig, seed: int, n: int) -> np.ndarray:
    return noise_mod.ar_noise(seed, n, cfg.noise_kind)


def initial_input(cfg: WaveNetConfig):
    if cfg.output == "mulaw":
        return cfg.initial_class if cfg.initial_class is not None else int(mulaw_encode(np.zeros(1, np.float32), cfg.quantize_channels)[0])
    return cfg.initial_input if cfg.initial_input is not None else 0.0


def decode_output(cfg: WaveNetConfig, samples: torch.Tensor) -> np.ndarray:
    """Sampled values [B, T] (classes or floats) -> float32 audio [B, T]."""
    if cfg.output == "mulaw":
        return mulaw_decode(samples.cpu().numpy(), cfg.quantize_channels)
    if cfg.companding_mu:   # samples of the companded signal (float64 curve, like the classes' decode)
        return mulaw_expand(samples.cpu().double().clamp(-1.0, 1.0), cfg.companding_mu).float().numpy()
    return samples.float().cpu().numpy()


def memory_estimate(cfg: WaveNetConfig, B: int, n: int, backend: str) -> int:
    """Bytes a generate() call holds at its peak (mel, noise, output, one block of conditioning)."""
    per_sample = 4 * 3 + 8 + 4 * (cfg.n_mels / cfg.hop_length if cfg.conditional else 0)
    block = 8 * cfg.hop_length
    return int(B * n * per_sample + 2 * B * min(n, block) * cfg.layers * cfg.gate_channels * 4)


# ---- eager incremental loop -----------------------------------------------------------------

class _Step:
    """Weights rearranged for one-sample steps (shapes in comments)."""

    def __init__(self, model: WaveNet):
        cfg = model.config
        self.cfg = cfg
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.emb = model.first_conv.weight[:, :, 0].t().contiguous()          # [in, R]
        self.emb_b = model.first_conv.bias                                     # [R]
        self.w_dil, self.w_os, self.b_os, self.dil = [], [], [], []
        for layer in model.conv_layers:
            # conv weight [G, R, K]; tap k multiplies the input (K-1-k)*d steps back
            self.w_dil.append(layer.conv.weight.permute(2, 1, 0).reshape(-1, G).contiguous())  # [K*R, G]
            self.w_os.append(torch.cat([layer.conv1x1_out.weight[:, :, 0], layer.conv1x1_skip.weight[:, :, 0]], 0)
                             .t().contiguous())                                # [G/2, R+S]
            self.b_os.append(torch.cat([layer.conv1x1_out.bias, layer.conv1x1_skip.bias]))  # [R+S]
            self.dil.append(layer.dilation)
        self.b_dil = torch.cat([layer.conv.bias for layer in model.conv_layers])   # [L*G]
        if cfg.conditional:
            self.w_c = torch.cat([layer.conv1x1c.weight[:, :, 0] for layer in model.conv_layers], 0)  # [L*G, C]
        self.R, self.G, self.S = R, G, S
        self.skip_scale = math.sqrt(1.0 / cfg.layers)

    def cond_block(self, model, c_up, g, t0, t1):
        """Per-layer conditioning (dilated-conv bias + mel + speaker) for steps [t0, t1): [t, B, L, G]."""
        B = c_up.shape[0] if c_up is not None else (g.shape[0] if g is not None else 1)
        L = self.cfg.layers
        out = self.b_dil.view(1, 1, -1).expand(t1 - t0, B, -1)
        if c_up is not None:
            out = out + torch.einsum("gc,bct->tbg", self.w_c, c_up[:, :, t0:t1])
        if g is not None:
            gl = torch.cat([layer.conv1x1g(g)[:, :, 0] for layer in model.conv_layers], 1)  # [B, L*G]
            out = out + gl.unsqueeze(0)
        return out.reshape(t1 - t0, B, L, self.G).contiguous()

    @torch.no_grad()
    def bias_rows(self, model, g, B):
        """Every layer's step-independent gate input per stream: dilated-conv bias (+ speaker
        projection when g [B, gin, 1] is given), fp32 [B, L*G]."""
        bias = self.b_dil.float().expand(B, -1)
        if g is not None:  # row by row: each stream's bits as alone (base.rowwise)
            bias = bias + rowwise(lambda gb: torch.cat([layer.conv1x1g(gb)[:, :, 0] for layer in model.conv_layers], 1), g).float()
        return bias.contiguous()

    def cond_from_cup(self, model, c_up, g, B, n, bias=None):
        """Conditioning [B, n, L, G] fp32 for an upsampled-mel block c_up [B, C, n] (None for
        unconditional models): one matrix product per stream, the bias as the addmm input.
        bias: bias_rows(model, g, B) when the caller already has it."""
        L, G = self.cfg.layers, self.G
        out = torch.empty(B, n, L * G, device=self.b_dil.device, dtype=torch.float32)
        if bias is None:
            bias = self.bias_rows(model, g, B)
        for b in range(B):
            bb = bias[b]
            if c_up is not None:
                torch.addmm(bb, c_up[b].t().float(), self.w_c.t().float(), out=out[b])
            else:
                out[b].copy_(bb.expand(n, -1))
        return out.view(B, n, L, G)

# ---- generation by frame blocks (shared by every backend, one-shot and streaming) ------------

BLOCK_FRAMES = 8  # frames per block: the unit of conditioning, of streaming latency and of launches


def upsample_context(cfg: WaveNetConfig) -> int:
    """Mel frames of context the upsampler needs on each side of a block for its samples to be
    computed exactly as from the whole mel (smoothing convs: sum of s_i / prod(s_1..s_i) frames;
    the cin_pad conv: cin_pad frames; +1 frame of margin)."""
    if not cfg.conditional:
        return 0
    ctx = cfg.cin_pad + 1
    if cfg.upsample_mode == "conv":
        rate, spread = 1, 0.0
        for s in cfg.upsample_scales:
            rate *= s
            spread += s / rate
        ctx += math.ceil(spread)
    return ctx


def _sample(cfg: WaveNetConfig, y, u):
    """A step's sample from its outputs y [B, OUT] and uniforms u [B, 1] (mu-law, Gaussian) or
    [B, 2] (MoL): the class [B] (int64) for mu-law, else the value [B]."""
    if cfg.output == "mulaw":
        return sample_softmax(y, u[:, 0])
    if cfg.output == "mol":
        return sample_mol(y, u, cfg.log_scale_min)
    return sample_gaussian(y, u[:, 0], cfg.log_scale_min)


class TorchLoop:
    """The eager loop with the same interface as the C++ and Triton loops: state = ring buffers
    [B, hist_rows, R] (layer l owns rows off_l .. off_l + (K-1) d_l) and the next input x [B]
    (the class index as a float for mu-law); run_chunk(cond [B, Tc, L, G], hist, x, t0, noise= |
    teacher=) -> samples [B, Tc] (or logits [B, Tc, OUT] when teacher-forced)."""

    def __init__(self, model: WaveNet):
        self.model, self.cfg, self.st = model, model.config, _Step(model)
        K = self.cfg.kernel_size
        self.offs, acc = [], 0
        for d in self.st.dil:
            self.offs.append(acc)
            acc += (K - 1) * d
        self.hist_rows = acc

    def new_state(self, B: int, initial: float):
        p = next(self.model.parameters())
        return (torch.zeros(B, self.hist_rows, self.cfg.residual_channels, device=p.device, dtype=p.dtype),
                torch.full((B,), float(initial), device=p.device, dtype=torch.float32))

    @torch.inference_mode()
    def run_chunk(self, cond, hist, x, t0: int, noise=None, teacher=None):
        model, cfg, st = self.model, self.cfg, self.st
        K, R, G2 = cfg.kernel_size, st.R, st.G // 2
        dev, dt = hist.device, hist.dtype
        B, Tc = cond.shape[:2]
        ct_all = cond.to(dt).permute(1, 0, 2, 3)                              # [Tc, B, L, G]
        mulaw = cfg.output == "mulaw"
        out = torch.empty(B, Tc, device=dev, dtype=torch.float32)
        logits = torch.empty(B, Tc, cfg.out_channels, device=dev, dtype=torch.float32) if teacher is not None else None
        sqrt_half = math.sqrt(0.5)
        xv = x.clone()
        for tt in range(Tc):
            t = t0 + tt
            if teacher is not None:
                xv = teacher[:, tt].float()
            if mulaw:
                h = st.emb[xv.long()] + st.emb_b                                  # [B, R]
            else:
                h = xv.to(dt).unsqueeze(1) * st.emb[0] + st.emb_b
            skip = None
            ct = ct_all[tt]                                                     # [B, L, G]
            for l, d in enumerate(st.dil):
                off, M = self.offs[l], (K - 1) * d
                taps = [hist[:, off + (t + j * d) % M] for j in range(K - 1)] + [h]
                a = torch.addmm(ct[:, l], torch.cat(taps, 1), st.w_dil[l])      # [B, G]
                z = torch.tanh(a[:, :G2]) * torch.sigmoid(a[:, G2:])
                os_ = torch.addmm(st.b_os[l], z, st.w_os[l])                    # [B, R+S]
                hist[:, off + t % M] = h
                h = (h + os_[:, :R]) * sqrt_half
                skip = os_[:, R:] if skip is None else skip + os_[:, R:]
            y = F.relu(skip * st.skip_scale)
            y = F.linear(F.relu(F.linear(y, model.last_conv1.weight[:, :, 0], model.last_conv1.bias)),
                         model.last_conv2.weight[:, :, 0], model.last_conv2.bias).float()   # [B, OUT]
            if teacher is not None:
                logits[:, tt] = y
                out[:, tt] = xv
                continue
            xv = _sample(cfg, y, noise[:, tt]).float()
            out[:, tt] = xv
        x.copy_(xv)
        return logits if teacher is not None else out


class Session:
    """Generation by blocks of BLOCK_FRAMES mel frames, for any backend loop.

    A block's conditioning is the upsampled mel of its frames, computed from a window with
    upsample_context() frames of real context on each side (clamped only at the true ends), then
    projected for every layer in one matrix product; then the loop runs the block. Loops with
    frame_cond = True (the C++ one) get it in frame-rate form instead (cond.py) when the upsampler
    is linear along time: the window's frames projected, and per sample the upsampler's weights.
    Every block is computed the same way however the frames arrive, so streaming (push chunks, then finish) gives
    exactly the samples of one-shot generation (push everything, then finish). Memory: the mel
    frames still needed and one block of conditioning.

    noise_fn(t0, t1) / teacher_fn(t0, t1) give the block's noise [B, t1-t0, NZ] / inputs [B, t1-t0].
    limit: stop after this many samples (None: frames * hop). Unconditional models: n_total samples
    are produced by finish().
    """

    def __init__(self, model: WaveNet, loop, B: int, noise_fn=None, teacher_fn=None, speaker=None, limit=None,
                 progress=False, **run_kw):
        self.model, self.cfg, self.loop, self.B = model, model.config, loop, B
        self.noise_fn, self.teacher_fn, self.run_kw, self.limit = noise_fn, teacher_fn, run_kw, limit
        p = next(model.parameters())
        self.dev, self.dt = p.device, p.dtype
        self.st = _Step(model)
        self.g = model.speaker_embedding(speaker.to(self.dev)) if speaker is not None else None
        self.hist, self.x = loop.new_state(B, initial_input(self.cfg))
        self.ctx, self.hop = upsample_context(self.cfg), self.cfg.hop_length
        self.mel, self.mel_lo = None, 0     # frames [mel_lo, F) still needed
        self.F, self.d, self.t = 0, 0, 0    # frames received, next block's first frame, samples made
        self.ended = False
        up = model.upsample_net
        self.frame_cond = getattr(loop, "frame_cond", False) and (up is None or up.time_linear)
        self._bands = {}                    # (window frames, offset, n) -> (f0, wts)
        self._bias = self.st.bias_rows(model, self.g, B)  # [B, L*G], the same for every block
        self.progress = None
        if progress:
            from tqdm import tqdm
            self.progress = tqdm(total=limit, unit="sample", unit_scale=True, leave=False)

    def feed(self, mel: torch.Tensor) -> None:
        """Append frames without running anything (MultiStream runs the blocks itself)."""
        mel = mel.to(self.dev, self.dt)
        self.mel = mel if self.mel is None else torch.cat([self.mel, mel], dim=-1)
        self.F += mel.shape[-1]

    @torch.inference_mode()
    def push(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, C, f] (the next f frames) -> the samples that became ready [B, m]."""
        self.feed(mel)
        return self._run(end=False)

    def end(self) -> None:
        """No more frames will come: the last blocks become computable (MultiStream runs them)."""
        self.ended = True

    @torch.inference_mode()
    def finish(self) -> torch.Tensor:
        self.end()
        out = self._run(end=True)
        if self.progress is not None:
            self.progress.close()
        return out

    @property
    def state(self):
        return (self.hist, self.x)

    def ring_period(self) -> int:
        """Ring positions repeat with this period: blocks that start at multiples of it can share
        one t0 in a batched call."""
        return max((self.cfg.kernel_size - 1) * d for d in self.st.dil)

    def next_block(self, end: bool = None):
        """(n0, n1, conditioning) of the next block computable now, or None. The conditioning is
        [B, n, L, G], or a FrameCond for loops that take one."""
        blk = self._block(self.ended if end is None else end)
        if blk is None:
            return None
        n0, n1, win, off = blk
        with one_torch_thread(self.dev):  # the loop that runs next needs every core (base.one_torch_thread)
            return n0, n1, self._cond(win, off, n1 - n0)

    def _cond(self, win, off: int, n: int):
        """The conditioning of n samples starting `off` samples into the window's upsampling."""
        st, up = self.st, self.model.upsample_net
        bias = self._bias
        # the upsampler runs row by row: each stream gets the bits it gets alone (base.rowwise)
        if not self.frame_cond:
            c_up = rowwise(up, win)[:, :, off:off + n] if win is not None else None
            return st.cond_from_cup(self.model, c_up, self.g, self.B, n, bias=bias)
        if win is None:  # unconditional: the bias alone (one all-zero frame with weight 0)
            LG = bias.shape[1]
            return FrameCond(torch.zeros(self.B, 1, LG), bias, torch.zeros(self.B, n, dtype=torch.int32),
                             torch.zeros(self.B, n, 1))
        m = rowwise(up.frame_stage, win)                                   # [B, C, Fw]
        P = rowwise(lambda mb: torch.matmul(mb.transpose(1, 2), st.w_c.t()), m).float().contiguous()  # [B, Fw, L*G]
        Fw = m.shape[-1]
        key = (Fw, off, n)
        if key not in self._bands:
            eye = torch.eye(Fw, dtype=m.dtype, device=m.device).unsqueeze(0)  # Fw "channels", one per frame
            U = up.time_stage(eye)[0, :, off:off + n]                          # [Fw, n]: frame f's weight in sample t
            self._bands[key] = band(U.cpu())
        f0, wts = self._bands[key]
        return FrameCond(P, bias, f0.expand(self.B, -1).contiguous(), wts.expand(self.B, -1, -1).contiguous())

    def _block(self, end: bool):
        """(n0, n1, mel window or None, offset of n0 in the window's samples) of the next block
        that can be computed now, or None."""
        hop, BF = self.hop, BLOCK_FRAMES
        if not self.cfg.conditional:
            if not end or self.t >= self.limit:
                return None
            return self.t, min(self.limit, self.t + BF * hop), None, 0
        limit = self.limit if self.limit is not None else self.F * hop
        if self.d >= self.F or self.d * hop >= limit:
            return None
        if not end and self.d + BF + self.ctx > self.F:
            return None  # waiting for the block's frames and its right context
        e = min(self.d + BF, self.F)
        lo, hi = max(0, self.d - self.ctx), min(self.F, e + self.ctx)
        win = self.mel[:, :, lo - self.mel_lo:hi - self.mel_lo]
        n0, n1 = self.d * hop, min(e * hop, limit)
        off = (self.d - lo) * hop
        self.d = e
        keep = max(0, self.d - self.ctx)  # frames before this are never needed again
        if keep > self.mel_lo:
            self.mel = self.mel[:, :, keep - self.mel_lo:]
            self.mel_lo = keep
        return n0, n1, win, off

    def _run(self, end: bool) -> torch.Tensor:
        outs = []
        while True:
            blk = self.next_block(end)
            if blk is None:
                break
            n0, n1, cond = blk
            if self.teacher_fn is not None:
                outs.append(self.loop.run_chunk(cond, self.hist, self.x, n0, teacher=self.teacher_fn(n0, n1), **self.run_kw))
            else:
                outs.append(self.loop.run_chunk(cond, self.hist, self.x, n0, noise=self.noise_fn(n0, n1), **self.run_kw))
            self.t = n1
            if self.progress is not None:
                self.progress.update(n1 - n0)
        if not outs:
            shape = (self.B, 0, self.cfg.out_channels) if self.teacher_fn is not None else (self.B, 0)
            return torch.empty(shape, device=self.dev)
        return torch.cat(outs, dim=1)


def make_loop(model: WaveNet, backend: str, dtype: str = "float32", loop=None):
    if loop is not None:
        return loop, {}
    if backend == "torch":
        return TorchLoop(model), {}
    if backend == "cpp":
        if dtype not in ("float32", "float16", "bfloat16", "int8"):
            raise ValueError(f"the WaveNet cpp backend runs float32, float16-stored weights, bfloat16 or int8 products, not {dtype}")
        return cpp_loop(model), {"half": dtype == "float16", "bf16": dtype == "bfloat16", "int8": dtype == "int8"}
    if backend == "triton":
        return triton_loop(model), {}
    if backend == "cuda":
        return cuda_loop(model), {}
    raise ValueError(f"backend {backend!r} has no WaveNet runtime")


def _run(model: WaveNet, backend: str, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
         progress: bool = False, loop=None, dtype: str = "float32", threads=None, schedule=None):
    """One-shot generation through a Session. Returns (samples [B, n], outputs [B, n, OUT] or None)."""
    cfg = model.config
    lp, run_kw = make_loop(model, backend, dtype, loop)
    if threads is not None:
        run_kw["threads"] = threads
    if schedule is not None:
        run_kw["schedule"] = schedule
    p = next(model.parameters())
    B = mel.shape[0] if mel is not None else (teacher.shape[0] if teacher is not None else (noise.shape[0] if noise is not None else batch))
    nz = noise.to(p.device).float().reshape(B, noise.shape[1], -1) if noise is not None else None
    te = teacher.to(p.device).float() if teacher is not None else None
    sess = Session(model, lp, B, noise_fn=(lambda a, b: nz[:, a:b].contiguous()) if nz is not None else None,
                   teacher_fn=(lambda a, b: te[:, a:b].contiguous()) if te is not None else None,
                   speaker=speaker, limit=n, progress=progress, **run_kw)
    parts = []
    if cfg.conditional:
        parts.append(sess.push(mel))
    parts.append(sess.finish())
    out = torch.cat(parts, dim=1)
    if teacher is not None:
        return teacher, out
    return (out.long() if cfg.output == "mulaw" else out), None


def run_torch(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
              progress: bool = False):
    """The eager loop. Returns (samples [B, n], outputs [B, n, out] or None).

    mel [B, C, frames] (conditional models), speaker [B] int64 or None.
    noise [B, n] / [B, n, 2] sampling noise, or teacher [B, n] inputs to feed instead of samples
    (teacher forcing: then the per-step network outputs are returned too)."""
    return _run(model, "torch", n, mel, speaker, noise, teacher, batch, progress)


# ---- Triton: the whole loop in one kernel per block (audiogen_fast/ops/wavenet_loop.py) --------

def triton_loop(model: WaveNet, weight_dtype=None):
    """The kernel's weight layout, cached on the model (rebuilt when the weights, their dtype or
    device change)."""
    from ...ops.wavenet_loop import WaveNetLoop
    from ..base import cached_on_model

    dtype = next(model.parameters()).dtype if weight_dtype is None else weight_dtype
    return cached_on_model(model, "_agf_triton_loop", lambda m: WaveNetLoop(m, dtype=dtype), extra=dtype)


def run_triton(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
               progress: bool = False, loop=None):
    """Same contract as run_torch (samples [B, n], outputs when teacher-forced)."""
    return _run(model, "triton", n, mel, speaker, noise, teacher, batch, progress, loop=loop)


# ---- C++: the whole loop in csrc/cpu/wavenet.cpp ---------------------------------------------

def cpp_loop(model: WaveNet):
    """The C++ loop object (weights copied into its layout), cached on the model."""
    from ..._cpp import WaveNetCPU
    from ..base import cached_on_model

    return cached_on_model(model, "_agf_cpp", WaveNetCPU)


def run_cpp(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
            progress: bool = False, threads=None, dtype: str = "float32", schedule: str = "auto"):
    """Same contract as run_torch; the per-sample work runs in C++ (no Python per sample).
    dtype "float16": the weight matrices are stored (and streamed) as fp16, arithmetic is fp32;
    "bfloat16": their products with bf16 weights and inputs, fp32 accumulation (csrc/cpu/bf16.h);
    "int8": their products with int8 weights (a scale per column) and each input row quantised to
    uint8, int32 sums (csrc/cpu/int8.h). schedule: how a batch uses the threads (same bits every
    way; _cpp.WaveNetCPU.run_chunk)."""
    return _run(model, "cpp", n, mel, speaker, noise, teacher, batch, progress, dtype=dtype, threads=threads,
                schedule=schedule)


# ---- CUDA: the persistent kernel (csrc/cuda/wavenet_persistent.cuh) ---------------------------

def cuda_loop(model: WaveNet, emulate: bool = False):
    """The persistent-kernel loop (weights laid out on the model's device and dtype), cached on
    the model. emulate=True: the same kernel on the CPU emulator (tests)."""
    from ...ops.wavenet_persistent import WaveNetPersistentLoop
    from ..base import cached_on_model

    return cached_on_model(model, "_agf_cuda_emu" if emulate else "_agf_cuda", lambda m: WaveNetPersistentLoop(m, emulate=emulate))


def run_cuda(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
             progress: bool = False, loop=None):
    """Same contract as run_torch, on the persistent CUDA kernel."""
    return _run(model, "cuda", n, mel, speaker, noise, teacher, batch, progress, loop=loop)


RUNNERS = {"torch": run_torch, "cpp": run_cpp, "triton": run_triton, "cuda": run_cuda}


class _AudioStream:
    """push(mel [B, C, f]) / finish() -> float32 audio [B, m] (numpy), noise drawn per block."""

    def __init__(self, sess, cfg):
        self.sess, self.cfg = sess, cfg

    def push(self, mel):
        return self._audio(self.sess.push(mel))

    def finish(self):
        return self._audio(self.sess.finish())

    def _audio(self, out):
        out = out.long() if self.cfg.output == "mulaw" else out
        return decode_output(self.cfg, out)


def open_stream(model: WaveNet, backend: str, seeds, speaker=None, dtype: str = "float32"):
    """A streaming session: its noise for samples [a, b) is drawn from each seed at offset a
    (counter-based), i.e. exactly the noise generate() draws for the same seeds."""
    cfg = model.config
    lp, run_kw = make_loop(model, backend, dtype)
    dev = next(model.parameters()).device

    def noise_fn(a, b):
        z = np.stack([noise_mod.ar_noise(s, b - a, cfg.noise_kind, offset=a) for s in seeds])
        return torch.from_numpy(z).to(dev).float().reshape(len(seeds), b - a, -1).contiguous()

    return _AudioStream(Session(model, lp, len(seeds), noise_fn=noise_fn, speaker=speaker, **run_kw), cfg)


def generate(model: WaveNet, backend: str, n: int, mel=None, noise=None, speaker=None, progress=False, **kw):
    """-> float32 audio [B, n]. kw: dtype for the cpp backend."""
    if backend not in RUNNERS:
        raise ValueError(f"backend {backend!r} has no WaveNet runtime")
    samples, _ = RUNNERS[backend](model, n, mel=mel, speaker=speaker, noise=noise, progress=progress, **kw)
    return decode_output(model.config, samples)


# ---- torch.compile baseline (benchmarks): the eager step as one graph, replayed per sample ----

class _CompiledStep(torch.nn.Module):
    """The eager step with ring buffers as module buffers and the position as a tensor, so that
    torch.compile(mode="reduce-overhead") can capture one sample's work as one CUDA graph."""

    def __init__(self, model: WaveNet, B: int):
        super().__init__()
        st = _Step(model)
        cfg = model.config
        self.st, self.K, self.cfg = st, cfg.kernel_size, cfg
        self.model = model
        dev = next(model.parameters()).device
        dt = next(model.parameters()).dtype
        for l, d in enumerate(st.dil):
            self.register_buffer(f"hist{l}", torch.zeros((cfg.kernel_size - 1) * d, B, st.R, device=dev, dtype=dt))

    def forward(self, x, t, ct, u):
        st, K = self.st, self.K
        # the previous sample: a class (mu-law: an embedding row) or a value (a 1x1 conv of one input)
        h = st.emb[x] + st.emb_b if self.cfg.output == "mulaw" else x.to(st.emb.dtype).unsqueeze(1) * st.emb[0] + st.emb_b
        skip = None
        for l, d in enumerate(st.dil):
            buf = getattr(self, f"hist{l}")
            M = buf.shape[0]
            taps = [buf.index_select(0, ((t + j * d) % M).view(1))[0] for j in range(K - 1)] + [h]
            a = torch.addmm(ct[:, l], torch.cat(taps, 1), st.w_dil[l])
            z = torch.tanh(a[:, :st.G // 2]) * torch.sigmoid(a[:, st.G // 2:])
            os_ = torch.addmm(st.b_os[l], z, st.w_os[l])
            buf.index_copy_(0, (t % M).view(1), h.unsqueeze(0))
            h = (h + os_[:, :st.R]) * math.sqrt(0.5)
            skip = os_[:, st.R:] if skip is None else skip + os_[:, st.R:]
        m = self.model
        y = F.relu(skip * st.skip_scale)
        y = F.linear(F.relu(F.linear(y, m.last_conv1.weight[:, :, 0], m.last_conv1.bias)),
                     m.last_conv2.weight[:, :, 0], m.last_conv2.bias).float()
        return _sample(self.cfg, y, u)


@torch.inference_mode()
def run_compiled(model: WaveNet, n: int, mel=None, noise=None, mode: str | None = "reduce-overhead", _cache={}):
    """torch.compile'd eager step, one call per sample: the baseline users reach for. noise as
    draw_noise gives it per stream ([B, n] or [B, n, 2]) -> (samples [B, n]: classes for mu-law,
    else values; None). Models without speaker conditioning. mode None: the module uncompiled."""
    cfg = model.config
    if cfg.gin_channels or not cfg.conditional:
        raise ValueError("run_compiled covers mel-conditioned WaveNets without speaker conditioning")
    mulaw = cfg.output == "mulaw"
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    st = _Step(model)
    c_up = model.upsample(mel.to(dev, dt))
    B = c_up.shape[0]
    key = (id(model), B, mode)
    if key not in _cache:
        mod = _CompiledStep(model, B)
        _cache[key] = (mod, torch.compile(mod, mode=mode, fullgraph=True) if mode else mod)
    mod, fn = _cache[key]
    for name, buf in mod.named_buffers():
        if name.startswith("hist"):
            buf.zero_()
    x = torch.full((B,), initial_input(cfg), dtype=torch.long if mulaw else dt, device=dev)
    samples = torch.empty(B, n, dtype=torch.long if mulaw else torch.float32, device=dev)
    noise = noise.to(dev).float()
    noise = noise.unsqueeze(-1) if noise.dim() == 2 else noise             # [B, >= n, 1 or 2]
    ts = torch.arange(n, device=dev)
    for t0 in range(0, n, COND_BLOCK):
        cond = st.cond_block(model, c_up, None, t0, min(n, t0 + COND_BLOCK))
        for t in range(t0, min(n, t0 + COND_BLOCK)):
            x = fn(x, ts[t], cond[t - t0], noise[:, t]).clone()
            samples[:, t] = x
    return samples, None
