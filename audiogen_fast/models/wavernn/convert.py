"""Importers for fatchord/WaveRNN and Coqui TTS WaveRNN checkpoints.

fatchord/WaveRNN saves a flat state dict (model.save: torch.save(state_dict)) whose hyper-parameters
live in its hparams.py; pass them as hparams= (fatchord's names: voc_mode, voc_upsample_factors,
voc_rnn_dims, voc_fc_dims, voc_compute_dims, voc_res_out_dims, voc_res_blocks, voc_pad, bits,
mu_law, sample_rate, n_fft, num_mels, hop_length, win_length, fmin). Coqui TTS saves
{'model': state_dict, 'config': {..., 'model_args': {...}}, ...}: its config is read, and hparams=
can override it (Coqui's names: rnn_dims, fc_dims, mode, mulaw, pad, upsample_factors, feat_dims,
compute_dims, res_out_dims, num_res_blocks; audio: sample_rate, hop_length, ...).
Supported: the MelResNet + upsample network variant (fatchord's only one; Coqui's default
use_aux_net=True, use_upsample_net=True), RAW (any bits) and MOL outputs.
The converted config reproduces their mel features: librosa-style Slaney mel of the STFT magnitude,
20*log10(max(m, 1e-5)) - 20 mapped by (x + 100) / 100 into [0, 1] (their ref_level_db 20, min_level_db
-100) and zero-valued pad frames at the ends (fatchord pads generation mels with zeros).
"""
from __future__ import annotations

import re

from ...checkpoint import CheckpointError, register_importer
from .config import WaveRNNConfig
from .reference import WaveRNN

_KEYS = ("I.weight", "rnn1.weight_ih_l0", "rnn2.weight_ih_l0", "fc3.weight", "upsample.resnet.conv_in.weight")


def _state_dict(obj):
    if not isinstance(obj, dict):
        return None
    sd = obj.get("model", obj)
    return sd if isinstance(sd, dict) else None


def detect(obj) -> bool:
    sd = _state_dict(obj)
    return bool(sd) and all(k in sd for k in _KEYS)


_FATCHORD = {"voc_mode": "mode", "voc_upsample_factors": "upsample_factors", "voc_rnn_dims": "rnn_dims",
             "voc_fc_dims": "fc_dims", "voc_compute_dims": "compute_dims", "voc_res_out_dims": "res_out_dims",
             "voc_res_blocks": "res_blocks", "voc_pad": "pad", "bits": "bits", "mu_law": "mu_law",
             "sample_rate": "sample_rate", "n_fft": "n_fft", "num_mels": "n_mels", "hop_length": "hop_length",
             "win_length": "win_length", "fmin": "fmin", "fmax": "fmax"}
_COQUI = {"rnn_dims": "rnn_dims", "fc_dims": "fc_dims", "mulaw": "mu_law", "pad": "pad",
          "upsample_factors": "upsample_factors", "feat_dims": "n_mels", "compute_dims": "compute_dims",
          "res_out_dims": "res_out_dims", "num_res_blocks": "res_blocks", "mode": "mode",
          "sample_rate": "sample_rate", "hop_length": "hop_length", "win_length": "win_length", "fft_size": "n_fft",
          "num_mels": "n_mels", "mel_fmin": "fmin", "mel_fmax": "fmax"}


def _translate(src: dict, names: dict) -> dict:
    out = {}
    for k, v in src.items():
        if k in names and v is not None:
            out[names[k]] = v
    if "mode" in out:  # Coqui: int bits, "mold" (MOL), "gauss" (GAUSS); fatchord: "RAW" / "MOL"
        m = out["mode"]
        if isinstance(m, int) and not isinstance(m, bool):
            out["mode"], out["bits"] = "RAW", m
        elif str(m).upper() in ("RAW", "MOL"):
            out["mode"] = str(m).upper()
        elif str(m).lower() == "mold":
            out["mode"] = "MOL"
        elif str(m).lower() == "gauss":
            out["mode"] = "GAUSS"
        else:
            raise CheckpointError(f"WaveRNN output mode {m!r} is not supported (RAW bits, MOL / mold or gauss)")
    if "upsample_factors" in out:
        out["upsample_factors"] = [int(f) for f in out["upsample_factors"]]
    return out


