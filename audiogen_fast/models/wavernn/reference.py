"""Eager WaveRNN (fatchord/WaveRNN layout, also Coqui TTS's): the function every WaveRNN
backend must reproduce.

Upsampler: MelResNet over the padded mel gives aux features (stretched to sample rate), and the
mel itself is upsampled by stretch + smoothing convs. Per sample:
  x = I([prev_sample, mel_t, a1_t]);  x = GRU1(x) + x;  x = GRU2([x, a2_t]) + x
  x = relu(fc1([x, a3_t]));  x = relu(fc2([x, a4_t]));  logits = fc3(x)
Shapes: B batch, T samples, R rnn_dims, F fc_dims, C n_mels, A aux_dims.
"""
from __future__ import annotations

import functools
import math

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


def _stages(x, scales, taps):
    """The stretch-and-smooth stages in polyphase form (UpsampleNetwork.smooth): x [B, C, frames],
    taps[i] the (2 s_i + 1) taps of scale s_i -> [B, C, frames * prod(scales)]."""
    for s, t in zip(scales, taps):
        w = phase_weights(t, s)                                           # [s, 3]
        xp = F.pad(x, (1, 1)).unsqueeze(-1)                               # [B, C, frames + 2, 1]
        y = xp[..., :-2, :] * w[:, 0] + xp[..., 1:-1, :] * w[:, 1] + xp[..., 2:, :] * w[:, 2]
        x = y.flatten(-2)                                                 # [B, C, frames * s]
    return x


