"""Checked wrappers over the CUDA extension (csrc/bindings_cuda.cpp): dtype, device, contiguity
and shapes are checked here; kernels run on the current torch stream."""
from __future__ import annotations

import torch


def _ext():
    from . import _C_cuda

    return _C_cuda


def _check(t, name, dtype, ndim):
    if not isinstance(t, torch.Tensor) or t.device.type != "cuda":
        raise ValueError(f"{name} must be a CUDA tensor")
    if t.dtype != dtype or t.dim() != ndim or not t.is_contiguous():
        raise ValueError(f"{name} must be a contiguous {ndim}-D {dtype} tensor, got {t.dtype} {tuple(t.shape)}")


def sample_softmax(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """logits [N, C] fp32, u [N] fp32 -> int64 [N] (the rule of audiogen_fast.sampling.sample_softmax)."""
    _check(logits, "logits", torch.float32, 2)
    _check(u, "u", torch.float32, 1)
    if u.shape[0] != logits.shape[0] or u.device != logits.device:
        raise ValueError(f"u must be [N={logits.shape[0]}] on {logits.device}")
    out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
    _ext().sample_softmax(logits.data_ptr(), u.data_ptr(), out.data_ptr(), logits.shape[0], logits.shape[1],
                          torch.cuda.current_stream(logits.device).cuda_stream)
    return out


def mulaw_decode(k: torch.Tensor, classes: int = 256) -> torch.Tensor:
    if not isinstance(k, torch.Tensor) or k.device.type != "cuda" or k.dtype != torch.int64 or not k.is_contiguous():
        raise ValueError("k must be a contiguous int64 CUDA tensor")
    out = torch.empty(k.shape, dtype=torch.float32, device=k.device)
    _ext().mulaw_decode(k.data_ptr(), out.data_ptr(), k.numel(), int(classes) - 1,
                        torch.cuda.current_stream(k.device).cuda_stream)
    return out
