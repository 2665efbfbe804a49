"""Importer for r9y9/wavenet_vocoder checkpoints.

A checkpoint is {'state_dict', 'optimizer', 'global_step', 'global_epoch'} (or a bare state dict,
"module." prefixes from DataParallel allowed). Its layers use weight normalisation
(weight_g / weight_v), folded here into plain weights: w = g * v / ||v|| (norm over every dim but 0).
Upsampling layouts: the newer `upsample_net` (UpsampleNetwork, or ConvInUpsampleNetwork with
cin_pad and its conv_in) and v0.1.1's `upsample_conv` (ConvTranspose2d + ReLU per scale).
The hyper-parameters are not in the checkpoint: pass hparams= (a dict or the path of a JSON file
of r9y9's hparams names: input_type, quantize_channels, out_channels, layers, stacks,
residual_channels, gate_channels, skip_out_channels, kernel_size, cin_channels, cin_pad,
upsample_params / upsample_scales, freq_axis_kernel_size, upsample_activation, gin_channels,
n_speakers, output_distribution, log_scale_min, sample_rate, num_mels, fft_size, hop_size,
win_length, fmin, fmax). Generation starts, as in r9y9's incremental_forward, from the one-hot
class 127 (mu-law) or 0.0 (raw); classes decode with mu = quantize_channels - 1, as r9y9 does.
Input types: "mulaw-quantize" (softmax), "raw" (mixture of logistics or Gaussian) and "mulaw" (the
same distributions over mu-law companded samples, mu = quantize_channels - 1 as r9y9's preprocessing;
the engine expands what it samples). upsample_activation: none or a torch.nn activation (ReLU,
LeakyReLU, ELU, Tanh, Sigmoid, PReLU with its slope from the checkpoint) with its
upsample_activation_params.
"""
from __future__ import annotations

import json
import re

import torch

from ...checkpoint import CheckpointError, register_importer
from .config import WaveNetConfig
from .reference import WaveNet


def _state_dict(obj):
    if not isinstance(obj, dict):
        return None
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict):
        return None
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def detect(obj) -> bool:
    sd = _state_dict(obj)
    if not sd:
        return False
    return (any(k.startswith("first_conv.weight") for k in sd) and any(k.startswith("conv_layers.0.conv.") for k in sd)
            and any(k.startswith("last_conv_layers.") for k in sd))