def _frame_response(scales, taps, c: int):
    """The stages' response at frame c to a unit impulse at each frame of 2c + 1, in float64:
    [2c + 1 impulse frames, hop] (row j: how mel frame j feeds smoothed frame c)."""
    hop = math.prod(scales)
    eye = torch.eye(2 * c + 1, dtype=torch.float64, device=taps[0].device)
    return _stages(eye[None], scales, taps)[0, :, c * hop:(c + 1) * hop]   # float64 by promotion


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
        # frames of context a smoothed frame needs on each side, with a frame to spare: a stage of
        # scale s reads its input's neighbours, 1 / (s_1 .. s_(i-1)) frame away (R2: 1.28 -> 3)
        self.context = math.ceil(sum(1 / math.prod(self.scales[:i]) for i in range(len(self.scales)))) + 1
        self.span = _frame_span(tuple(self.scales), self.context)
        self._filter = None                  # (taps, frame_filter()) kept for generation

    def smooth(self, m):
        """padded mel [B, C, frames] -> [B, C, frames * hop]: each scale s stretches by s (repeats
        every value s times) and smooths with its conv (2s + 1 taps, zero padding s). Computed in
        polyphase form: output f * s + p reads only inputs f - 1, f, f + 1 of the unstretched signal,
        with weights that are sums of the taps landing on each (phase_weights), so a stage is 3
        multiply-adds per output instead of 2s + 1 (R2's stages, 9-17 taps: ~5x faster than
        conv2d on the stretched signal, and the same function up to fp32 rounding: 5e-7 relative).
        Elementwise products and sums: every output's rounding is fixed, whatever the batch size.
        The definition; smooth_frames computes it for generation."""
        return _stages(m, self.scales, [conv.weight.reshape(-1) for conv in self.up_layers])

    def frame_filter(self):
        """The stages composed into one polyphase filter -> W [K, hop]: away from the signal's ends,
        smooth(m)[:, :, f * hop + p] = sum_j m[:, :, f + lo + j] * W[j, p] (lo, K: self.span; R2:
        frames f - 2 .. f + 2). Read off smooth() applied to unit impulses, in float64 (differentiable
        in the taps, so training goes through it too; ~1 ms, so kept for generation)."""
        c, (lo, K) = self.context, self.span
        taps = torch.cat([conv.weight.reshape(-1) for conv in self.up_layers])
        memo = not torch.is_grad_enabled()   # generation: kept while the taps keep their values
        if memo and self._filter is not None:
            t, W = self._filter
            if (t.device, t.dtype) == (taps.device, taps.dtype) and torch.equal(t, taps):
                return W
        W = _frame_response(self.scales, [conv.weight.reshape(-1) for conv in self.up_layers], c)[c + lo:c + lo + K]
        if memo:
            self._filter = (taps.clone(), W)
        return W

    def smooth_frames(self, m, f0: int, f1: int):
        """Frames [f0, f1) of smooth(m), samples first: [B, (f1 - f0) * hop, C] (the layout the
        loops read). Each frame is a K-term sum over the mel frames around it (frame_filter: R2's 5
        terms instead of 3 stages of 3 on every intermediate sample, and no context frames computed
        only to be cut), in [B, frames, hop, C] with C innermost (vectorised, and no transpose after).
        Frames whose filter would reach past m's ends take smooth()'s zero padding: computed by
        smooth() on the end of m (pad < 2 configs; R2 never). Elementwise products and sums in a fixed
        order, so a frame's bits depend on its K mel frames only, whatever the window or batch:
        the 4e-8 rms (1.6e-7 max, relative) between the two forms is the same in every run."""
        B, C, n = m.shape
        hop, c, (lo, K) = self.total, self.context, self.span
        if f1 <= f0:
            return m.new_zeros(B, 0, C)
        a = min(max(f0, -lo), f1)              # frames [f0, a): the filter reaches past m's start,
        b = max(min(f1, n - (lo + K - 1)), a)  # [b, f1): past its end; [a, b): inside
        parts = []
        if f0 < a:
            parts.append(self.smooth(m[:, :, :min(n, a + c)])[:, :, f0 * hop:a * hop].transpose(1, 2))
        if a < b:
            W = self.frame_filter().to(m.dtype)                            # [K, hop]
            x = m[:, :, a + lo:b + lo + K - 1].transpose(1, 2).contiguous().unsqueeze(2)  # [B, frames, 1, C]
            y = x[:, 0:b - a] * W[0, :, None]                             # [B, b - a, hop, C]
            # generation: one temporary, reused (each fresh 0.6 MB tensor page-faults in, ~5x the
            # arithmetic's time here); training: out-of-place, for autograd
            t = None if y.requires_grad else torch.empty_like(y)
            for j in range(1, K):
                xj = x[:, j:j + b - a]
                y = y + xj * W[j, :, None] if t is None else y.add_(torch.mul(xj, W[j, :, None], out=t))
            parts.append(y.reshape(B, (b - a) * hop, C))
        if b < f1:
            s = max(0, b - c)
            parts.append(self.smooth(m[:, :, s:])[:, :, (b - s) * hop:(f1 - s) * hop].transpose(1, 2))
        return parts[0].contiguous() if len(parts) == 1 else torch.cat(parts, 1)

    def stretch(self, aux):
        """Frame features [B, A, frames] -> [B, frames * hop, A]: each frame's row repeated hop
        times (the nearest-neighbour stretch of fatchord's aux), samples first."""
        B, A, n = aux.shape
        return aux.transpose(1, 2).unsqueeze(2).expand(B, n, self.total, A).reshape(B, n * self.total, A)

    def forward(self, m):
        pad = self.indent // self.total
        return self.smooth_frames(m, pad, m.shape[-1] - pad), self.stretch(self.resnet(m))


@functools.lru_cache(maxsize=None)
def _frame_span(scales: tuple, c: int) -> tuple:
    """(lo, K): the mel frames f + lo .. f + lo + K - 1 that smoothed frame f depends on, from
    the stages' structure (every tap 1, impulses in float64: nonzero is exactly "depends on")."""
    y = _frame_response(scales, [torch.ones(2 * s + 1, dtype=torch.float64) for s in scales], c)
    used = (y != 0).any(1).nonzero().flatten().tolist()
    assert 0 < used[0] and used[-1] < 2 * c, "the smoothing context is too short"   # c has a frame to spare
    return used[0] - c, used[-1] - used[0] + 1


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
