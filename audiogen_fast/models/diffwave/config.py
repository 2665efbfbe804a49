"""DiffWave hyper-parameters (lmnt-com/diffwave layout and schedules)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..base import AudioConfig, ConfigError, _positive, prod

SCHEDULE_NAMES = ("fast", "full")


def _lmnt_training_schedule():
    return [float(b) for b in np.linspace(1e-4, 0.05, 50)]


@dataclass
class DiffWaveConfig(AudioConfig):
    family = "diffwave"
    residual_channels: int = 64
    residual_layers: int = 30
    dilation_cycle: int = 10
    noise_schedule: list = field(default_factory=_lmnt_training_schedule)            # training betas
    inference_schedule: list = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5])
    default_schedule: str = "fast"       # what generate() uses when no schedule is given
    upsample_scales: list = field(default_factory=lambda: [16, 16])  # ConvTranspose2d stages, product == hop
    fmin: float = 20.0
    fmax: float = 11025.0

    def validate(self):
        super().validate()
        _positive(self, "residual_channels", "residual_layers", "dilation_cycle")
        if len(self.noise_schedule) < 2:
            raise ConfigError("noise_schedule needs at least 2 betas")
        for name in ("noise_schedule", "inference_schedule"):
            b = np.asarray(getattr(self, name), dtype=np.float64)
            if b.ndim != 1 or len(b) == 0 or not np.all((b > 0) & (b < 1)):
                raise ConfigError(f"{name} must be a non-empty list of betas in (0, 1)")
        if self.default_schedule not in SCHEDULE_NAMES:
            raise ConfigError(f"default_schedule must be one of {SCHEDULE_NAMES}, got {self.default_schedule!r}")
        if self.conditional:
            if prod(self.upsample_scales) != self.hop_length:
                raise ConfigError(f"product of upsample_scales {list(self.upsample_scales)} must equal "
                                  f"hop_length {self.hop_length}")
            if any(int(s) % 2 or int(s) < 2 for s in self.upsample_scales):
                raise ConfigError(f"upsample_scales must be even, got {list(self.upsample_scales)}")
        self.noise_schedule = [float(b) for b in self.noise_schedule]
        self.inference_schedule = [float(b) for b in self.inference_schedule]
        self.upsample_scales = [int(s) for s in self.upsample_scales]
        return self

    def dilation(self, i: int) -> int:
        return 2 ** (i % self.dilation_cycle)