def fold_weight_norm(sd: dict) -> dict:
    """{name.weight_g, name.weight_v} -> name.weight (w = g * v / ||v||, norm over dims 1..)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(".weight_v"):
            base = k[: -len("_v")]
            g = sd.get(base + "_g")
            if g is None:
                raise CheckpointError(f"weight-normalised {base} has weight_v but no weight_g")
            v = v.double()
            norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape((-1,) + (1,) * (v.dim() - 1))
            out[base] = (g.double() * v / norm).float()
        elif k.endswith(".weight_g"):
            if k[: -len("_g")] + "_v" not in sd:
                raise CheckpointError(f"weight-normalised {k[:-2]} has weight_g but no weight_v")
        else:
            out[k] = v
    return out


def config_from_hparams(hp: dict, sd: dict) -> WaveNetConfig:
    def need(name):
        if name not in hp:
            raise CheckpointError(f"r9y9 hparams lack {name!r}")
        return hp[name]

    input_type = hp.get("input_type", "raw")
    if input_type not in ("raw", "mulaw", "mulaw-quantize"):
        raise CheckpointError(f"unknown r9y9 input_type {input_type!r} (expected 'raw', 'mulaw' or 'mulaw-quantize')")
    if input_type == "mulaw-quantize":
        output = "mulaw"
    else:
        dist = hp.get("output_distribution", "Logistic")
        output = {"Logistic": "mol", "Normal": "gaussian"}.get(dist)
        if output is None:
            raise CheckpointError(f"unknown r9y9 output_distribution {dist!r}")
    up = dict(hp.get("upsample_params") or {})
    scales = up.get("upsample_scales", hp.get("upsample_scales"))
    cin = int(hp.get("cin_channels", -1))
    act = up.get("upsample_activation", hp.get("upsample_activation")) or "none"
    act_params = dict(up.get("upsample_activation_params", hp.get("upsample_activation_params")) or {})
    legacy = any(k.startswith("upsample_conv.") for k in sd)
    convin = any(k.startswith("upsample_net.conv_in") for k in sd)
    out_channels = int(need("out_channels"))
    kw = dict(
        layers=int(need("layers")), stacks=int(need("stacks")), residual_channels=int(need("residual_channels")),
        gate_channels=int(need("gate_channels")), skip_channels=int(need("skip_out_channels")),
        out_hidden=int(need("skip_out_channels")), kernel_size=int(hp.get("kernel_size", 3)), output=output,
        log_scale_min=float(hp.get("log_scale_min", -32.23619130191664)),
        conditional=cin > 0, n_mels=cin if cin > 0 else int(hp.get("num_mels", 80)),
        upsample_mode="convt" if legacy else "conv",
        upsample_freq_kernel=int(up.get("freq_axis_kernel_size", hp.get("freq_axis_kernel_size", 1))),
        cin_pad=int(hp.get("cin_pad", 0)) if convin else 0,
        # the activation sits between UpsampleNetwork's convs (no upsampler, or v0.1.1's: none)
        **(dict(upsample_activation=act, upsample_activation_params=act_params) if cin > 0 and not legacy else {}),
        gin_channels=max(0, int(hp.get("gin_channels", -1))), n_speakers=int(hp.get("n_speakers") or 0),
        sample_rate=int(hp.get("sample_rate", 22050)), n_fft=int(hp.get("fft_size", 1024)),
        win_length=int(hp.get("win_length") or hp.get("fft_size", 1024)),
        fmin=float(hp.get("fmin", 125)), fmax=float(hp.get("fmax", 7600)),
        mel_norm="lmnt", mel_scale="slaney", mel_filter_norm="slaney")
    if kw["gin_channels"] and not kw["n_speakers"]:
        kw["gin_channels"] = 0  # global features given directly (no embedding) are not supported
    if output == "mulaw":
        kw["quantize_channels"] = out_channels
        # r9y9's incremental_forward starts from one-hot index 127 (its mu-law zero for 256 classes)
        kw["initial_class"] = 127 if out_channels > 127 else None
    elif output == "mol":
        kw["n_mix"] = out_channels // 3
    if input_type == "mulaw":
        kw["companding_mu"] = int(hp.get("quantize_channels", 256)) - 1
    if kw["conditional"]:
        if not scales:
            raise CheckpointError("r9y9 hparams lack upsample_params.upsample_scales")
        kw["upsample_scales"] = [int(s) for s in scales]
        kw["hop_length"] = int(hp.get("hop_size", 1)) if hp.get("hop_size") else int(torch.tensor(scales).prod())
    try:
        return WaveNetConfig(**kw).validate()
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"r9y9 WaveNet hparams: {e}") from None


def _remap(sd: dict) -> dict:
    out = {}
    # up_layers interleaves Stretch2d (no state), the convs (4-d weights) and, with an activation,
    # its module (PReLU: a 1-d weight); each kind is numbered in order of its own
    up = {k: (int(m.group(1)), m.group(2)) for k in sd for m in [re.match(r"upsample_net\.(?:upsample\.)?up_layers\.(\d+)\.(\w+)$", k)] if m}
    act_keys = sorted({i for k, (i, name) in up.items() if name == "weight" and sd[k].dim() == 1})
    conv_keys = sorted({i for i, _ in up.values()} - set(act_keys))
    convt_keys = sorted({int(m.group(1)) for k in sd for m in [re.match(r"upsample_conv\.(\d+)\.", k)] if m})
    for k, v in sd.items():
        if k in up:
            i, name = up[k]
            out[f"upsample_net.acts.{act_keys.index(i)}.{name}" if i in act_keys else
                f"upsample_net.convs.{conv_keys.index(i)}.{name}"] = v
            continue
        m = re.match(r"upsample_conv\.(\d+)\.(\w+)$", k)
        if m:
            out[f"upsample_net.convts.{convt_keys.index(int(m.group(1)))}.{m.group(2)}"] = v
            continue
        k = k.replace("last_conv_layers.1.", "last_conv1.").replace("last_conv_layers.3.", "last_conv2.")
        out[k] = v
    return out


def convert(obj, hparams=None) -> WaveNet:
    from ...checkpoint import _strict_load

    if hparams is None:
        raise CheckpointError("r9y9/wavenet_vocoder checkpoints do not carry their hyper-parameters: pass "
                              "hparams= (r9y9's hparams as a dict or a JSON file)")
    if isinstance(hparams, str):
        with open(hparams) as f:
            hparams = json.load(f)
    sd = fold_weight_norm(_state_dict(obj))
    cfg = config_from_hparams(dict(hparams), sd)
    model = WaveNet(cfg)
    _strict_load(model, {k: v.float() if v.is_floating_point() else v for k, v in _remap(sd).items()},
                 "r9y9 WaveNet checkpoint")
    return model


register_importer("r9y9-wavenet", detect, convert)
