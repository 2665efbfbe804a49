"""Backend registry: which backends exist here, and why not when they don't.

"torch" (eager PyTorch) is always available. "cpp" needs the C++ extension, "cuda" the CUDA
extension and a GPU, "triton" the triton package and a GPU. Asking for an unavailable backend
raises with the reason; "auto" picks the fastest one that is available and implements the
model family on the requested device.
"""
from __future__ import annotations

import importlib

# Fastest first: the order "auto" tries.
PREFERENCE = ("cuda", "triton", "cpp", "torch")
DEVICES = {"torch": ("cpu", "cuda"), "cpp": ("cpu",), "triton": ("cuda",), "cuda": ("cuda",)}


class BackendError(ValueError):
    """Unknown or unavailable backend, or a backend that cannot run this model/device."""


def _ext(name):
    try:
        return importlib.import_module(f"audiogen_fast.{name}"), ""
    except ImportError as e:
        return None, f"extension not built: {e}"


def _cuda_device_reason() -> str:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    return ""


def backends() -> dict[str, tuple[bool, str]]:
    """{name: (available, reason if not)}. Calling this may query the CUDA driver; importing
    audiogen_fast does not."""
    out = {"torch": (True, "")}
    mod, why = _ext("_C_cpu")
    out["cpp"] = (mod is not None, why)
    try:
        import triton  # noqa: F401
        why = _cuda_device_reason()
        out["triton"] = (not why, why)
    except ImportError:
        out["triton"] = (False, "triton is not installed (pip install triton)")
    mod, why = _ext("_C_cuda")
    if mod is not None:
        why = _cuda_device_reason()
    out["cuda"] = (not why, why)
    return out


def family_backends(fam) -> tuple:
    return tuple(getattr(fam.runtime, "BACKENDS", ("torch",)))


def unverified(fam) -> tuple:
    """Backends a family implements whose kernels have not yet run on the hardware they target
    (e.g. a Triton kernel tested only in the interpreter): usable by name, never picked by "auto"."""
    return tuple(getattr(fam.runtime, "UNVERIFIED", ()))


def slower_than_eager(fam) -> dict:
    """{backend: dtypes} a family's runtime names where that backend, though verified, was measured
    slower than the eager loop: "auto" passes over it for those dtypes (naming it still works)."""
    return dict(getattr(fam.runtime, "AUTO_SKIP", {}))


def resolve(name: str, fam, device: str, dtype: str = "float32") -> str:
    """Validate an explicit backend or pick one for "auto" (for the dtype the model runs in)."""
    if not isinstance(name, str):
        raise BackendError(f"backend must be a string, got {type(name).__name__}")
    avail = backends()
    impl = family_backends(fam)
    if name == "auto":
        for b in PREFERENCE:
            if (avail[b][0] and b in impl and device in DEVICES[b] and b not in unverified(fam)
                    and dtype not in slower_than_eager(fam).get(b, ())):
                return b
        raise BackendError(f"no available backend runs {fam.name} on {device}")  # torch always does
    if name not in avail:
        raise BackendError(f"unknown backend {name!r} (known: auto, {', '.join(PREFERENCE)})")
    ok, why = avail[name]
    if not ok:
        raise BackendError(f"backend {name!r} is not available: {why}")
    if name not in impl:
        raise BackendError(f"backend {name!r} does not implement the {fam.name} family yet "
                           f"(implemented: {', '.join(impl)})")
    if device not in DEVICES[name]:
        raise BackendError(f"backend {name!r} runs on {'/'.join(DEVICES[name])}, not {device}")
    return name
