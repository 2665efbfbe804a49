"""Standard model configurations (DESIGN.md "Measuring") and tiny test models.

W1 nv-wavenet "medium": 20 layers (2 x 10), R=64, S=128, A=256 mu-law softmax, kernel 2, 80 mels
W2 the same with S=256
W4 r9y9 MoL: 24 layers (4 x 6), R=128, gate 256, S=128, kernel 3, 30 outputs (10 logistics)
R2 fatchord WaveRNN: GRU 512 x 2, fc 512, aux 32, 9-bit softmax (R2-mol: the MOL head)
D1 DiffWave base: C=64, 30 layers, dilation cycle 10, 80 mels, hop 256, 6-step fast schedule
D2 the same with the 50-step schedule
tiny-*: small mel-conditioned models (8 kHz, hop 64, 16 mels) for tests and examples
"""
from __future__ import annotations

import torch

from .models import family

_TINY_AUDIO = dict(sample_rate=8000, hop_length=64, n_fft=256, win_length=256, n_mels=16, fmin=0.0, fmax=4000.0)

PRESETS: dict[str, tuple[str, dict]] = {
    "W1": ("wavenet", dict(layers=20, stacks=2, residual_channels=64, gate_channels=128, skip_channels=128,
                           kernel_size=2, output="mulaw", quantize_channels=256, out_hidden=256)),
    "W2": ("wavenet", dict(layers=20, stacks=2, residual_channels=64, gate_channels=128, skip_channels=256,
                           kernel_size=2, output="mulaw", quantize_channels=256, out_hidden=256)),
    "W4": ("wavenet", dict(layers=24, stacks=4, residual_channels=128, gate_channels=256, skip_channels=128,
                           kernel_size=3, output="mol", n_mix=10, out_hidden=128)),
    "R2": ("wavernn", dict(rnn_dims=512, fc_dims=512, mode="RAW", bits=9, res_out_dims=128)),
    "R2-mol": ("wavernn", dict(rnn_dims=512, fc_dims=512, mode="MOL", n_mix=10, res_out_dims=128)),
    "D1": ("diffwave", dict(residual_channels=64, residual_layers=30, dilation_cycle=10, default_schedule="fast")),
    "D2": ("diffwave", dict(residual_channels=64, residual_layers=30, dilation_cycle=10, default_schedule="full")),
    # the bundled default: a 16 kHz mu-law WaveNet small enough to train on a CPU and to run in
    # real time with the C++ backend (trained by tools/train_default.sh on the espeak-ng dataset)
    "speech-wavenet-16k": ("wavenet", dict(sample_rate=16000, hop_length=256, n_fft=1024, win_length=1024, n_mels=80,
                                           fmin=0.0, fmax=8000.0, layers=16, stacks=2, residual_channels=48,
                                           gate_channels=96, skip_channels=96, out_hidden=128, kernel_size=3,
                                           output="mulaw", quantize_channels=256, upsample_scales=[4, 4, 4, 4])),
    # a DiffWave for the same speech: C=32, 20 layers (0.93 M parameters), the WaveNet's mel settings
    "speech-diffwave-16k": ("diffwave", dict(sample_rate=16000, hop_length=256, n_fft=1024, win_length=1024,
                                             n_mels=80, fmin=0.0, fmax=8000.0, residual_channels=32,
                                             residual_layers=20, dilation_cycle=10)),
    "tiny-wavenet": ("wavenet", dict(_TINY_AUDIO, layers=4, stacks=2, residual_channels=8, gate_channels=16,
                                     skip_channels=16, out_hidden=32, kernel_size=2, output="mulaw",
                                     quantize_channels=256, upsample_scales=[4, 16])),
    "tiny-wavernn": ("wavernn", dict(_TINY_AUDIO, rnn_dims=32, fc_dims=32, mode="RAW", bits=9, compute_dims=16,
                                     res_out_dims=16, res_blocks=2, pad=2, upsample_factors=[4, 16],
                                     fold_target=400, fold_overlap=40)),
    "tiny-diffwave": ("diffwave", dict(_TINY_AUDIO, residual_channels=8, residual_layers=4, dilation_cycle=2,
                                       upsample_scales=[8, 8])),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_config(name: str, **overrides):
    if name not in PRESETS:
        from .models.base import ConfigError

        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    fam, kw = PRESETS[name]
    kw = dict(kw)
    kw.update(overrides)
    return family(fam).config_cls.from_dict(dict(kw, family=fam))


def build_from_config(cfg, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised eager model (eval mode), reproducible from ``seed``."""
    fam = family(cfg.family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = fam.model_cls(cfg)
        # Non-trivial normalisation statistics, so that eval-mode BatchNorm is not the identity
        # (tests that compare implementations would not notice a missing BatchNorm otherwise).
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.8, 1.2)
                    m.bias.uniform_(-0.1, 0.1)
    return model.eval()


def build(name_or_family: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """Eager reference model with random weights: a preset name ("W2", "tiny-diffwave", ...)
    or a family name ("wavenet", ...) with config overrides."""
    from .models import FAMILY_NAMES
    from .models.base import ConfigError

    if name_or_family in PRESETS:
        cfg = preset_config(name_or_family, **overrides)
    elif name_or_family not in FAMILY_NAMES:
        raise ConfigError(f"unknown preset or family {name_or_family!r} (presets: {', '.join(PRESETS)}; "
                          f"families: {', '.join(FAMILY_NAMES)})")
    else:
        fam = family(name_or_family)
        cfg = fam.config_cls.from_dict(dict(overrides, family=fam.name))
    return build_from_config(cfg, seed=seed)
