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


def handoff_bench(nblk: int = 8, iters: int = 2000, payload: int = 192, threads: int = 256,
                  emulate: bool = False) -> dict:
    """Floor of the persistent kernels' block-to-block hand-off (csrc/cuda/handoff_bench.cuh): a token
    of `payload` floats goes round a ring of `nblk` blocks `iters` times through the WaveNet kernel's
    mailbox protocol. Returns the token's counter (must be iters * nblk) and, on a GPU, the time per
    hand-off in ns (CUDA events around one launch, after a warm-up launch)."""
    from .ops._persistent import TAGS

    if emulate:
        from . import _C_cuda_emu as ext
        dev = "cpu"
    else:
        ext, dev = _ext(), "cuda"
    mail = torch.zeros(nblk * payload, device=dev)
    flags = torch.zeros(nblk * 16, device=dev, dtype=torch.int64)
    result = torch.zeros(payload, device=dev)
    def once():
        tag = next(TAGS) << 32
        if emulate:
            ext.handoff_bench(nblk, iters, payload, threads, mail.data_ptr(), flags.data_ptr(), tag, result.data_ptr(), 0)
        else:
            ext.handoff_bench(nblk, iters, payload, threads, mail.data_ptr(), flags.data_ptr(), tag, result.data_ptr(),
                              torch.cuda.current_stream().cuda_stream)

    out = {"nblk": nblk, "iters": iters, "payload": payload, "threads": threads}
    if emulate:
        once()
    else:
        once()  # warm-up
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        once()
        b.record()
        torch.cuda.synchronize()
        out["ns_per_handoff"] = a.elapsed_time(b) * 1e6 / (iters * nblk)
    out["token"] = float(result[0])
    out["rest_zero"] = bool((result[1:] == 0).all())
    return out


def launch_latency_us(n: int = 2000) -> float:
    """Wall time per empty kernel launch, n back-to-back launches on the current stream (CUDA events)."""
    ext = _ext()
    s = torch.cuda.current_stream().cuda_stream
    ext.empty_launches(100, s)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    ext.empty_launches(n, s)
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) * 1e3 / n
