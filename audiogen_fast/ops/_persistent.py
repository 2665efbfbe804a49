"""What the CUDA persistent-kernel wrappers share (wavenet_persistent.py, wavernn_persistent.py):
the extension (the CUDA module, or the CPU emulator for tests), launch ids for the flags, weight
dtypes, padding, input checks, the scratch buffers kept between launches and the profile sums."""
from __future__ import annotations

import itertools

import torch

TAGS = itertools.count(1)  # launch ids: flags carry (id << 32) + step, so stale flags never match
WTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def pad8(n: int) -> int:
    return (int(n) + 7) // 8 * 8


def ext(emulate: bool):
    if emulate:
        from .. import _C_cuda_emu

        return _C_cuda_emu
    from .. import _C_cuda

    return _C_cuda


def stream_handle(device: torch.device) -> int:
    """The current CUDA stream of `device` (0 on the emulator's CPU tensors)."""
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0


def check_tensor(t, name: str, shape, device, finite: bool = True):
    """A launch input (CUDA and Triton loops): the exact shape, contiguous fp32, on the weights'
    device (a GPU named without an index: any GPU), and finite (finite=False: not checked, no device
    sync). A wrong size must raise here, never read out of bounds in a kernel."""
    device = torch.device(device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    if t.dtype != torch.float32 or not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous float32 (got {t.dtype}, contiguous={t.is_contiguous()})")
    if t.device.type != device.type or (device.index is not None and t.device.index != device.index):
        raise ValueError(f"{name} is on {t.device}, the weights on {device}")
    if finite and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinity")


class Scratch:
    """Mailboxes / gather buffers and flags, kept between launches (zero-initialised once; old
    flags never match a new launch id)."""

    def __init__(self, device):
        self.device, self.bufs = device, {}

    def get(self, name: str, n: int, dtype):
        buf = self.bufs.get(name)
        if buf is None or buf.numel() < n:
            buf = torch.zeros(max(n, 1), device=self.device, dtype=dtype)
            self.bufs[name] = buf
        return buf


def launch_groups(B: int, M: int, chains_per_launch: int):
    """(g0, g1, chains) of each launch: B streams, M per chain, at most chains_per_launch chains
    resident at once (later groups run in later launches on the same stream)."""
    per_launch = chains_per_launch * M
    for g0 in range(0, B, per_launch):
        g1 = min(B, g0 + per_launch)
        yield g0, g1, -(-(g1 - g0) // M)


class PhaseProfile:
    """A kernel's profile (its Params.prof: clock ticks [chains][blocks][nphase], summed by thread
    0 of each block per phase, csrc/cuda/kernel_common.cuh PhaseClock), summed over chains and
    launches until reset(); means() gives ticks per sample of one chain [blocks][nphase]."""

    def __init__(self, nphase: int):
        self.nphase = nphase
        self.reset()

    def reset(self):
        self.ticks, self.samples = None, 0

    def buffer(self, nch: int, nblocks: int, device) -> torch.Tensor:
        return torch.zeros(nch * nblocks * self.nphase, device=device, dtype=torch.int64)

    def add(self, buf: torch.Tensor, nch: int, nblocks: int, steps: int):
        t = buf.view(nch, nblocks, self.nphase).sum(0).cpu()
        if self.ticks is None or self.ticks.shape[0] != nblocks:  # another plan: start over
            self.ticks, self.samples = torch.zeros_like(t), 0
        self.ticks += t
        self.samples += nch * steps

    def means(self) -> torch.Tensor:
        if self.ticks is None:
            raise RuntimeError("no profile: construct the loop with profile=True and run it")
        return self.ticks.double() / self.samples
