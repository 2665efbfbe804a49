"""DiffWave denoise loops (one per backend, same signature).

"torch" is the eager reference and baseline: the mel is upsampled once (it does not depend on
the step), then for n = S-1 .. 0 the denoiser runs on the whole signal and lmnt's update is
applied with the float32 coefficients of reference.Schedule. Noise per DESIGN.md: noise[0] is
x_T, noise[i] is the z added after the i-th executed step.
"""
from __future__ import annotations

import numpy as np
import torch

from ... import noise as noise_mod
from .config import DiffWaveConfig
from .reference import DiffWave, Schedule

BACKENDS = ("torch",)


def noise_shape(cfg: DiffWaveConfig, n: int, schedule: Schedule) -> tuple:
    return (len(schedule), n)


def draw_noise(cfg: DiffWaveConfig, seed: int, n: int, schedule: Schedule) -> np.ndarray:
    return noise_mod.diffusion_noise(seed, len(schedule), n)


@torch.inference_mode()
def run_torch(model: DiffWave, schedule: Schedule, noise: torch.Tensor, mel=None, progress=False):
    """noise [S, B, T], mel [B, M, frames] -> audio [B, T] (float32, in [-1, 1])."""
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    noise = noise.to(dev)
    cond = model.spectrogram_upsampler(mel.to(dev, dt)) if model.spectrogram_upsampler is not None else None
    S = len(schedule)
    x = noise[0].to(dt)
    it = range(S)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=S, unit="step", leave=False)
    for i in it:
        n = S - 1 - i
        step = torch.tensor([schedule.steps[n]], device=dev, dtype=torch.float32)
        eps = model.denoise(x, step, cond).squeeze(1)
        x = float(schedule.c1[n]) * (x - float(schedule.c2[n]) * eps)
        if n > 0:
            x = x + float(schedule.sigma[n]) * noise[i + 1].to(dt)
        x = torch.clamp(x, -1.0, 1.0)
    return x.float()


def generate(model: DiffWave, backend: str, n: int, mel=None, noise=None, speaker=None, schedule=None,
             progress=False):
    if backend != "torch":
        raise ValueError(f"backend {backend!r} has no DiffWave runtime")
    return run_torch(model, schedule, noise, mel=mel, progress=progress).cpu().numpy()
