"""audiogen_fast: fast inference for neural audio generation (WaveNet, WaveRNN, DiffWave).

    import audiogen_fast as agf
    model = agf.build("W2")                      # eager reference model, random weights
    agf.save(model, "m.safetensors")
    voc = agf.load("m.safetensors")              # -> Vocoder (device and backend picked automatically)
    audio = voc.generate(mel=mel, seed=0)

Importing this package does not initialise CUDA or load any compiled extension.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .backends import BackendError, backends
from .checkpoint import CheckpointError, save
from .engine import InputError, Vocoder
from .models.base import ConfigError
from .presets import build, preset_names

PRESET_PREFIX = "preset:"


def load_model(path, hparams=None, seed: int = 0):
    """Checkpoint path (or "preset:NAME" for a randomly initialised preset) -> eager model."""
    from .checkpoint import load_model as _load

    if isinstance(path, str) and path.startswith(PRESET_PREFIX):
        return build(path[len(PRESET_PREFIX):], seed=seed)
    return _load(path, hparams=hparams)


def load(path=None, device=None, backend: str = "auto", dtype: str = "float32", hparams=None,
         seed: int = 0) -> Vocoder:
    """Load a checkpoint as a Vocoder.

    path: a native .safetensors checkpoint, an importable PyTorch checkpoint, or "preset:NAME"
    (random weights from ``seed``; for benchmarks and tests). device: "cpu", "cuda" or None
    (cuda when available). backend: "auto" or one of agf.backends(). dtype: float32, float16 or
    bfloat16 (on the CPU: the cpp backend's fp16-stored weights / bf16 products; for WaveNet and
    WaveRNN also int8 products). hparams: hyper-parameters for imported checkpoints that do not carry them.
    """
    if path is None:
        path = default_model_path()
        if path is None:
            raise CheckpointError("no checkpoint given and no default model bundled with this installation: "
                                  "pass a path, or 'preset:NAME' for random weights "
                                  f"(presets: {', '.join(preset_names())})")
    return Vocoder(load_model(path, hparams=hparams, seed=seed), device=device, backend=backend, dtype=dtype)


def default_model_path():
    """The bundled default model (audiogen_fast/data/default.safetensors), or None."""
    import os

    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "default.safetensors")
    return p if os.path.exists(p) else None


__all__ = ["default_model_path", "load", "load_model", "save", "build", "backends", "preset_names", "Vocoder",
           "BackendError", "CheckpointError", "ConfigError", "InputError", "__version__"]
