"""Eager DiffWave (lmnt-com/diffwave layout, same parameter names): the denoiser every
DiffWave backend must reproduce, and the schedule arithmetic of lmnt's sampler.

Shapes: B batch, T samples, C residual channels, M n_mels, E = 512 step-embedding width.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DiffWaveConfig


class DiffusionEmbedding(nn.Module):
    """step (int or fractional) -> [.., 512]: sinusoidal table (linearly interpolated between
    integer steps), two Linear + SiLU."""

    def __init__(self, max_steps: int):
        super().__init__()
        self.register_buffer("embedding", self._build_embedding(max_steps), persistent=False)
        self.projection1 = nn.Linear(128, 512)
        self.projection2 = nn.Linear(512, 512)

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        if step.dtype in (torch.int32, torch.int64):
            x = self.embedding[step]
        else:
            x = self._lerp_embedding(step)
        x = F.silu(self.projection1(x.to(self.projection1.weight.dtype)))
        return F.silu(self.projection2(x))

    def _lerp_embedding(self, t: torch.Tensor) -> torch.Tensor:
        lo = torch.floor(t).long()
        hi = torch.ceil(t).long()
        low, high = self.embedding[lo], self.embedding[hi]
        return low + (high - low) * (t - lo).unsqueeze(-1)

    @staticmethod
    def _build_embedding(max_steps: int) -> torch.Tensor:
        steps = torch.arange(max_steps).unsqueeze(1)              # [S, 1]
        dims = torch.arange(64).unsqueeze(0)                      # [1, 64]
        table = steps * 10.0 ** (dims * 4.0 / 63.0)               # [S, 64]
        return torch.cat([torch.sin(table), torch.cos(table)], dim=1)


class SpectrogramUpsampler(nn.Module):
    """mel [B, M, frames] -> [B, M, frames * hop]: ConvTranspose2d (3, 2s) stride (1, s) per
    scale, each followed by leaky_relu(0.4). lmnt's is the scales == [16, 16] case."""

    def __init__(self, scales):
        super().__init__()
        self.n = len(scales)
        for i, s in enumerate(scales):
            setattr(self, f"conv{i + 1}", nn.ConvTranspose2d(1, 1, [3, 2 * s], stride=[1, s], padding=[1, s // 2]))

    def forward(self, x):
        x = x.unsqueeze(1)
        for i in range(self.n):
            x = F.leaky_relu(getattr(self, f"conv{i + 1}")(x), 0.4)
        return x.squeeze(1)


class ResidualBlock(nn.Module):
    def __init__(self, cfg: DiffWaveConfig, dilation: int):
        super().__init__()
        C = cfg.residual_channels
        self.dilated_conv = nn.Conv1d(C, 2 * C, 3, padding=dilation, dilation=dilation)
        self.diffusion_projection = nn.Linear(512, C)
        self.conditioner_projection = nn.Conv1d(cfg.n_mels, 2 * C, 1) if cfg.conditional else None
        self.output_projection = nn.Conv1d(C, 2 * C, 1)

    def forward(self, x, step_emb, cond=None):
        """x [B, C, T], step_emb [B or 1, 512], cond [B, M, T] -> (x [B, C, T], skip [B, C, T])."""
        y = x + self.diffusion_projection(step_emb).unsqueeze(-1)
        y = self.dilated_conv(y)
        if self.conditioner_projection is not None:
            y = y + self.conditioner_projection(cond)
        gate, filt = torch.chunk(y, 2, dim=1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    def __init__(self, cfg: DiffWaveConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        C = cfg.residual_channels
        self.input_projection = nn.Conv1d(1, C, 1)
        self.diffusion_embedding = DiffusionEmbedding(len(cfg.noise_schedule))
        self.spectrogram_upsampler = SpectrogramUpsampler(cfg.upsample_scales) if cfg.conditional else None
        self.residual_layers = nn.ModuleList(ResidualBlock(cfg, cfg.dilation(i)) for i in range(cfg.residual_layers))
        self.skip_projection = nn.Conv1d(C, C, 1)
        self.output_projection = nn.Conv1d(C, 1, 1)

    def denoise(self, audio, step, cond_up=None):
        """The network given an already-upsampled mel: audio [B, T], step [B] or [1]
        (int64 or float32), cond_up [B, M, T] -> predicted noise [B, 1, T]."""
        x = F.relu(self.input_projection(audio.unsqueeze(1)))
        emb = self.diffusion_embedding(step)
        skip = None
        for layer in self.residual_layers:
            x, s = layer(x, emb, cond_up)
            skip = s if skip is None else s + skip
        x = skip / math.sqrt(len(self.residual_layers))
        return self.output_projection(F.relu(self.skip_projection(x)))

    def forward(self, audio, diffusion_step, spectrogram=None):
        """Training forward (lmnt's newer argument order): audio [B, T], diffusion_step [B],
        spectrogram [B, M, frames] with frames * hop == T -> [B, 1, T]."""
        cond = self.spectrogram_upsampler(spectrogram) if self.spectrogram_upsampler is not None else None
        return self.denoise(audio, diffusion_step, cond)


# ---- schedules (lmnt's sampler arithmetic, float64 then float32) -------------------------------

class Schedule:
    """Inference schedule aligned to the training schedule.

    betas: the inference betas (S of them); steps[n]: the (fractional) training step whose
    noise level matches inference step n (lmnt's alignment); per step n the update is
        x = c1[n] * (x - c2[n] * eps(x, steps[n]));  x += sigma[n] * z  (n > 0);  clamp(x, -1, 1)
    and steps run n = S-1 down to 0. Coefficients are float32, as every backend uses them.
    """

    def __init__(self, training_betas, betas):
        tb = np.asarray(training_betas, dtype=np.float64)
        b = np.asarray(betas, dtype=np.float64)
        talpha_cum = np.cumprod(1.0 - tb)
        alpha = 1.0 - b
        alpha_cum = np.cumprod(alpha)
        steps = []
        for s in range(len(b)):
            for t in range(len(tb) - 1):
                if talpha_cum[t + 1] <= alpha_cum[s] <= talpha_cum[t]:
                    twiddle = (talpha_cum[t] ** 0.5 - alpha_cum[s] ** 0.5) / (talpha_cum[t] ** 0.5 - talpha_cum[t + 1] ** 0.5)
                    steps.append(t + twiddle)
                    break
            else:
                raise ValueError(
                    f"schedule step {s} (beta={b[s]:.4g}, alpha_bar={alpha_cum[s]:.6g}) lies outside the training "
                    f"schedule's noise levels [{talpha_cum[-1]:.6g}, {talpha_cum[0]:.6g}]: it cannot be aligned")
        self.betas = b
        self.steps = np.asarray(steps, dtype=np.float32)
        self.c1 = (1.0 / alpha ** 0.5).astype(np.float32)
        self.c2 = (b / (1.0 - alpha_cum) ** 0.5).astype(np.float32)
        sigma = np.zeros(len(b))
        for n in range(1, len(b)):
            sigma[n] = ((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * b[n]) ** 0.5
        self.sigma = sigma.astype(np.float32)

    def __len__(self):
        return len(self.betas)

    @classmethod
    def from_config(cls, cfg: DiffWaveConfig, schedule=None) -> "Schedule":
        """schedule: "fast" (inference_schedule), "full" (the training schedule), a list of
        betas, or None (the config's default_schedule)."""
        if schedule is None:
            schedule = cfg.default_schedule
        if isinstance(schedule, str):
            if schedule == "fast":
                return cls(cfg.noise_schedule, cfg.inference_schedule)
            if schedule == "full":
                return cls(cfg.noise_schedule, cfg.noise_schedule)
            raise ValueError(f"unknown schedule {schedule!r}: use 'fast', 'full' or a list of betas")
        b = np.asarray(schedule, dtype=np.float64)
        if b.ndim != 1 or len(b) == 0 or not np.all(np.isfinite(b)) or not np.all((b > 0) & (b < 1)):
            raise ValueError("a custom schedule must be a non-empty list of betas in (0, 1)")
        return cls(cfg.noise_schedule, b)
