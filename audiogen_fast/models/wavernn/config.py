"""WaveRNN hyper-parameters (fatchord/WaveRNN and Coqui TTS layout)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..base import AudioConfig, ConfigError, _positive, prod

MODES = ("RAW", "MOL", "GAUSS")


@dataclass
class WaveRNNConfig(AudioConfig):
    family = "wavernn"
    rnn_dims: int = 512
    fc_dims: int = 512
    mode: str = "RAW"                   # "RAW": 2**bits-class softmax; "MOL": mixture of logistics;
                                        # "GAUSS": one Gaussian (mean | log_std; Coqui's mode "gauss")
    bits: int = 9
    mu_law: bool = True                 # RAW: classes are mu-law codes (decoded at the end)
    n_mix: int = 10                     # MOL components (3 * n_mix outputs)
    log_scale_min: float = -32.23619130191664  # ln(1e-14), fatchord's default (MOL); Coqui's GAUSS: -7
    compute_dims: int = 128             # MelResNet width
    res_out_dims: int = 128             # MelResNet output; aux = res_out_dims // 4 per consumer
    res_blocks: int = 10
    pad: int = 2                        # mel frames of context on each side (conv_in kernel 2*pad+1)
    upsample_factors: list = field(default_factory=lambda: [4, 8, 8])  # product == hop_length
    mel_pad_value: Optional[float] = None  # value of the pad frames; None: repeat the edge frames
    fold_target: int = 11000            # defaults for fold generation (generate(fold=True))
    fold_overlap: int = 550

    def validate(self):
        super().validate()
        _positive(self, "rnn_dims", "fc_dims", "compute_dims", "res_out_dims", "fold_target", "fold_overlap")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not (2 <= self.bits <= 16):
            raise ConfigError(f"bits must be in [2, 16], got {self.bits}")
        if self.res_out_dims % 4:
            raise ConfigError(f"res_out_dims must be a multiple of 4, got {self.res_out_dims}")
        if self.pad < 0 or self.res_blocks < 0:
            raise ConfigError("pad and res_blocks must be >= 0")
        if not self.conditional:
            raise ConfigError("WaveRNN is always mel-conditioned (conditional must be true)")
        if prod(self.upsample_factors) != self.hop_length:
            raise ConfigError(f"product of upsample_factors {list(self.upsample_factors)} must equal "
                              f"hop_length {self.hop_length}")
        self.upsample_factors = [int(s) for s in self.upsample_factors]
        return self

    @property
    def aux_dims(self) -> int:
        return self.res_out_dims // 4

    @property
    def n_classes(self) -> int:
        return {"RAW": 2 ** self.bits, "MOL": 3 * self.n_mix, "GAUSS": 2}[self.mode]

    @property
    def noise_kind(self) -> str:
        return {"RAW": "softmax", "MOL": "mol", "GAUSS": "gaussian"}[self.mode]

    @property
    def mode_index(self) -> int:
        """The kernels' output mode: 0 softmax, 1 mixture of logistics, 2 Gaussian."""
        return MODES.index(self.mode)

    @property
    def ln_classes(self) -> float:
        return math.log(self.n_classes)