def _coqui_config(obj) -> dict:
    cfg = obj.get("config") if isinstance(obj, dict) else None
    if not isinstance(cfg, dict):
        return {}
    out = {}
    audio = cfg.get("audio") or {}
    out.update(_translate(audio, _COQUI))
    args = cfg.get("model_args") or cfg.get("model_params") or {}
    if args.get("use_aux_net") is False or args.get("use_upsample_net") is False:
        raise CheckpointError("Coqui WaveRNN without the aux / upsample networks is not supported")
    out.update(_translate(args, _COQUI))
    return out


def _shapes(sd) -> dict:
    """What the weights say: widths, classes, blocks, pad."""
    p = {"rnn_dims": int(sd["rnn1.weight_hh_l0"].shape[1]), "fc_dims": int(sd["fc1.weight"].shape[0]),
         "compute_dims": int(sd["upsample.resnet.conv_in.weight"].shape[0]),
         "n_mels": int(sd["upsample.resnet.conv_in.weight"].shape[1]),
         "pad": (int(sd["upsample.resnet.conv_in.weight"].shape[2]) - 1) // 2,
         "res_out_dims": int(sd["upsample.resnet.conv_out.weight"].shape[0])}
    blocks = {int(m.group(1)) for k in sd for m in [re.match(r"upsample\.resnet\.layers\.(\d+)\.", k)] if m}
    p["res_blocks"] = max(blocks) + 1 if blocks else 0
    return p


def convert(obj, hparams=None) -> WaveRNN:
    from ...checkpoint import _strict_load

    sd = dict(_state_dict(obj))
    params = {"mel_norm": "lmnt", "mel_scale": "slaney", "mel_filter_norm": "slaney", "mel_pad_value": 0.0,
              "fmin": 40.0, "fmax": None, "log_scale_min": -32.23619130191664}
    params.update(_shapes(sd))
    params.update(_coqui_config(obj))
    if hparams:
        params.update(_translate(hparams, _FATCHORD))
        params.update(_translate(hparams, _COQUI))
    n_out = int(sd["fc3.weight"].shape[0])
    if "mode" not in params:
        params["mode"] = "MOL" if n_out == 30 else "RAW"
    if params["mode"] == "RAW":
        bits = n_out.bit_length() - 1
        if 2 ** bits != n_out:
            raise CheckpointError(f"WaveRNN RAW output has {n_out} classes, not a power of two")
        params.setdefault("bits", bits)
    elif params["mode"] == "MOL":
        params["n_mix"] = n_out // 3
    elif n_out != 2:
        raise CheckpointError(f"WaveRNN gauss output has {n_out} rows, not 2 (mean, log_std)")
    else:
        params["log_scale_min"] = -7.0   # Coqui's sample_from_gaussian clamps log_std at -7
    if "upsample_factors" not in params or "hop_length" not in params:
        raise CheckpointError("this WaveRNN checkpoint does not carry its upsample factors / hop length: pass "
                              "hparams= (fatchord's voc_upsample_factors and hop_length, or Coqui's config)")
    if "win_length" in params and "n_fft" not in params:
        params["n_fft"] = max(int(params["win_length"]), 1024)
    params.setdefault("n_fft", 2048)
    params.setdefault("win_length", min(int(params["n_fft"]), 4 * int(params["hop_length"])))
    try:
        cfg = WaveRNNConfig(**params).validate()
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"WaveRNN checkpoint: {e}") from None
    # fatchord / Coqui interleave parameter-free Stretch2d modules with the convs in up_layers
    remapped = {}
    for k, v in sd.items():
        if k == "step":  # fatchord's training-step buffer
            continue
        m = re.match(r"upsample\.up_layers\.(\d+)\.weight$", k)
        if m:
            i = int(m.group(1))
            if i % 2 == 0:
                raise CheckpointError(f"unexpected upsample layer layout (parameters at index {i})")
            k = f"upsample.up_layers.{i // 2}.weight"
        remapped[k] = v.float() if v.is_floating_point() else v
    model = WaveRNN(cfg)
    _strict_load(model, remapped, "WaveRNN checkpoint")
    return model


register_importer("wavernn-fatchord-coqui", detect, convert)
