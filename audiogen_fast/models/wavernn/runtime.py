"""WaveRNN generation loops (one per backend, same signature) and fold generation.

"torch" is the eager step loop, the reference and the baseline. Everything that does not depend
on the previous sample is hoisted out of the loop and computed for all steps as one matrix
product: the mel and a1 part of I, the a2 part of GRU2's input gates, the a3 / a4 parts of fc1 /
fc2. What is left per sample is the true recurrence: 5 matrix-vector products and the gates.

Fold generation (fatchord's idea, our implementation): the conditioning sequence is cut into
segments of target + 2*overlap steps that start every target + overlap steps; all segments are
generated as one batch (each from a zero state); consecutive segments overlap by `overlap`
samples, where the first half keeps the earlier segment (the new one is still warming up) and
the second half is an equal-power crossfade.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ... import noise as noise_mod
from ...sampling import label_to_float, mulaw_decode, sample_gaussian, sample_mol, sample_softmax
from ..base import one_torch_thread, rowwise
from .config import WaveRNNConfig
from .reference import WaveRNN

BACKENDS = ("torch", "cpp", "triton", "cuda")
# "auto" never picks the Triton loop: on an H200 (2026-11-30) its sampled values differed from the
# reference by the division of label_to_float (fixed since, not yet re-run there), and it is slower
# than eager at batch 1 (R2: 0.9x). The CUDA persistent kernel passed tests/test_cuda_wavernn.py
# on that GPU (R2: 25x eager at batch 1).
UNVERIFIED = ("triton",)
HOIST_BLOCK = 1024  # steps whose step-independent projections are computed at once (bounded memory)


# ---- noise --------------------------------------------------------------------------------

def fold_layout(n: int, target: int, overlap: int) -> tuple[int, int]:
    """(number of segments, segment length) covering n samples."""
    step = target + overlap
    n_folds = max(1, math.ceil((n - overlap) / step))
    return n_folds, target + 2 * overlap


def noise_shape(cfg: WaveRNNConfig, n: int, fold=None) -> tuple:
    tail = (2,) if cfg.mode == "MOL" else ()
    if fold:
        nf, L = fold_layout(n, *fold)
        return (nf, L) + tail
    return (n,) + tail


def draw_noise(cfg: WaveRNNConfig, seed: int, n: int, fold=None) -> np.ndarray:
    if fold:
        nf, L = fold_layout(n, *fold)
        return noise_mod.ar_noise(seed, nf * L, cfg.noise_kind).reshape(noise_shape(cfg, n, fold))
    return noise_mod.ar_noise(seed, n, cfg.noise_kind)


def memory_estimate(cfg: WaveRNNConfig, B: int, n: int, backend: str, fold=None) -> int:
    """Bytes a generate() call holds at its peak (conditioning at sample rate, hoisted block, noise, output)."""
    rows = B * (fold_layout(n, *fold)[0] * (fold[0] + 2 * fold[1]) if fold else n)
    per_sample = 4 * (cfg.n_mels + cfg.res_out_dims) * 2 + 4 * 4 + 8
    hoist = 4 * (2 * cfg.rnn_dims + 3 * cfg.rnn_dims + 2 * cfg.fc_dims)
    return rows * per_sample + B * min(n, HOIST_BLOCK) * hoist


# ---- eager step loop -----------------------------------------------------------------------

class _Step:
    def __init__(self, model: WaveRNN):
        cfg = model.config
        R, Fd = cfg.rnn_dims, cfg.fc_dims
        self.w_I_x = model.I.weight[:, 0]                      # [R] weight of the previous sample
        self.w_I_c = model.I.weight[:, 1:]                     # [R, C + A]
        self.b_I = model.I.bias
        self.w_ih1, self.w_hh1 = model.rnn1.weight_ih_l0, model.rnn1.weight_hh_l0   # [3R, R]
        self.b_ih1, self.b_hh1 = model.rnn1.bias_ih_l0, model.rnn1.bias_hh_l0
        self.w_ih2_x = model.rnn2.weight_ih_l0[:, :R]          # [3R, R]
        self.w_ih2_a = model.rnn2.weight_ih_l0[:, R:]          # [3R, A]
        self.b_ih2, self.w_hh2, self.b_hh2 = model.rnn2.bias_ih_l0, model.rnn2.weight_hh_l0, model.rnn2.bias_hh_l0
        self.w_fc1_x, self.w_fc1_a = model.fc1.weight[:, :R], model.fc1.weight[:, R:]
        self.w_fc2_x, self.w_fc2_a = model.fc2.weight[:, :Fd], model.fc2.weight[:, Fd:]
        self.R = R

    def hoist(self, model, cond):
        """Step-independent parts for every step: each [B, T, width]."""
        m, a1, a2, a3, a4 = cond
        pre_I = F.linear(torch.cat([m, a1], -1), self.w_I_c, self.b_I)
        pre_2 = F.linear(a2, self.w_ih2_a, self.b_ih2)
        pre_f1 = F.linear(a3, self.w_fc1_a, model.fc1.bias)
        pre_f2 = F.linear(a4, self.w_fc2_a, model.fc2.bias)
        return pre_I, pre_2, pre_f1, pre_f2


def _gru(gi, h, w_hh, b_hh):
    """One GRU step (PyTorch gate order r, z, n) given the input-side gates gi [B, 3R]."""
    gh = torch.addmm(b_hh, h, w_hh.t())
    R = h.shape[1]
    r = torch.sigmoid(gi[:, :R] + gh[:, :R])
    z = torch.sigmoid(gi[:, R:2 * R] + gh[:, R:2 * R])
    nn_ = torch.tanh(gi[:, 2 * R:] + r * gh[:, 2 * R:])
    return nn_ + z * (h - nn_)


def _step(st: _Step, model: WaveRNN, xv, h1, h2, pre_I, pre_2, pre_f1, pre_f2):
    """One step from the previous sample xv [B] and the step's hoisted parts [B, .]: (logits /
    mixture parameters [B, OUT] fp32, h1, h2)."""
    h = pre_I + xv.unsqueeze(1) * st.w_I_x
    h1 = _gru(torch.addmm(st.b_ih1, h, st.w_ih1.t()), h1, st.w_hh1, st.b_hh1)
    h = h1 + h
    h2 = _gru(torch.addmm(pre_2, h, st.w_ih2_x.t()), h2, st.w_hh2, st.b_hh2)
    h = h2 + h
    y = F.relu(torch.addmm(pre_f1, h, st.w_fc1_x.t()))
    y = F.relu(torch.addmm(pre_f2, y, st.w_fc2_x.t()))
    return F.linear(y, model.fc3.weight, model.fc3.bias).float(), h1, h2


def _sample(cfg: WaveRNNConfig, y, u):
    """The step's sample from its outputs y [B, OUT] and uniforms u ([B], or [B, 2] for MOL):
    (the next input [B] in [-1, 1], its class [B] for RAW or None)."""
    if cfg.mode == "MOL":
        return sample_mol(y, u, cfg.log_scale_min), None
    u = u if u.dim() == 1 else u[:, 0]
    if cfg.mode == "RAW":
        k = sample_softmax(y, u)
        return label_to_float(k, cfg.n_classes), k
    return sample_gaussian(y, u, cfg.log_scale_min), None


class TorchLoop:
    """The eager step loop with the C++ loop's interface: state (h1 [B, R], h2 [B, R], x [B]);
    run_chunk(mel_up [B, n, C], aux [B, n, 4A], state, noise= | teacher=) -> (samples [B, n],
    classes [B, n] or None), or logits [B, n, OUT] when teacher-forced. The step-independent
    projections are computed for the whole chunk first."""

    def __init__(self, model: WaveRNN):
        self.model, self.cfg, self.st = model, model.config, _Step(model)

    def new_state(self, B: int):
        p = next(self.model.parameters())
        R = self.cfg.rnn_dims
        return (torch.zeros(B, R, device=p.device, dtype=p.dtype), torch.zeros(B, R, device=p.device, dtype=p.dtype),
                torch.zeros(B, device=p.device, dtype=torch.float32))

    @torch.inference_mode()
    def run_chunk(self, mel_up, aux, state, noise=None, teacher=None):
        model, cfg, st = self.model, self.cfg, self.st
        A = cfg.aux_dims
        h1, h2, x = state
        dev, dt = h1.device, h1.dtype
        cond = [mel_up.to(dt)] + [aux[..., i * A:(i + 1) * A].to(dt) for i in range(4)]
        pre_I, pre_2, pre_f1, pre_f2 = st.hoist(model, cond)
        B, T = pre_I.shape[:2]
        samples = torch.empty(B, T, device=dev, dtype=torch.float32)
        classes = torch.empty(B, T, device=dev, dtype=torch.long) if cfg.mode == "RAW" else None
        outs = torch.empty(B, T, cfg.n_classes, device=dev, dtype=torch.float32) if teacher is not None else None
        xv = x.clone()
        for t in range(T):
            if teacher is not None:
                xv = teacher[:, t].to(dev).float()
            y, h1, h2 = _step(st, model, xv.to(dt), h1, h2, pre_I[:, t], pre_2[:, t], pre_f1[:, t], pre_f2[:, t])
            if teacher is not None:
                outs[:, t] = y
                continue
            xv, k = _sample(cfg, y, noise[:, t])
            if k is not None:
                classes[:, t] = k
            samples[:, t] = xv
        state[0].copy_(h1)
        state[1].copy_(h2)
        state[2].copy_(xv)
        return outs if teacher is not None else (samples, classes)


def _run_cond(loop, cond, noise, teacher, progress, chunk):
    """Drive a loop over a whole conditioning tuple (mel_up, a1..a4) [B, T, .] in chunks."""
    cfg = loop.cfg
    mel_up = cond[0]
    aux = torch.cat(cond[1:], dim=-1)
    B, T = mel_up.shape[:2]
    state = loop.new_state(B)
    samples = torch.empty(B, T)
    classes = torch.empty(B, T, dtype=torch.long) if cfg.mode == "RAW" else None
    outs = torch.empty(B, T, cfg.n_classes) if teacher is not None else None
    it = range(0, T, chunk)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(it), unit="chunk", leave=False)
    for t0 in it:
        t1 = min(T, t0 + chunk)
        m, a = mel_up[:, t0:t1].float().contiguous(), aux[:, t0:t1].float().contiguous()
        if teacher is not None:
            outs[:, t0:t1] = loop.run_chunk(m, a, state, teacher=teacher[:, t0:t1].float().contiguous()).cpu()
        else:
            s_, c_ = loop.run_chunk(m, a, state, noise=noise[:, t0:t1].float().contiguous())
            samples[:, t0:t1] = s_.cpu()
            if classes is not None:
                classes[:, t0:t1] = c_.cpu()
    return samples, outs, classes


def run_torch(model: WaveRNN, cond, noise=None, teacher=None, progress=False, chunk: int = None):
    """cond: (mel_up, a1, a2, a3, a4) each [B, T, .]. noise [B, T] / [B, T, 2] or teacher [B, T]
    inputs. Returns (samples [B, T] float in [-1, 1] (RAW: class values), outputs or None,
    classes [B, T] int64 for RAW or None)."""
    return _run_cond(TorchLoop(model), cond, noise, teacher, progress, chunk or HOIST_BLOCK)


# ---- torch.compile baseline (benchmarks): the eager step as one graph, called per sample ------

class _CompiledStep(torch.nn.Module):
    """The eager step and its sampler as one module, for torch.compile (mode "reduce-overhead" on a
    GPU captures a step as one CUDA graph)."""

    def __init__(self, model: WaveRNN):
        super().__init__()
        self.model, self.st, self.cfg = model, _Step(model), model.config

    def forward(self, xv, h1, h2, pre_I, pre_2, pre_f1, pre_f2, u):
        y, h1, h2 = _step(self.st, self.model, xv, h1, h2, pre_I, pre_2, pre_f1, pre_f2)
        xv, k = _sample(self.cfg, y, u)
        return xv, k, h1, h2


@torch.inference_mode()
def run_compiled(model: WaveRNN, mel, noise, mode: str | None = "reduce-overhead", _cache={}):
    """torch.compile'd eager step, one call per sample: the baseline users reach for. mel [B, C,
    frames], noise as draw_noise gives it ([B, T] or [B, T, 2]) -> (samples [B, T], classes [B, T]
    for RAW or None); the conditioning (the whole mel at once) and its hoisted projections in eager
    torch, as run_torch. mode None: the module uncompiled (the same ops as the eager loop)."""
    cfg = model.config
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    st = _Step(model)
    T = noise.shape[1]
    cond = [c[:, :T] for c in model.conditioning(mel.to(dev, dt))]
    pre_I, pre_2, pre_f1, pre_f2 = st.hoist(model, cond)
    B = pre_I.shape[0]
    key = (id(model), mode)
    if key not in _cache:
        mod = _CompiledStep(model)
        _cache[key] = torch.compile(mod, mode=mode, fullgraph=True) if mode else mod
    fn = _cache[key]
    noise = noise.to(dev).float()
    h1 = torch.zeros(B, cfg.rnn_dims, device=dev, dtype=dt)
    h2 = torch.zeros_like(h1)
    xv = torch.zeros(B, device=dev, dtype=dt)
    samples = torch.empty(B, T, device=dev)
    classes = torch.empty(B, T, device=dev, dtype=torch.long) if cfg.mode == "RAW" else None
    for t in range(T):
        xv, k, h1, h2 = fn(xv, h1, h2, pre_I[:, t], pre_2[:, t], pre_f1[:, t], pre_f2[:, t], noise[:, t])
        xv, h1, h2 = xv.clone(), h1.clone(), h2.clone()  # a CUDA graph's outputs are rewritten by its next replay
        samples[:, t] = xv
        if k is not None:
            classes[:, t] = k
    return samples, classes


# ---- C++: the whole step loop in csrc/cpu/wavernn.cpp -----------------------------------------

CPP_CHUNK = 4096  # steps per call (the conditioning of a call: (C + 4A) floats per step and stream)


def cpp_loop(model: WaveRNN):
    from ..._cpp import WaveRNNCPU
    from ..base import cached_on_model

    return cached_on_model(model, "_agf_cpp", WaveRNNCPU)


def run_cpp(model: WaveRNN, cond, noise=None, teacher=None, progress=False, chunk: int = CPP_CHUNK, threads=None,
            half: bool = False, bf16: bool = False, int8: bool = False, schedule: str = "auto"):
    """Same contract as run_torch; the whole step (the aux projections included) runs in C++ (no
    Python per sample), for all B streams (a batch or the folded segments) in each step.
    half: fp16-stored matrix weights (fp32 arithmetic); bf16: bf16 products (fp32 accumulation);
    int8: int8 products (csrc/cpu/int8.h). schedule: how B >= 2 streams use the threads ("team",
    "split" or "auto"; the same bits every way, _cpp.WaveRNNCPU.run_chunk)."""
    loop = cpp_loop(model)
    if threads is not None or half or bf16 or int8 or schedule != "auto":
        loop = _WithOpts(loop, threads=threads, half=half, bf16=bf16, int8=int8, schedule=schedule)
    return _run_cond(loop, cond, noise, teacher, progress, chunk)


# run_chunk options of the cpp loop per dtype: fp32, fp16-stored weights, bf16 / int8 products
_CPP_OPTS = {"float32": {}, "float16": {"half": True}, "bfloat16": {"bf16": True}, "int8": {"int8": True}}
_CPP_DTYPE_ERROR = "the WaveRNN cpp backend runs float32, float16-stored weights, bfloat16 or int8 products, not {}"


class _WithOpts:
    """A C++ loop with fixed run_chunk options (threads, fp16 weights, bf16 / int8 products, schedule)."""

    def __init__(self, loop, **opts):
        self.loop, self.opts, self.cfg = loop, opts, loop.cfg

    def new_state(self, B):
        return self.loop.new_state(B)

    def run_chunk(self, *a, **kw):
        return self.loop.run_chunk(*a, **self.opts, **kw)


# ---- generation by frame blocks (one-shot and streaming give the same samples) ----------------

BLOCK_FRAMES = 8


class Session:
    """Generation by blocks of BLOCK_FRAMES frames: a block's conditioning (MelResNet aux features
    and upsampled mel) is computed from a window of the padded mel with enough context on each
    side, so every block is computed the same way however the frames arrive. The padded mel
    (pad frames at each end: edge copies or a constant) is built as frames arrive; the right pad
    is added by finish()."""

    def __init__(self, model: WaveRNN, loop, B: int, noise_fn=None, teacher_fn=None, limit=None, progress=False):
        self.model, self.cfg, self.loop, self.B = model, model.config, loop, B
        self.noise_fn, self.teacher_fn, self.limit = noise_fn, teacher_fn, limit
        p = next(model.parameters())
        self.dev, self.dt = p.device, p.dtype
        self.state = loop.new_state(B)
        self.pad, self.hop = self.cfg.pad, self.cfg.hop_length
        self.c = model.upsample.context
        self.P, self.P_lo = None, 0          # padded frames [P_lo, P_len) still needed
        self.P_len, self.F, self.d = 0, 0, 0  # padded frames held, frames received, next block frame
        self.ended = False

    def _append(self, frames):
        self.P = frames if self.P is None else torch.cat([self.P, frames], dim=-1)
        self.P_len += frames.shape[-1]

    def _pad_frames(self, edge):
        p = self.pad
        if self.cfg.mel_pad_value is None:
            return edge.expand(-1, -1, p)
        return torch.full((self.B, self.cfg.n_mels, p), float(self.cfg.mel_pad_value), device=self.dev, dtype=self.dt)

    def feed(self, mel):
        """Append frames without running anything (MultiStream runs the blocks itself)."""
        mel = mel.to(self.dev, self.dt)
        if self.F == 0 and self.pad:
            self._append(self._pad_frames(mel[:, :, :1]))
        self._append(mel)
        self.F += mel.shape[-1]
        self.last = mel[:, :, -1:]

    def end(self):
        if self.F and self.pad and not self.ended:
            self._append(self._pad_frames(self.last))
        self.ended = True

    @torch.inference_mode()
    def push(self, mel):
        self.feed(mel)
        return self._run()

    @torch.inference_mode()
    def finish(self):
        self.end()
        return self._run()

    def next_block(self):
        """(n0, n1, mel_up [B, n, C], aux [B, n, 4A]) of the next block computable now, or None."""
        p, hop, BF = self.pad, self.hop, BLOCK_FRAMES
        limit = self.limit if self.limit is not None else self.F * hop
        if not (self.d < self.F and self.d * hop < limit):
            return None
        e = min(self.d + BF, self.F)
        if not self.ended and self.d + BF > self.F:
            return None
        # padded-frame window: aux needs [d, e + 2p), the smoothed mel [d + p - c, e + p + c)
        lo = max(0, self.d + min(0, p - self.c))
        hi = e + max(2 * p, p + self.c)
        if not self.ended and hi > self.P_len:
            return None
        hi = min(hi, self.P_len)
        win = self.P[:, :, lo - self.P_lo:hi - self.P_lo]
        up = self.model.upsample
        n0, n1 = self.d * hop, min(e * hop, limit)
        f0 = self.d + p - lo  # the block's first frame in the window

        def cond(w):  # [b, C, frames] window -> (mel_up [b, n, C], aux [b, n, 4A])
            aux = up.stretch(up.resnet(w[:, :, self.d - lo:e - lo + 2 * p]))
            x = up.smooth_frames(w, f0, f0 + e - self.d)
            return x[:, :n1 - n0].float().contiguous(), aux[:, :n1 - n0].float().contiguous()
        with one_torch_thread(self.dev):  # the loop that runs next needs every core (base.one_torch_thread)
            mel_up, aux = rowwise(cond, win)  # each stream's bits as alone (base.rowwise)
        self.d = e
        keep = max(0, self.d + min(0, p - self.c))
        if keep > self.P_lo:
            self.P = self.P[:, :, keep - self.P_lo:]
            self.P_lo = keep
        return n0, n1, mel_up, aux

    def _run(self):
        outs = []
        while True:
            blk = self.next_block()
            if blk is None:
                break
            n0, n1, mel_up, aux = blk
            if self.teacher_fn is not None:
                outs.append((self.loop.run_chunk(mel_up, aux, self.state, teacher=self.teacher_fn(n0, n1)), None))
            else:
                outs.append(self.loop.run_chunk(mel_up, aux, self.state, noise=self.noise_fn(n0, n1)))
        if not outs:
            return torch.empty(self.B, 0), None
        if self.teacher_fn is not None:
            return torch.cat([o[0] for o in outs], 1), None
        samples = torch.cat([o[0].cpu() for o in outs], 1)
        classes = torch.cat([o[1].cpu() for o in outs], 1) if outs[0][1] is not None else None
        return samples, classes


class _AudioStream:
    def __init__(self, sess, cfg):
        self.sess, self.cfg = sess, cfg

    def push(self, mel):
        return self._audio(*self.sess.push(mel))

    def finish(self):
        return self._audio(*self.sess.finish())

    def _audio(self, samples, classes):
        if samples.shape[-1] == 0:
            return np.zeros((samples.shape[0], 0), np.float32)
        return torch.as_tensor(to_audio(self.cfg, samples, classes)).float().numpy()


def open_stream(model: WaveRNN, backend: str, seeds, speaker=None, dtype: str = "float32"):
    """A streaming session; the noise for samples [a, b) is drawn from each seed at offset a."""
    cfg = model.config
    dev = next(model.parameters()).device

    def noise_fn(a, b):
        z = np.stack([noise_mod.ar_noise(s, b - a, cfg.noise_kind, offset=a) for s in seeds])
        return torch.from_numpy(z).float().to(dev)

    return _AudioStream(Session(model, make_loop(model, backend, dtype), len(seeds), noise_fn=noise_fn), cfg)


def make_loop(model: WaveRNN, backend: str, dtype: str = "float32"):
    if backend == "torch":
        return TorchLoop(model)
    if backend == "cpp":
        if dtype not in _CPP_OPTS:
            raise ValueError(_CPP_DTYPE_ERROR.format(dtype))
        opts = _CPP_OPTS[dtype]
        return _WithOpts(cpp_loop(model), **opts) if opts else cpp_loop(model)
    if backend == "triton":
        return triton_loop(model)
    if backend == "cuda":
        return cuda_loop(model)
    raise ValueError(f"backend {backend!r} has no WaveRNN runtime")


# ---- Triton: the whole step loop of a chunk in one kernel (audiogen_fast/ops/wavernn_loop.py) ---

TRITON_CHUNK = 4096


def triton_loop(model: WaveRNN):
    """Kernel-layout weights in the model's dtype, cached on the model."""
    from ...ops.wavernn_loop import WaveRNNLoop
    from ..base import cached_on_model

    p = next(model.parameters())
    return cached_on_model(model, "_agf_triton", lambda m: WaveRNNLoop(m, dtype=p.dtype))


