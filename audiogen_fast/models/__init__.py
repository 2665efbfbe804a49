"""Model families. Each lives in its own folder with the same four files:
config.py (hyper-parameters), reference.py (the eager nn.Module: the function),
runtime.py (generation loops per backend), convert.py (importers of public checkpoints).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Family:
    name: str
    config_cls: type
    model_cls: type
    runtime: ModuleType


_SPECS = {
    "wavenet": ("WaveNetConfig", "WaveNet"),
    "wavernn": ("WaveRNNConfig", "WaveRNN"),
    "diffwave": ("DiffWaveConfig", "DiffWave"),
}
FAMILY_NAMES = tuple(_SPECS)


def family(name: str) -> Family:
    if name not in _SPECS:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(FAMILY_NAMES)})")
    cfg_name, model_name = _SPECS[name]
    cfg_mod = importlib.import_module(f"{__name__}.{name}.config")
    ref_mod = importlib.import_module(f"{__name__}.{name}.reference")
    rt_mod = importlib.import_module(f"{__name__}.{name}.runtime")
    return Family(name, getattr(cfg_mod, cfg_name), getattr(ref_mod, model_name), rt_mod)


def config_from_dict(d: dict):
    from .base import ConfigError

    if not isinstance(d, dict) or "family" not in d:
        raise ConfigError("config has no 'family' field")
    return family(d["family"]).config_cls.from_dict(d)
