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

    def forward(self, m):
        aux = torch.repeat_interleave(self.resnet(m), self.total, dim=-1)       # [B, 4A, T]
        x = m.unsqueeze(1)
        for s, conv in zip(self.scales, self.up_layers):
            x = conv(torch.repeat_interleave(x, s, dim=-1))
        x = x.squeeze(1)
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