def run_triton(model: WaveRNN, cond, noise=None, teacher=None, progress=False, chunk: int = TRITON_CHUNK):
    """Same contract as run_torch; one kernel launch per chunk of steps."""
    return _run_cond(triton_loop(model), cond, noise, teacher, progress, chunk)


# ---- CUDA: the persistent kernel (csrc/cuda/wavernn_persistent.cuh) ----------------------------

def cuda_loop(model: WaveRNN, emulate: bool = False):
    """Kernel-layout weights in the model's dtype, cached on the model (emulate: the CPU emulator)."""
    from ...ops.wavernn_persistent import WaveRNNPersistentLoop
    from ..base import cached_on_model

    return cached_on_model(model, "_agf_cuda_emu" if emulate else "_agf_cuda", lambda m: WaveRNNPersistentLoop(m, emulate=emulate))


def run_cuda(model: WaveRNN, cond, noise=None, teacher=None, progress=False, chunk: int = TRITON_CHUNK, loop=None):
    """Same contract as run_torch; one persistent-kernel launch per chunk of steps."""
    return _run_cond(loop or cuda_loop(model), cond, noise, teacher, progress, chunk)


RUNNERS = {"torch": run_torch, "cpp": run_cpp, "triton": run_triton, "cuda": run_cuda}


