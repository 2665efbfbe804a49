"""Config plumbing shared by the model families.

A config is a dataclass: the full description of a model (family, hyper-parameters, audio and
mel settings). It is stored as JSON in the checkpoint and rebuilt strictly: unknown fields,
wrong types and inconsistent values are errors that name the field.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import torch


class ConfigError(ValueError):
    """A model configuration that is inconsistent or incomplete."""


@dataclass
class AudioConfig:
    """Audio and mel-feature settings every family carries."""

    family: ClassVar[str] = ""
    sample_rate: int = 22050
    hop_length: int = 256
    n_fft: int = 1024
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: Optional[float] = 8000.0
    mel_norm: str = "log"
    mel_scale: str = "slaney"            # "slaney" (librosa's default) or "htk" (torchaudio's default)
    mel_filter_norm: str = "slaney"      # "slaney" (area-normalised triangles) or "none"
    stft_normalized: bool = False        # divide the STFT by sqrt(sum(window^2)) (torchaudio normalized=True)
    conditional: bool = True
    # The network models e[n] = x[n] - preemphasis * x[n-1] and the engine de-emphasises what it
    # samples (audiogen_fast/emphasis.py). Why: a mu-law softmax's quantisation noise is white; in
    # the pre-emphasised domain it is shaped like speech's spectral tilt after de-emphasis (LPCNet
    # uses 0.85). On our espeak-ng test set, mu-law 256 alone caps wide-band PESQ at 3.1; with 0.85
    # at 4.15 (STOI 0.999 both). 0: off (the waveform itself, as every imported checkpoint).
    preemphasis: float = 0.0

    # ---- validation -------------------------------------------------------------------
    def validate(self) -> "AudioConfig":
        from ..audio import MEL_NORMS

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            _check_type(f, v)
        _positive(self, "sample_rate", "hop_length", "n_fft", "win_length", "n_mels")
        if self.win_length > self.n_fft:
            raise ConfigError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.mel_norm not in MEL_NORMS:
            raise ConfigError(f"mel_norm must be one of {MEL_NORMS}, got {self.mel_norm!r}")
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.mel_filter_norm not in ("slaney", "none"):
            raise ConfigError(f"mel_filter_norm must be 'slaney' or 'none', got {self.mel_filter_norm!r}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ConfigError(f"preemphasis must be in [0, 1), got {self.preemphasis}")
        fmax = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not (0 <= self.fmin < fmax <= self.sample_rate / 2):
            raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}")
        return self

    # ---- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["family"] = self.family
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioConfig":
        d = dict(d)
        fam = d.pop("family", cls.family)
        if fam != cls.family:
            raise ConfigError(f"config is for family {fam!r}, not {cls.family!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.family} config field(s): {', '.join(unknown)}")
        return cls(**d).validate()

    def replace(self, **overrides) -> "AudioConfig":
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"unknown {self.family} config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides).validate()


def _check_type(f: dataclasses.Field, v: Any) -> None:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    ok = True
    if t == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t == "float":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t == "bool":
        ok = isinstance(v, bool)
    elif t == "str":
        ok = isinstance(v, str)
    elif t == "Optional[float]":
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
    elif t == "Optional[int]":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool))
    elif t.startswith("list") or t.startswith("List"):
        ok = isinstance(v, (list, tuple))
    elif t.startswith("dict") or t.startswith("Dict"):
        ok = isinstance(v, dict)
    if not ok:
        raise ConfigError(f"config field {f.name!r} must be {t}, got {v!r}")


def _positive(cfg, *names):
    for n in names:
        if getattr(cfg, n) <= 0:
            raise ConfigError(f"config field {n!r} must be > 0, got {getattr(cfg, n)}")


# model -> {attr: (key, value)}: held beside the model, not in it, so that copy.deepcopy, pickling
# and torch.save of a model that has generated do not meet the C++ / kernel objects
_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _params(m, out: list) -> list:
    """m's parameters in module order (torch's parameters() without its de-duplication and names:
    6x faster, which matters on a per-call path)."""
    for p in m._parameters.values():
        if p is not None:
            out.append(p)
    for c in m._modules.values():
        if c is not None:
            _params(c, out)
    return out


def cached_on_model(model, attr: str, factory, extra=()):
    """factory(model), cached for the model under attr (one entry each) and rebuilt when `extra`
    changes or any weight is replaced or changed in place: the key holds every parameter's storage
    and version counter (pruning and load_state_dict change weights in place, not always the first
    one). ~0.5 us a parameter a call (D1's 254: ~0.2 ms on a slow core). A model made under
    torch.inference_mode has inference tensors, which keep no version counter: their storage is
    the key (an in-place change within inference_mode is not seen)."""
    params = _params(model, [])
    key = (params[0].device, params[0].dtype, extra) + \
        tuple((p.data_ptr(), -1 if p.is_inference() else p._version) for p in params)
    entries = _CACHES.setdefault(model, {})
    hit = entries.get(attr)
    if hit is None or hit[0] != key:
        entries.pop(attr, None)  # the old weights' copy goes before the new one is built
        hit = (key, factory(model))
        entries[attr] = hit
    return hit[1]


def rowwise(fn, *xs):
    """fn applied to each batch row of xs (dim 0) alone, the results concatenated along dim 0 (fn
    returns a tensor or a tuple / list of tensors). For the conditioning networks of the
    autoregressive families: torch's CPU convolutions and matrix products pick their algorithm,
    and so their summation order, by shape, so a row computed in a batch can differ in its last
    bits from the same row computed alone (R2's upsampler: up to 5e-6), and sampling turns such a
    bit into a different sample sooner or later. Row by row, a stream of a batch gets exactly the
    conditioning it gets alone, so its audio equals running it alone (the engine's contract)."""
    B = xs[0].shape[0]
    if B == 1:
        return fn(*xs)
    outs = [fn(*(x[b:b + 1] for x in xs)) for b in range(B)]
    if isinstance(outs[0], (tuple, list)):
        return type(outs[0])(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


@contextlib.contextmanager
def one_torch_thread(device):
    """torch ops inside run on one thread when `device` is the CPU (elsewhere: a no-op). For the
    conditioning the autoregressive Sessions compute between two C++ loop calls: those loops use
    every core next, and libgomp's default wait policy keeps torch's OpenMP workers spinning for
    milliseconds after each parallel region, taking a core from the loop's threads at every
    barrier (paired on the 2-core VM: R2 int8 9-10% faster, W1 int8 4 streams 12%, W1 bf16 16%;
    the conditioning itself runs ~30% slower). torch's thread count is the calling thread's own
    (OpenMP's per-thread setting), so concurrent callers do not see each other's."""
    n = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


def prod(xs) -> int:
    p = 1
    for x in xs:
        p *= int(x)
    return p


__all__ = ["AudioConfig", "ConfigError", "dataclass", "field", "prod", "_positive"]
