"""DiffWave denoise loops (one per backend, same signature).

"torch" is the eager reference and baseline: the mel is upsampled once (it does not depend on
the step), then for n = S-1 .. 0 the denoiser runs on the whole signal and lmnt's update is
applied with the float32 coefficients of reference.Schedule. Noise per DESIGN.md: noise[0] is
x_T, noise[i] is the z added after the i-th executed step.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ... import noise as noise_mod
from .config import DiffWaveConfig
from .reference import DiffWave, Schedule

BACKENDS = ("torch", "cpp", "triton")
# "auto" passes over the Triton kernels in float32: exact fp32 products (tl.dot "ieee") run on
# FMAs, 0.05x eager on an H100 (benchmarks/NOTES_GPU.md), and ptxas takes over a minute on them.
# backend="triton" still runs them; fp16 / bf16 (7-9x eager) are picked.
AUTO_SKIP = {"triton": ("float32",)}


def noise_shape(cfg: DiffWaveConfig, n: int, schedule: Schedule) -> tuple:
    return (len(schedule), n)


def draw_noise(cfg: DiffWaveConfig, seed: int, n: int, schedule: Schedule) -> np.ndarray:
    return noise_mod.diffusion_noise(seed, len(schedule), n)


def _update(x, eps, schedule: Schedule, i: int, noise, dt):
    """lmnt's update after executed step i (n = S-1-i): x <- clamp(c1 (x - c2 eps) + sigma z)."""
    n = len(schedule) - 1 - i
    x = float(schedule.c1[n]) * (x - float(schedule.c2[n]) * eps)
    if n > 0:
        x = x + float(schedule.sigma[n]) * noise[i + 1].to(dt)
    return torch.clamp(x, -1.0, 1.0)


def memory_estimate(cfg: DiffWaveConfig, B: int, n: int, backend: str, schedule=None) -> int:
    """Bytes a generate() call holds at its peak: the denoiser works on the whole signal, about
    ten [B, 2C, T]-sized activations (eager) or three [B, C, T] buffers (triton), the upsampled
    mel, and the noise for every step."""
    C = cfg.residual_channels
    act = 10 * 2 * C if backend == "torch" else 3 * C
    steps = len(schedule) if schedule is not None else 6
    mels = (cfg.n_mels if cfg.conditional else 0) * (2 if backend == "cpp" else 1)
    return B * n * 4 * (act + mels + steps + 2)


@torch.inference_mode()
def run_torch(model: DiffWave, schedule: Schedule, noise: torch.Tensor, mel=None, progress=False):
    """noise [S, B, T], mel [B, M, frames] -> audio [B, T] (float32, in [-1, 1])."""
    return _denoise_loop(model, model.denoise, schedule, noise, mel, progress)


def _denoise_loop(model: DiffWave, denoise, schedule: Schedule, noise: torch.Tensor, mel, progress=False):
    """The eager loop around denoise(x, step, cond) (the model's, or a compiled one)."""
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    noise = noise.to(dev)
    cond = model.spectrogram_upsampler(mel.to(dev, dt)) if model.spectrogram_upsampler is not None else None
    S = len(schedule)
    x = noise[0].to(dt)
    steps = torch.tensor(schedule.steps, device=dev, dtype=torch.float32)
    it = range(S)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=S, unit="step", leave=False)
    for i in it:
        n = S - 1 - i
        x = _update(x, denoise(x, steps[n:n + 1], cond).squeeze(1), schedule, i, noise, dt)
    return x.float()


# ---- C++: the whole denoise loop in csrc/cpu/diffwave.cpp ------------------------------------

def cpp_loop(model: DiffWave):
    from ..._cpp import DiffWaveCPU
    from ..base import cached_on_model

    return cached_on_model(model, "_agf_cpp", DiffWaveCPU)


def step_biases(model: DiffWave, schedule: Schedule) -> torch.Tensor:
    """[S, L, C]: each layer's diffusion projection of the step embedding, per executed step i
    (n = S-1-i), computed with the reference's own modules (tiny: one 512-wide MLP per step)."""
    S = len(schedule)
    steps = torch.tensor([schedule.steps[S - 1 - i] for i in range(S)], dtype=torch.float32)
    emb = model.diffusion_embedding(steps)                                    # [S, 512]
    return torch.stack([lay.diffusion_projection(emb) for lay in model.residual_layers], 1).float().contiguous()


CACHE_MB_DEFAULT = 256  # the conditioner cache's default budget (AGF_DIFFWAVE_CACHE_MB overrides)


