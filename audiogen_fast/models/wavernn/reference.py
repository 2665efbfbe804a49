"""Eager WaveRNN (fatchord/WaveRNN layout, also Coqui TTS's): the function every WaveRNN
backend must reproduce.

Upsampler: MelResNet over the padded mel gives aux features (stretched to sample rate), and the
mel itself is upsampled by stretch + smoothing convs. Per sample:
  x = I([prev_sample, mel_t, a1_t]);  x = GRU1(x) + x;  x = GRU2([x, a2_t]) + x
  x = relu(fc1([x, a3_t]));  x = relu(fc2([x, a4_t]));  logits = fc3(x)
Shapes: B batch, T samples, R rnn_dims, F fc_dims, C n_mels, A aux_dims.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import WaveRNNConfig


class ResBlock(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.conv1 = nn.Conv1d(dims, dims, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(dims, dims, kernel_size=1, bias=False)
        self.batch_norm1 = nn.BatchNorm1d(dims)
        self.batch_norm2 = nn.BatchNorm1d(dims)

    def forward(self, x):
        y = F.relu(self.batch_norm1(self.conv1(x)))
        return self.batch_norm2(self.conv2(y)) + x


class MelResNet(nn.Module):
    def __init__(self, cfg: WaveRNNConfig):
        super().__init__()
        self.conv_in = nn.Conv1d(cfg.n_mels, cfg.compute_dims, kernel_size=2 * cfg.pad + 1, bias=False)
        self.batch_norm = nn.BatchNorm1d(cfg.compute_dims)
        self.layers = nn.ModuleList(ResBlock(cfg.compute_dims) for _ in range(cfg.res_blocks))
        self.conv_out = nn.Conv1d(cfg.compute_dims, cfg.res_out_dims, kernel_size=1)

    def forward(self, x):
        x = F.relu(self.batch_norm(self.conv_in(x)))
        for f in self.layers:
            x = f(x)
        return self.conv_out(x)


def phase_weights(w, s: int):
    """A smoothing conv's taps w [2s + 1] (padding s) on a signal stretched by s -> [s, 3]: for the
    output at phase p of an input run, the summed taps that read the input before, at and after it
    (tap j of output f * s + p reads stretched position f * s + p + j - s, i.e. input
    f + floor((p + j - s) / s))."""
    j = torch.arange(2 * s + 1, device=w.device)
    p = torch.arange(s, device=w.device)[:, None]
    which = torch.div(p + j - s, s, rounding_mode="floor") + 1          # [s, 2s + 1], in 0..2
    return (F.one_hot(which, 3).to(w.dtype) * w[:, None]).sum(1)       # [s, 3]


class UpsampleNetwork(nn.Module):
    """padded mel [B, C, frames + 2*pad] -> (mel_up [B, T, C], aux [B, T, 4A]), T = frames * hop."""

    def __init__(self, cfg: WaveRNNConfig):
        super().__init__()
        self.scales = list(cfg.upsample_factors)
        self.total = cfg.hop_length
        self.indent = cfg.pad * self.total
        self.resnet = MelResNet(cfg)
        self.up_layers = nn.ModuleList()
        for s in self.scales:
            conv = nn.Conv2d(1, 1, kernel_size=(1, 2 * s + 1), padding=(0, s), bias=False)
            nn.init.constant_(conv.weight, 1.0 / (2 * s + 1))
            self.up_layers.append(conv)

    def smooth(self, m):
        """padded mel [B, C, frames] -> [B, C, frames * hop]: each scale s stretches by s (repeats
        every value s times) and smooths with its conv (2s + 1 taps, zero padding s). Computed in
        polyphase form: output f * s + p reads only inputs f - 1, f, f + 1 of the unstretched signal,
        with weights that are sums of the taps landing on each (phase_weights), so a stage is 3
        multiply-adds per output instead of 2s + 1 (R2's stages, 9-17 taps: ~5x faster than
        conv2d on the stretched signal, and the same function up to fp32 rounding: 5e-7 relative).
        Elementwise products and sums: every output's rounding is fixed, whatever the batch size."""
        x = m
        for s, conv in zip(self.scales, self.up_layers):
            w = phase_weights(conv.weight.reshape(-1), s)               # [s, 3]
            xp = F.pad(x, (1, 1)).unsqueeze(-1)                           # [B, C, frames + 2, 1]
            y = xp[..., :-2, :] * w[:, 0] + xp[..., 1:-1, :] * w[:, 1] + xp[..., 2:, :] * w[:, 2]
            x = y.flatten(-2)                                             # [B, C, frames * s]
        return x

    def forward(self, m):
        aux = torch.repeat_interleave(self.resnet(m), self.total, dim=-1)       # [B, 4A, T]
        x = self.smooth(m)
        if self.indent:
            x = x[:, :, self.indent:-self.indent]
        return x.transpose(1, 2), aux.transpose(1, 2)


class WaveRNN(nn.Module):
    def __init__(self, cfg: WaveRNNConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        R, Fd, A = cfg.rnn_dims, cfg.fc_dims, cfg.aux_dims
        self.upsample = UpsampleNetwork(cfg)
        self.I = nn.Linear(cfg.n_mels + A + 1, R)
        self.rnn1 = nn.GRU(R, R, batch_first=True)
        self.rnn2 = nn.GRU(R + A, R, batch_first=True)
        self.fc1 = nn.Linear(R + A, Fd)
        self.fc2 = nn.Linear(Fd + A, Fd)
        self.fc3 = nn.Linear(Fd, cfg.n_classes)

    def pad_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, C, frames] -> [B, C, frames + 2*pad] (edge frames repeated, or a constant)."""
        p = self.config.pad
        if p == 0:
            return mel
        if self.config.mel_pad_value is None:
            return torch.cat([mel[:, :, :1].expand(-1, -1, p), mel, mel[:, :, -1:].expand(-1, -1, p)], dim=-1)
        return F.pad(mel, (p, p), value=float(self.config.mel_pad_value))

    def conditioning(self, mel: torch.Tensor):
        """mel [B, C, frames] -> (mel_up [B, T, C], a1..a4 each [B, T, A])."""
        m, aux = self.upsample(self.pad_mel(mel))
        A = self.config.aux_dims
        return m, aux[..., :A], aux[..., A:2 * A], aux[..., 2 * A:3 * A], aux[..., 3 * A:4 * A]

    def forward(self, x: torch.Tensor, mel: torch.Tensor):
        """x [B, T] previous-sample inputs in [-1, 1]; mel [B, C, frames], frames*hop >= T.
        Returns logits / mixture parameters [B, T, n_classes]."""
        T = x.shape[1]
        m, a1, a2, a3, a4 = (t[:, :T] for t in self.conditioning(mel))
        h = self.I(torch.cat([x.unsqueeze(-1), m, a1], dim=2))
        res = h
        h, _ = self.rnn1(h)
        h = h + res
        res = h
        h, _ = self.rnn2(torch.cat([h, a2], dim=2))
        h = h + res
        h = F.relu(self.fc1(torch.cat([h, a3], dim=2)))
        h = F.relu(self.fc2(torch.cat([h, a4], dim=2)))
        return self.fc3(h)
