"""Per-layer conditioning in frame-rate form, for the loops that take it (the C++ loop).

The "conv" upsampler with a frequency kernel of 1 stretches and smooths every mel channel along
time with the same kernels: along time it is one linear map, up[c, :] = mel[c, :] @ U with
U [frames, samples]. Each layer's conditioning 1x1 (all layers together W_c [L*G, C]) is linear
along channels. The two commute:

    W_c @ (mel @ U) = (W_c @ mel) @ U

so the frames are projected first (C*L*G multiply-adds per frame instead of per sample: hop = 256x
fewer for W2) and each sample's conditioning is the weighted sum of the few projected frames its
upsampler window covers (NB of them, 3-4 for the standard scales). Nothing of size
[samples, L*G] is ever materialised: for W2 that tensor is 10 KB per sample, 21 MB per block.

FrameCond.dense() is the reference: the per-sample tensor the other loops take.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class FrameCond(NamedTuple):
    """Sample t of stream b gets bias[b] + sum_{i < NB} wts[b, t, i] * P[b, f0[b, t] + i]."""

    P: torch.Tensor     # [B, F, L*G] float32, projected frames
    bias: torch.Tensor  # [B, L*G] float32 (dilated-conv bias + speaker projection)
    f0: torch.Tensor    # [B, n] int32, first frame of each sample's window (f0 + NB <= F)
    wts: torch.Tensor   # [B, n, NB] float32, the upsampler's weights of those frames

    @property
    def shape(self):
        """(B, n): streams and samples, like a dense conditioning tensor's leading dims."""
        return tuple(self.f0.shape)

    def dense(self) -> torch.Tensor:
        """The per-sample conditioning [B, n, L*G] (reference for the C++ loop's sum)."""
        B, n, NB = self.wts.shape
        idx = (self.f0.long().unsqueeze(-1) + torch.arange(NB, device=self.f0.device)).reshape(B, n * NB)
        rows = torch.gather(self.P, 1, idx.unsqueeze(-1).expand(-1, -1, self.P.shape[-1]))  # [B, n*NB, LG]
        rows = rows.view(B, n, NB, -1)
        return self.bias.unsqueeze(1) + (self.wts.unsqueeze(-1) * rows).sum(2)

    @staticmethod
    def from_dense(cond: torch.Tensor) -> "FrameCond":
        """A per-sample conditioning tensor [B, n, L, G] (or [B, n, L*G]) as the case F = n,
        f0[t] = t, NB = 1, weight 1, bias 0 (the loop then adds exactly cond)."""
        B, n = cond.shape[:2]
        P = cond.reshape(B, n, -1).float().contiguous()
        f0 = torch.arange(n, dtype=torch.int32).expand(B, n).contiguous()
        return FrameCond(P, torch.zeros(B, P.shape[-1]), f0, torch.ones(B, n, 1))

    @staticmethod
    def cat(items: list) -> "FrameCond":
        """Streams side by side (same n): P padded with zero frames to a common F and wts with
        zero weights to a common NB (the padding frames make f0 + NB <= F hold for every row)."""
        NB = max(c.wts.shape[2] for c in items)
        F = max(c.P.shape[1] for c in items) + NB
        P = torch.cat([torch.nn.functional.pad(c.P, (0, 0, 0, F - c.P.shape[1])) for c in items])
        wts = torch.cat([torch.nn.functional.pad(c.wts, (0, NB - c.wts.shape[2])) for c in items])
        return FrameCond(P, torch.cat([c.bias for c in items]), torch.cat([c.f0 for c in items]), wts)


def cat_cond(items: list):
    """torch.cat over streams for dense tensors or FrameConds."""
    if isinstance(items[0], FrameCond):
        return FrameCond.cat(items)
    return torch.cat(items)


def band(U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """U [F, n] (frame f's weight in sample t) -> (f0 [n] int32, wts [n, NB]) with every nonzero
    of column t inside rows f0[t] .. f0[t] + NB - 1; NB is the widest column's nonzero span."""
    F, n = U.shape
    nz = U != 0
    first = nz.float().argmax(0)                       # first nonzero row (0 for an all-zero column)
    last = F - 1 - nz.flip(0).float().argmax(0)
    last = torch.where(nz.any(0), last, first)
    NB = int((last - first + 1).max()) if n else 1
    f0 = first.clamp(max=F - NB)
    idx = f0.unsqueeze(0) + torch.arange(NB).unsqueeze(1)   # [NB, n]
    return f0.to(torch.int32), U.gather(0, idx).t().contiguous().float()