def to_audio(cfg: WaveRNNConfig, samples: torch.Tensor, classes) -> torch.Tensor:
    if cfg.mode == "RAW" and cfg.mu_law:
        return mulaw_decode(classes, cfg.n_classes)
    return samples


# ---- fold / unfold ---------------------------------------------------------------------------

def fold(x: torch.Tensor, target: int, overlap: int) -> torch.Tensor:
    """[B, T, D] -> [B * n_folds, L, D] overlapping segments (zero-padded at the end)."""
    B, T, D = x.shape
    nf, L = fold_layout(T, target, overlap)
    need = (nf - 1) * (target + overlap) + L
    if need > T:
        x = F.pad(x, (0, 0, 0, need - T))
    segs = [x[:, i * (target + overlap): i * (target + overlap) + L] for i in range(nf)]
    return torch.stack(segs, 1).reshape(B * nf, L, D)


def crossfade_weights(overlap: int, dtype=torch.float32):
    """(fade_in, fade_out) [overlap]: zero / one for the first half, equal-power after."""
    silence = overlap // 2
    fade = overlap - silence
    t = torch.linspace(-1.0, 1.0, fade, dtype=torch.float64)
    fade_in = torch.cat([torch.zeros(silence, dtype=torch.float64), torch.sqrt(0.5 * (1 + t))])
    fade_out = torch.cat([torch.ones(silence, dtype=torch.float64), torch.sqrt(0.5 * (1 - t))])
    return fade_in.to(dtype), fade_out.to(dtype)