def cache_budget_bytes() -> int:
    """Memory the cpp loop may spend per call on hoisted conditioner projections:
    AGF_DIFFWAVE_CACHE_MB (a number of MiB; 0 turns hoisting off), else CACHE_MB_DEFAULT."""
    raw = os.environ.get("AGF_DIFFWAVE_CACHE_MB", "").strip()
    if not raw:
        return CACHE_MB_DEFAULT << 20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0 or mb == float("inf"):
        raise ValueError(f"AGF_DIFFWAVE_CACHE_MB must be a number of MiB >= 0 (got {raw!r})")
    return int(mb * (1 << 20))


def hoist_layers(model: DiffWave, B: int, T: int, budget: int | None = None) -> int:
    """How many layers (from the first) hoist their conditioner projection in a call on [B, T]:
    as many as fit the budget at 2C fp32 values per sample and layer (0 for an unconditional
    model). Hoisting changes no bits, only speed and memory."""
    if model.spectrogram_upsampler is None or B * T == 0:
        return 0
    budget = cache_budget_bytes() if budget is None else budget
    per_layer = B * T * 2 * model.config.residual_channels * 4
    return min(len(model.residual_layers), budget // per_layer)


@torch.inference_mode()
def run_cpp(model: DiffWave, schedule: Schedule, noise: torch.Tensor, mel=None, progress=False, threads=None,
            hoist="auto", winograd=True, dtype: str = "float32"):
    """Same contract as run_torch: the step biases and the upsampled mel are computed here in
    torch (once per call), every step of every layer in C++.

    hoist: the layers whose conditioner projection (bias + Wc mel(t): the same in every step)
    is computed once per call and kept, 2C floats per sample and layer, instead of every step:
    "auto" as many as cache_budget_bytes() allows (256 MiB unless AGF_DIFFWAVE_CACHE_MB says),
    True all, False none, or a number. The audio is the same bit for bit; the speed is not
    (benchmarks/NOTES_CPU.md: the bundled default model +29% on 1 s with every layer hoisted, D1 ~+5%).
    dtype "bfloat16": the layers' products with bf16 inputs and weights, fp32 accumulation
    (csrc/cpu/bf16.h: AVX512-BF16 where the CPU has it); the rest stays fp32."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"DiffWave's cpp loop runs float32 or bfloat16 (got {dtype})")
    loop = cpp_loop(model)
    S, B, T = noise.shape
    if isinstance(hoist, str):
        if hoist != "auto":
            raise ValueError(f"hoist is 'auto', a bool or a number of layers (got {hoist!r})")
        hoist = hoist_layers(model, B, T)
    eproj = step_biases(model, schedule)
    order = [S - 1 - i for i in range(S)]
    coef = torch.tensor(np.stack([schedule.c1[order], schedule.c2[order], schedule.sigma[order]]),
                        dtype=torch.float32).contiguous()
    mel_t = None
    if model.spectrogram_upsampler is not None:
        mel_t = model.spectrogram_upsampler(mel.float()).transpose(1, 2).contiguous()   # [B, T, M]
    return loop.run(eproj, coef, noise.float().contiguous(), mel_t, threads=threads, hoist=hoist, winograd=winograd,
                    bf16=dtype == "bfloat16")


# ---- Triton: fused residual layers + fused head, the loop replayed as one CUDA graph ----------

def triton_kernels(model: DiffWave, dtype=None, **kw):
    """Kernel-layout weights (audiogen_fast/ops/diffwave_layer.py), cached on the model (rebuilt
    when the weights, their dtype or device, or the options change)."""
    from ...ops.diffwave_layer import DiffWaveTriton
    from ..base import cached_on_model

    dtype = next(model.parameters()).dtype if dtype is None else dtype
    return cached_on_model(model, "_agf_triton", lambda m: DiffWaveTriton(m, dtype=dtype, **kw),
                           extra=(dtype, tuple(sorted(kw.items()))))


@torch.inference_mode()
def run_triton(model: DiffWave, schedule: Schedule, noise: torch.Tensor, mel=None, progress=False, kernels=None,
               graph: bool = True):
    """Same contract as run_torch. On CUDA the whole loop is captured once per (batch, length,
    schedule) as a CUDA graph and replayed."""
    p = next(model.parameters())
    dev = p.device
    k = kernels or triton_kernels(model)
    noise = noise.to(dev, torch.float32).contiguous()
    mel_up = model.spectrogram_upsampler(mel.to(dev, p.dtype)).to(k.dtype).contiguous() \
        if model.spectrogram_upsampler is not None else None
    if not (graph and dev.type == "cuda"):
        return k.run(schedule, noise, mel_up)
    key = (tuple(noise.shape), tuple(float(b) for b in schedule.betas), mel_up is not None)
    graphs = k.__dict__.setdefault("graphs", {})
    if key not in graphs:
        if len(graphs) >= 4:
            graphs.clear()
        st_noise = noise.clone()
        st_mel = mel_up.clone() if mel_up is not None else None
        tables = k.step_tables(schedule)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            k.run(schedule, st_noise, st_mel, tables)  # compiles the kernels outside the capture
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            st_out = k.run(schedule, st_noise, st_mel, tables)
        # everything the graph reads must outlive it: the step tables too (a freed table's memory
        # is reused, and a replay would read whatever is there now)
        graphs[key] = (g, st_noise, st_mel, st_out, tables)
    g, st_noise, st_mel, st_out, _ = graphs[key]
    st_noise.copy_(noise)
    if st_mel is not None:
        st_mel.copy_(mel_up)
    g.replay()
    return st_out.clone()


# ---- torch.compile baseline (benchmarks) ---------------------------------------------------

@torch.inference_mode()
def run_compiled(model: DiffWave, schedule: Schedule, noise: torch.Tensor, mel=None, mode="reduce-overhead",
                 _cache={}):
    """The eager loop with the denoiser compiled by torch.compile (what users reach for)."""
    key = (id(model), mode)
    if key not in _cache:
        _cache[key] = torch.compile(model.denoise, mode=mode)
    return _denoise_loop(model, _cache[key], schedule, noise, mel)


RUNNERS = {"torch": run_torch, "cpp": run_cpp, "triton": run_triton}


# ---- streaming: overlapping windows ------------------------------------------------------------

STREAM_CORE_FRAMES = 32     # frames emitted per window
STREAM_CONTEXT_FRAMES = 16  # frames of context denoised on each side and thrown away


class _Stream:
    """DiffWave is not causal: a stream denoises windows of CORE frames with CONTEXT frames of mel
    on each side (clamped at the ends) and keeps the core. The noise of every sample is the noise
    one-shot generation uses for it (counter-based draws at the sample's offset), so the only
    difference from generate() is the missing context beyond a window: measured in
    benchmarks/NOTES_CPU.md and tested on the tiny model."""

    def __init__(self, model: DiffWave, backend: str, seeds, schedule, core=STREAM_CORE_FRAMES,
                 context=STREAM_CONTEXT_FRAMES, kw=None):
        self.model, self.backend, self.seeds, self.schedule = model, backend, list(seeds), schedule
        self.kw = kw or {}  # the runner's options (cpp: dtype)
        self.core, self.ctx, self.hop = core, context, model.config.hop_length
        self.mel, self.mel_lo, self.F, self.d, self.ended = None, 0, 0, 0, False

    def push(self, mel):
        self.mel = mel if self.mel is None else torch.cat([self.mel, mel], dim=-1)
        self.F += mel.shape[-1]
        return self._run()

    def finish(self):
        self.ended = True
        return self._run()

    def _run(self):
        outs = []
        while self.d < self.F:
            e = min(self.d + self.core, self.F)
            if not self.ended and self.d + self.core + self.ctx > self.F:
                break
            lo, hi = max(0, self.d - self.ctx), min(self.F, e + self.ctx)
            win = self.mel[:, :, lo - self.mel_lo:hi - self.mel_lo]
            n = (hi - lo) * self.hop
            S = len(self.schedule)
            noise = torch.from_numpy(np.stack([noise_mod.diffusion_noise(sd, S, n, offset=lo * self.hop)
                                               for sd in self.seeds])).transpose(0, 1).contiguous()
            audio = RUNNERS[self.backend](self.model, self.schedule, noise, mel=win, **self.kw).cpu()
            a = (self.d - lo) * self.hop
            outs.append(audio[:, a:a + (e - self.d) * self.hop])
            self.d = e
            keep = max(0, self.d - self.ctx)
            if keep > self.mel_lo:
                self.mel = self.mel[:, :, keep - self.mel_lo:]
                self.mel_lo = keep
        if not outs:
            return np.zeros((len(self.seeds), 0), np.float32)
        return torch.cat(outs, 1).numpy()


def open_stream(model: DiffWave, backend: str, seeds, speaker=None, schedule=None, dtype: str = "float32"):
    return _Stream(model, backend, seeds, schedule if isinstance(schedule, Schedule) else Schedule.from_config(model.config, schedule),
                   kw={"dtype": dtype} if backend == "cpp" else {})


def generate(model: DiffWave, backend: str, n: int, mel=None, noise=None, speaker=None, schedule=None,
             progress=False, dtype: str = "float32"):
    if backend not in RUNNERS:
        raise ValueError(f"backend {backend!r} has no DiffWave runtime")
    kw = {"dtype": dtype} if backend == "cpp" else {}
    return RUNNERS[backend](model, schedule, noise, mel=mel, progress=progress, **kw).cpu().numpy()
