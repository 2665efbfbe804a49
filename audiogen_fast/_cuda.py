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


def _bench_ext(emulate: bool):
    """(module, device, its last argument: the emulator's scheduler seed or the current CUDA stream)
    for the floor benchmarks and test harnesses, which run on the GPU or on the CPU emulator."""
    if emulate:
        from . import _C_cuda_emu

        return _C_cuda_emu, "cpu", 0
    return _ext(), "cuda", torch.cuda.current_stream().cuda_stream


def _run_timed(once, emulate: bool):
    """once() on the emulator; on a GPU a warm-up, then once() timed by CUDA events: ms, or None."""
    once()
    if emulate:
        return None
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    once()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b)


def handoff_bench(nblk: int = 8, iters: int = 2000, payload: int = 192, threads: int = 256,
                  emulate: bool = False) -> dict:
    """Floor of the persistent kernels' block-to-block hand-off (csrc/cuda/handoff_bench.cuh): a token
    of `payload` floats goes round a ring of `nblk` blocks `iters` times through the WaveNet kernel's
    mailbox protocol. Returns the token's counter (must be iters * nblk) and, on a GPU, the time per
    hand-off in ns (CUDA events around one launch, after a warm-up launch)."""
    from .ops._persistent import TAGS

    ext, dev, last = _bench_ext(emulate)
    mail = torch.zeros(nblk * payload, device=dev)
    flags = torch.zeros(nblk * 16, device=dev, dtype=torch.int64)
    result = torch.zeros(payload, device=dev)

    def once():
        tag = next(TAGS) << 32
        ext.handoff_bench(nblk, iters, payload, threads, mail.data_ptr(), flags.data_ptr(), tag, result.data_ptr(), last)

    out = {"nblk": nblk, "iters": iters, "payload": payload, "threads": threads}
    ms = _run_timed(once, emulate)
    if ms is not None:
        out["ns_per_handoff"] = ms * 1e6 / (iters * nblk)
    out["token"] = float(result[0])
    out["rest_zero"] = bool((result[1:] == 0).all())
    return out


def matvec_bench(rows: int, cols: int, gate: bool = False, dtype=torch.float16, iters: int = 1000,
                 threads: int = 256, weights: torch.Tensor | None = None, x: torch.Tensor | None = None,
                 fixed: bool = False, regs: bool = False, emulate: bool = False) -> dict:
    """Floor of the persistent kernels' inner step (csrc/cuda/block_bench.cuh): one block runs `iters`
    block-wide products y = W x (W [rows, cols] in shared memory, the kernels' own block_matvec) each
    followed by a barrier. gate=True: rows pair up as (tanh, sigmoid) rows and the epilogue is the
    gate, as in a WaveNet layer's current-tap product; y[2u] = tanh(a[2u]) * sigmoid(a[2u+1]).
    fixed=True: the same product with its shape fixed at compile time (matvec_fixed; W1's shapes
    only, 256 threads), which must give the same bits; regs=True (with fixed): each thread's weights
    loaded into registers before the loop (matvec_fixed_regs; a layer's two shapes, 128 x 64 with the
    gate and 64 x 64), the same bits again. Returns y (of the last iteration; fp32 on the
    CPU), ticks per product (clock64 of thread 0) and, on a GPU, ns per product (CUDA events around
    the launch, after a warm-up launch)."""
    from .ops._persistent import WTYPES

    ext, dev, last = _bench_ext(emulate)
    if dtype not in WTYPES:
        raise ValueError(f"dtype must be one of {list(WTYPES)}, got {dtype}")
    if cols % 8 or (gate and rows % 2):
        raise ValueError(f"cols must be a multiple of 8 (and rows even for gate=True), got {rows} x {cols}")
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(rows, cols, generator=g) / cols ** 0.5 if weights is None else weights).to(dev, dtype).contiguous()
    xv = (torch.randn(cols, generator=g) if x is None else x).to(dev, torch.float32).contiguous()
    if tuple(w.shape) != (rows, cols) or tuple(xv.shape) != (cols,):
        raise ValueError(f"weights must be [{rows}, {cols}] and x [{cols}]")
    y = torch.zeros(rows, device=dev)
    ticks = torch.zeros(1, device=dev, dtype=torch.int64)
    nr = 2 if gate else 1
    if regs and not fixed:
        raise ValueError("regs=True is a variant of the fixed-shape product: pass fixed=True too")
    out = {"rows": rows, "cols": cols, "gate": gate, "dtype": str(dtype).replace("torch.", ""), "iters": iters,
           "fixed": fixed, "regs": regs}
    ms = _run_timed(lambda: ext.matvec_bench(w.data_ptr(), xv.data_ptr(), y.data_ptr(), ticks.data_ptr(), rows // nr,
                                             nr, cols, int(iters), WTYPES[dtype], int(threads), 2 if regs else int(fixed), last),
                    emulate)
    if ms is not None:
        out["ns_per_product"] = ms * 1e6 / iters  # includes the launch and the weight copy
    out["ticks_per_product"] = int(ticks[0]) / iters
    out["y"] = y.cpu()
    return out


def warp_sampler(logits: torch.Tensor, u: torch.Tensor, emulate: bool = False):
    """The persistent kernels' softmax sampler (kernel_common.cuh warp_inverse_cdf_fast: fp32 first,
    the float64 rule near a CDF boundary), one warp per row: logits [N, C], u [N] -> (classes int64
    [N], fell_back bool [N]: where the float64 rule decided)."""
    ext, dev, last = _bench_ext(emulate)
    if logits.dim() != 2 or u.shape != (logits.shape[0],):
        raise ValueError(f"logits must be [N, C] and u [N], got {tuple(logits.shape)} and {tuple(u.shape)}")
    lg = logits.to(dev, torch.float32).contiguous()
    uu = u.to(dev, torch.float32).contiguous()
    out = torch.zeros(lg.shape[0], device=dev, dtype=torch.int32)
    fb = torch.zeros_like(out)
    ext.warp_sampler(lg.data_ptr(), uu.data_ptr(), out.data_ptr(), fb.data_ptr(), lg.shape[0], lg.shape[1], last)
    return out.long().cpu(), fb.bool().cpu()


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