def unfold(y: torch.Tensor, B: int, n: int, target: int, overlap: int) -> torch.Tensor:
    """[B * n_folds, L] generated segments -> [B, n] crossfaded audio."""
    nf, L = fold_layout(n, target, overlap)
    y = y.reshape(B, nf, L)
    step = target + overlap
    out = torch.zeros(B, (nf - 1) * step + L, dtype=y.dtype, device=y.device)
    fade_in, fade_out = (w.to(y.device) for w in crossfade_weights(overlap, y.dtype))
    for i in range(nf):
        seg = y[:, i].clone()
        if i > 0:
            seg[:, :overlap] *= fade_in
        if i < nf - 1:
            seg[:, -overlap:] *= fade_out
        out[:, i * step: i * step + L] += seg
    return out[:, :n]


def generate(model: WaveRNN, backend: str, n: int, mel=None, noise=None, speaker=None, fold_spec=None,
             progress=False, dtype: str = "float32"):
    """mel [B, C, frames] -> float32 audio [B, n] (n = frames * hop)."""
    if backend not in RUNNERS:
        raise ValueError(f"backend {backend!r} has no WaveRNN runtime")
    if backend == "cpp" and dtype not in _CPP_OPTS:
        raise ValueError(_CPP_DTYPE_ERROR.format(dtype))
    if backend == "torch" and dtype != "float32" and next(model.parameters()).device.type == "cpu":
        raise ValueError("the eager WaveRNN loop runs float32 on the CPU")
    cfg = model.config
    p = next(model.parameters())
    B = mel.shape[0]
    if fold_spec:  # fold needs the whole conditioning up front: the segments run as one batch
        with torch.inference_mode():
            cond = [c[:, :n] for c in rowwise(model.conditioning, mel.to(p.device, p.dtype))]
        target, overlap = fold_spec
        cond = [fold(c, target, overlap) for c in cond]
        noise = noise.reshape((-1,) + tuple(noise.shape[2:]))
        extra = _CPP_OPTS[dtype] if backend == "cpp" else {}
        samples, _, classes = RUNNERS[backend](model, cond, noise=noise, progress=progress, **extra)
        audio = torch.as_tensor(to_audio(cfg, samples, classes)).float()
        return unfold(audio, B, n, *fold_spec).cpu().numpy()
    nz = noise.to(p.device).float()
    sess = Session(model, make_loop(model, backend, dtype), B, noise_fn=lambda a, b: nz[:, a:b].contiguous(), limit=n)
    s1, c1 = sess.push(mel)
    s2, c2 = sess.finish()
    samples = torch.cat([s1, s2], 1)
    classes = torch.cat([c1, c2], 1) if c1 is not None and c2 is not None else (c1 if c2 is None else c2)
    return torch.as_tensor(to_audio(cfg, samples, classes)).float().cpu().numpy()
