"""Checkpoints: the native format, format detection, strict loading, importers.

Native format: one .safetensors file; the tensors are the eager model's state_dict and the
metadata holds {"format": "audiogen_fast", "format_version": "1", "config": <JSON config>}
(family, hyper-parameters, sample rate and mel settings). Loading is strict: missing,
unexpected and mis-shaped tensors are all named in one error.

PyTorch files (.pt / .pth / .ckpt) are read only with torch.load(weights_only=True), so a
pickle can never run code; they are handed to the importers registered by the families'
convert.py modules (format detected from the keys).
"""
from __future__ import annotations

import json
import os
import struct
from typing import Callable

import torch

from .models import config_from_dict, family
from .models.base import ConfigError

FORMAT = "audiogen_fast"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message names the problem."""


# ---- importers ----------------------------------------------------------------------------
# name -> (detect(obj) -> bool, convert(obj, hparams) -> nn.Module). Filled by convert.py modules.
IMPORTERS: dict[str, tuple[Callable, Callable]] = {}


def register_importer(name: str, detect: Callable, convert: Callable) -> None:
    IMPORTERS[name] = (detect, convert)


def _load_importers() -> None:
    import importlib

    for fam in ("wavenet", "wavernn", "diffwave"):
        try:
            importlib.import_module(f"audiogen_fast.models.{fam}.convert")
        except ModuleNotFoundError as e:
            if e.name != f"audiogen_fast.models.{fam}.convert":
                raise


# ---- save ---------------------------------------------------------------------------------

def save(model: torch.nn.Module, path) -> None:
    """Write ``model`` (an audiogen_fast reference module) as a native .safetensors checkpoint."""
    from safetensors.torch import save_file

    cfg = getattr(model, "config", None)
    if cfg is None or not getattr(cfg, "family", ""):
        raise TypeError("save() needs an audiogen_fast model (built by audiogen_fast.build or load)")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": cfg.to_json()}
    save_file(tensors, str(path), metadata=meta)


# ---- format detection -----------------------------------------------------------------------

def sniff(path) -> str:
    """'safetensors', 'torch-zip', 'torch-pickle', or raises CheckpointError saying what it is."""
    path = str(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint path is a directory, not a file: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"checkpoint file is empty (0 bytes): {path}")
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"version https://git-lfs"):
        raise CheckpointError(f"{path} is a Git LFS pointer, not the checkpoint: run `git lfs pull` to fetch it")
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch-pickle"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{":
            if 8 + n > size:
                raise CheckpointError(f"{path} is a truncated safetensors file (header says {n} bytes, file has {size})")
            _check_safetensors_extent(path, n, size)
            return "safetensors"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        raise CheckpointError(f"{path} is a JSON file, not a checkpoint (a config? pass it as hparams=)")
    if stripped[:1] == b"<":
        raise CheckpointError(f"{path} is an HTML/XML file, not a checkpoint (a failed download?)")
    raise CheckpointError(f"{path} is not a checkpoint audiogen_fast can read (not safetensors or a PyTorch file)")


def _check_safetensors_extent(path, header_len: int, size: int) -> None:
    """The tensors the header lists must lie inside the file (else: truncated download)."""
    if header_len > 100_000_000:
        raise CheckpointError(f"{path} has an implausible safetensors header ({header_len} bytes)")
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is a damaged safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is a damaged safetensors file (its header is not a JSON object)")
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        try:
            end = max(end, int(v["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path} is a damaged safetensors file (bad entry for tensor {k!r})") from None
    if 8 + header_len + end > size:
        raise CheckpointError(f"{path} is a truncated safetensors file: its tensors need "
                              f"{8 + header_len + end} bytes, the file has {size}")


# ---- load -----------------------------------------------------------------------------------

def _strict_load(model: torch.nn.Module, tensors: dict, where: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshaped = sorted(
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(tensors) if tuple(tensors[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}{' ...' if len(unexpected) > 20 else ''}")
        if misshaped:
            parts.append(f"mis-shaped ({len(misshaped)}): {'; '.join(misshaped[:20])}")
        raise CheckpointError(f"{where} does not match its config: " + " | ".join(parts))
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{where} has NaN or inf in: {', '.join(sorted(bad)[:20])}")
    cast = {k: v.to(expected[k].dtype) for k, v in tensors.items()}
    model.load_state_dict(cast, strict=True)


def read_native(path) -> torch.nn.Module:
    from safetensors import SafetensorError, safe_open

    path = str(path)
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            if meta.get("format") != FORMAT or "config" not in meta:
                raise CheckpointError(
                    f"{path} is a safetensors file without an audiogen_fast config in its metadata "
                    f"(keys like {keys[:3]}); convert it with `audiogen-fast convert` or save it with audiogen_fast.save")
            tensors = {k: f.get_tensor(k) for k in keys}
    except SafetensorError as e:
        raise CheckpointError(f"{path} is a damaged safetensors file: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format_version {meta.get('format_version')!r}; this build reads {FORMAT_VERSION!r}")
    try:
        cfg = config_from_dict(json.loads(meta["config"]))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} has a config that is not valid JSON: {e}") from None
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} has an invalid config: {e}") from None
    model = family(cfg.family).model_cls(cfg)
    _strict_load(model, tensors, path)
    return model.eval()


def read_torch(path, hparams=None) -> torch.nn.Module:
    import pickle

    path = str(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} is a PyTorch file that needs arbitrary code to load (weights_only=True refused it): "
            f"{str(e).splitlines()[0]}") from None
    except Exception as e:  # zip / pickle corruption
        raise CheckpointError(f"{path} is a damaged PyTorch file: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    _load_importers()
    for name, (detect, convert) in IMPORTERS.items():
        if detect(obj):
            return convert(obj, hparams).eval()
    keys = list(obj.keys())[:8] if isinstance(obj, dict) else type(obj).__name__
    known = ", ".join(IMPORTERS) or "none"
    raise CheckpointError(f"{path}: unrecognised PyTorch checkpoint layout (top-level keys {keys}); known importers: {known}")


def load_model(path, hparams=None) -> torch.nn.Module:
    """Any supported checkpoint file -> eager reference model (CPU, float32, eval mode).
    hparams: a dict, or the path of a JSON file, for imported checkpoints that lack them."""
    if hparams is not None and not isinstance(hparams, dict):
        try:
            with open(hparams) as f:
                hparams = json.load(f)
        except (OSError, TypeError) as e:
            raise CheckpointError(f"cannot read hparams {hparams!r}: {e}") from None
        except json.JSONDecodeError as e:
            raise CheckpointError(f"hparams file {hparams} is not valid JSON: {e}") from None
        if not isinstance(hparams, dict):
            raise CheckpointError("hparams must be a JSON object (name -> value)")
    kind = sniff(path)
    if kind == "safetensors":
        if hparams is not None:
            raise CheckpointError("hparams= is only for imported (non-native) checkpoints; native ones carry their config")
        return read_native(path)
    return read_torch(path, hparams)
