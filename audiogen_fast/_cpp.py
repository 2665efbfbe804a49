"""Checked Python wrappers over the C++ extension's raw-pointer entry points.

Each wrapper validates dtype, shape and contiguity, makes the arrays it passes contiguous,
keeps them alive for the call and passes data pointers and sizes.
"""
from __future__ import annotations

import numpy as np


def _ext():
    from . import _C_cpu

    return _C_cpu


def _f32(a, name, ndim=None):
    a = np.ascontiguousarray(np.asarray(a), dtype=np.float32)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def cpu_features() -> dict:
    return dict(_ext().cpu_features())


def mulaw_encode(x, classes: int = 256) -> np.ndarray:
    x = _f32(x, "x")
    out = np.empty(x.shape, dtype=np.int64)
    _ext().mulaw_encode(x.ctypes.data, out.ctypes.data, x.size, int(classes) - 1)
    return out


def mulaw_decode(k, classes: int = 256) -> np.ndarray:
    k = np.ascontiguousarray(np.asarray(k), dtype=np.int64)
    out = np.empty(k.shape, dtype=np.float32)
    _ext().mulaw_decode(k.ctypes.data, out.ctypes.data, k.size, int(classes) - 1)
    return out


def sample_softmax(logits, u) -> np.ndarray:
    logits = _f32(logits, "logits", 2)
    u = _f32(u, "u", 1)
    if u.shape[0] != logits.shape[0]:
        raise ValueError(f"u has {u.shape[0]} rows, logits {logits.shape[0]}")
    out = np.empty(u.shape[0], dtype=np.int64)
    _ext().sample_softmax(logits.ctypes.data, u.ctypes.data, out.ctypes.data, logits.shape[0], logits.shape[1])
    return out


def sample_mol(params, u, log_scale_min: float) -> np.ndarray:
    params = _f32(params, "params", 2)
    u = _f32(u, "u", 2)
    if params.shape[1] % 3 or u.shape != (params.shape[0], 2):
        raise ValueError(f"need params [N, 3M] and u [N, 2], got {params.shape} and {u.shape}")
    out = np.empty(params.shape[0], dtype=np.float32)
    _ext().sample_mol(params.ctypes.data, u.ctypes.data, out.ctypes.data, params.shape[0], params.shape[1] // 3,
                      float(log_scale_min))
    return out


def sample_gaussian(params, z, log_scale_min: float) -> np.ndarray:
    params = _f32(params, "params", 2)
    z = _f32(z, "z", 1)
    if params.shape != (z.shape[0], 2):
        raise ValueError(f"need params [N, 2] and z [N], got {params.shape} and {z.shape}")
    out = np.empty(z.shape[0], dtype=np.float32)
    _ext().sample_gaussian(params.ctypes.data, z.ctypes.data, out.ctypes.data, z.shape[0], float(log_scale_min))
    return out
