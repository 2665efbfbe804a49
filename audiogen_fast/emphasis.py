"""Pre-emphasis (training targets) and de-emphasis (generated audio), see AudioConfig.preemphasis.

    e[n] = x[n] - a * x[n-1]          (x[-1] = 0)        preemphasize
    y[n] = e[n] + a * y[n-1]          (y[-1] = 0)        Deemphasis, its exact inverse

De-emphasis runs in float64 one sample after the other (scipy's lfilter, or the same recursion in
Python where scipy is missing: bit-identical, since lfilter's transposed form computes exactly
x + a*y here), so cutting the audio into chunks never changes a sample: streamed audio equals
one-shot generate(). It runs after every backend on the sampled signal, so backends still
compare sample for sample before it.
"""
from __future__ import annotations

import numpy as np
import torch


def preemphasize(x, a: float):
    """x [..., T] (torch or numpy) -> e [..., T], same type and dtype."""
    if not a:
        return x
    if isinstance(x, torch.Tensor):
        e = x.clone()
        e[..., 1:] -= a * x[..., :-1]
        return e
    x = np.asarray(x)
    e = x.copy()
    e[..., 1:] -= np.asarray(a, dtype=x.dtype) * x[..., :-1]
    return e


class Deemphasis:
    """Stateful de-emphasis of B rows: call with [B, T] chunks in order; returns float32 [B, T]
    clipped to [-1, 1] (the filter's state keeps the unclipped value)."""

    def __init__(self, a: float, batch: int = 1):
        self.a = float(a)
        self.state = np.zeros(batch, dtype=np.float64)   # y[n-1] of each row

    def __call__(self, e) -> np.ndarray:
        e = np.asarray(e, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] != len(self.state):
            raise ValueError(f"Deemphasis for {len(self.state)} row(s) got shape {e.shape}")
        if e.shape[1] == 0:
            return e.astype(np.float32)
        try:
            from scipy.signal import lfilter
        except ImportError:
            lfilter = None
        if lfilter is not None:
            y, _ = lfilter([1.0], [1.0, -self.a], e, axis=1, zi=(self.a * self.state)[:, None])
        else:
            y = np.empty_like(e)
            for b in range(e.shape[0]):
                s = float(self.state[b])
                for n, v in enumerate(e[b].tolist()):
                    s = v + self.a * s
                    y[b, n] = s
        self.state = y[:, -1].copy()
        return np.clip(y, -1.0, 1.0).astype(np.float32)


def deemphasize(e, a: float) -> np.ndarray:
    """One-shot de-emphasis of [T] or [B, T] -> float32, the same shape, clipped to [-1, 1]."""
    e = np.asarray(e)
    if not a:
        return e.astype(np.float32)
    rows = e.reshape(-1, e.shape[-1]) if e.ndim else e.reshape(1, 1)
    return Deemphasis(a, rows.shape[0])(rows).reshape(e.shape)
