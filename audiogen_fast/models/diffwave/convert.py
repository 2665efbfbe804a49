"""Importer for lmnt-com/diffwave checkpoints.

Supported: training checkpoints {'step', 'model', 'optimizer', 'params', 'scaler'} (any release:
the parameter names are the same, and our reference uses them), bare state dicts, with
params from the checkpoint when present and lmnt's defaults (params.py) otherwise. The older
PyPI 0.1.7 model (forward(audio, spectrogram, step)) and the newer one (forward(audio, step,
spectrogram=None), unconditional option) share the weights layout; a persistent
diffusion_embedding.embedding table, if stored, is checked against ours and dropped.
The config gets lmnt's mel preprocessing: torchaudio MelSpectrogram (HTK scale, no filter
normalisation, normalized STFT, win_length = 4 * hop, 20 Hz .. sr/2, magnitude) then
20*log10(max(m, 1e-5)) - 20 mapped to [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

from ...checkpoint import CheckpointError, register_importer
from .config import DiffWaveConfig
from .reference import DiffusionEmbedding, DiffWave

# lmnt-com/diffwave params.py defaults (facts of that project, not its code)
LMNT_DEFAULTS = dict(sample_rate=22050, n_mels=80, n_fft=1024, hop_samples=256, residual_layers=30,
                     residual_channels=64, dilation_cycle_length=10, unconditional=False,
                     noise_schedule=np.linspace(1e-4, 0.05, 50).tolist(),
                     inference_noise_schedule=[0.0001, 0.001, 0.01, 0.05, 0.2, 0.5])


def _state_dict(obj):
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    return sd if isinstance(sd, dict) else None


def detect(obj) -> bool:
    sd = _state_dict(obj)
    return bool(sd) and "input_projection.weight" in sd and any(k.startswith("residual_layers.0.dilated_conv") for k in sd)


def config_from_params(params: dict, state_dict: dict) -> DiffWaveConfig:
    p = dict(LMNT_DEFAULTS)
    p.update({k: v for k, v in (params or {}).items() if k in LMNT_DEFAULTS})
    hop = int(p["hop_samples"])
    if hop != 256:
        raise CheckpointError(f"lmnt's spectrogram upsampler is fixed at 16 x 16 = 256 samples per frame; "
                              f"params say hop_samples={hop}")
    unconditional = bool(p.get("unconditional")) or not any("conditioner_projection" in k for k in state_dict)
    sr = int(p["sample_rate"])
    return DiffWaveConfig(
        sample_rate=sr, hop_length=hop, n_fft=int(p["n_fft"]), win_length=4 * hop, n_mels=int(p["n_mels"]),
        fmin=20.0, fmax=sr / 2.0, mel_norm="lmnt", mel_scale="htk", mel_filter_norm="none", stft_normalized=True,
        conditional=not unconditional, residual_channels=int(p["residual_channels"]),
        residual_layers=int(p["residual_layers"]), dilation_cycle=int(p["dilation_cycle_length"]),
        noise_schedule=[float(b) for b in p["noise_schedule"]],
        inference_schedule=[float(b) for b in p["inference_noise_schedule"]],
        upsample_scales=[16, 16]).validate()


def shapes_to_params(sd: dict) -> dict:
    """What the weights themselves say (the dilation cycle and schedules they cannot)."""
    p = {"residual_channels": int(sd["input_projection.weight"].shape[0])}
    layers = {int(k.split(".")[1]) for k in sd if k.startswith("residual_layers.")}
    p["residual_layers"] = max(layers) + 1 if layers else 0
    w = sd.get("residual_layers.0.conditioner_projection.weight")
    if w is not None:
        p["n_mels"] = int(w.shape[1])
    return p


def convert(obj, hparams=None) -> DiffWave:
    """Precedence: lmnt's defaults < what the weights' shapes say < the checkpoint's params <
    hparams passed by the user."""
    from ...checkpoint import _strict_load

    sd = dict(_state_dict(obj))
    params = shapes_to_params(sd)
    if isinstance(obj, dict) and "model" in obj:
        params.update(dict(obj.get("params") or {}))
    if hparams:
        params.update(hparams)
    try:
        cfg = config_from_params(params, sd)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"lmnt DiffWave checkpoint: {e}") from None
    table = sd.pop("diffusion_embedding.embedding", None)
    if table is not None:
        ours = DiffusionEmbedding._build_embedding(len(cfg.noise_schedule))
        if tuple(table.shape) != tuple(ours.shape) or not torch.allclose(table.float(), ours, atol=1e-4):
            raise CheckpointError("lmnt DiffWave checkpoint: its diffusion-step embedding table differs from lmnt's")
    model = DiffWave(cfg)
    _strict_load(model, {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, "lmnt DiffWave checkpoint")
    return model


register_importer("lmnt-diffwave", detect, convert)
