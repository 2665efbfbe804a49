"""WaveNet hyper-parameters (r9y9/wavenet_vocoder and nv-wavenet style)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..base import AudioConfig, ConfigError, _positive, prod

OUTPUTS = ("mulaw", "mol", "gaussian")
# r9y9's UpsampleNetwork takes any torch.nn activation by name after each smoothing conv; these
# are the elementwise ones, with the keyword arguments each accepts. PReLU has a weight: its slope
# (one, as the conv output has one channel), a parameter of the model.
UPSAMPLE_ACTIVATIONS = {"none": (), "ReLU": (), "LeakyReLU": ("negative_slope",), "ELU": ("alpha",),
                        "Tanh": (), "Sigmoid": (), "PReLU": ("num_parameters", "init")}


@dataclass
class WaveNetConfig(AudioConfig):
    family = "wavenet"
    layers: int = 20
    stacks: int = 2                      # dilation cycle = layers // stacks; dilation 2**(i % cycle)
    residual_channels: int = 64          # R
    gate_channels: int = 128             # G: dilated conv output, split into tanh | sigmoid halves
    skip_channels: int = 128             # S
    kernel_size: int = 2                 # 2 or 3 (causal)
    output: str = "mulaw"                # "mulaw" (softmax over classes), "mol", "gaussian"
    quantize_channels: int = 256         # mu-law classes (output == "mulaw")
    n_mix: int = 10                      # logistic components (output == "mol")
    out_hidden: int = 256                # width of the output stack's hidden 1x1 conv
    log_scale_min: float = -7.0          # clamp of log-scales for mol / gaussian sampling
    upsample_scales: list = field(default_factory=lambda: [4, 4, 4, 4])  # product == hop_length
    upsample_mode: str = "conv"          # "conv": stretch + (F, 2s+1) smoothing conv per scale;
                                         # "convt": ConvTranspose2d (F, s) stride s + ReLU (r9y9 v0.1.1)
    upsample_freq_kernel: int = 1        # F: the upsampling kernels' extent across mel channels (odd)
    cin_pad: int = 0                     # > 0: a (2*cin_pad+1)-tap conv over edge-padded frames first
    upsample_activation: str = "none"    # mode "conv": activation after each smoothing conv (UPSAMPLE_ACTIVATIONS)
    upsample_activation_params: dict = field(default_factory=dict)  # its arguments, e.g. {"negative_slope": 0.4}
    gin_channels: int = 0                # global (speaker) conditioning width; 0: none
    n_speakers: int = 0
    initial_input: Optional[float] = None  # first input sample for mol / gaussian; None: 0.0
    initial_class: Optional[int] = None    # first input class for mulaw; None: mulaw_encode(0.0)
    # > 0 (outputs "mol" / "gaussian"): the network models mu-law companded audio, sign(x) ln(1 + mu|x|)
    # / ln(1 + mu), and reads its own companded samples back (r9y9's input_type "mulaw"); the engine
    # expands what any backend samples. 0: the waveform itself.
    companding_mu: int = 0

    def validate(self):
        super().validate()
        _positive(self, "layers", "stacks", "residual_channels", "gate_channels", "skip_channels", "out_hidden")
        if self.layers % self.stacks:
            raise ConfigError(f"layers ({self.layers}) must be a multiple of stacks ({self.stacks})")
        if self.gate_channels % 2:
            raise ConfigError(f"gate_channels must be even, got {self.gate_channels}")
        if self.kernel_size not in (2, 3):
            raise ConfigError(f"kernel_size must be 2 or 3, got {self.kernel_size}")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.output == "mulaw" and not (2 <= self.quantize_channels <= 65536):
            raise ConfigError(f"quantize_channels must be in [2, 65536], got {self.quantize_channels}")
        if self.output == "mol" and self.n_mix < 1:
            raise ConfigError(f"n_mix must be >= 1, got {self.n_mix}")
        if self.conditional and prod(self.upsample_scales) != self.hop_length:
            raise ConfigError(f"product of upsample_scales {list(self.upsample_scales)} must equal "
                              f"hop_length {self.hop_length}")
        if self.upsample_mode not in ("conv", "convt"):
            raise ConfigError(f"upsample_mode must be 'conv' or 'convt', got {self.upsample_mode!r}")
        if self.upsample_freq_kernel < 1 or self.upsample_freq_kernel % 2 == 0:
            raise ConfigError(f"upsample_freq_kernel must be odd and >= 1, got {self.upsample_freq_kernel}")
        if self.cin_pad < 0:
            raise ConfigError(f"cin_pad must be >= 0, got {self.cin_pad}")
        if (self.gin_channels > 0) != (self.n_speakers > 0):
            raise ConfigError("gin_channels and n_speakers must both be > 0 (global conditioning) or both 0")
        if self.initial_input is not None and not (-1.0 <= self.initial_input <= 1.0):
            raise ConfigError(f"initial_input must be in [-1, 1], got {self.initial_input}")
        if self.initial_class is not None and not (0 <= self.initial_class < self.quantize_channels):
            raise ConfigError(f"initial_class must be in [0, {self.quantize_channels}), got {self.initial_class}")
        if self.upsample_activation not in UPSAMPLE_ACTIVATIONS:
            raise ConfigError(f"upsample_activation must be one of {sorted(UPSAMPLE_ACTIVATIONS)}, "
                              f"got {self.upsample_activation!r}")
        allowed = UPSAMPLE_ACTIVATIONS[self.upsample_activation]
        bad = sorted(set(self.upsample_activation_params) - set(allowed))
        if bad:
            raise ConfigError(f"upsample_activation_params {bad} are not arguments of {self.upsample_activation} "
                              f"(it takes {list(allowed) or 'none'})")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in self.upsample_activation_params.values()):
            raise ConfigError(f"upsample_activation_params must be numbers, got {self.upsample_activation_params}")
        if self.upsample_activation_params.get("num_parameters", 1) != 1:
            raise ConfigError("PReLU after the upsampler's one-channel convs has num_parameters 1")
        if self.upsample_activation != "none" and self.upsample_mode != "conv":
            raise ConfigError("upsample_activation is for upsample_mode 'conv' (mode 'convt' has its own ReLU)")
        if self.companding_mu < 0:
            raise ConfigError(f"companding_mu must be >= 0, got {self.companding_mu}")
        if self.companding_mu and self.output == "mulaw":
            raise ConfigError("companding_mu is for the continuous outputs 'mol' and 'gaussian' "
                              "(output 'mulaw' already samples mu-law classes)")
        self.upsample_scales = [int(s) for s in self.upsample_scales]
        return self

    # derived sizes
    @property
    def cycle(self) -> int:
        return self.layers // self.stacks

    def dilation(self, i: int) -> int:
        return 2 ** (i % self.cycle)

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * sum(self.dilation(i) for i in range(self.layers)) + 1

    @property
    def in_channels(self) -> int:
        """Input width: one-hot classes for mu-law, a scalar sample otherwise."""
        return self.quantize_channels if self.output == "mulaw" else 1

    @property
    def out_channels(self) -> int:
        return {"mulaw": self.quantize_channels, "mol": 3 * self.n_mix, "gaussian": 2}[self.output]

    @property
    def noise_kind(self) -> str:
        return {"mulaw": "softmax", "mol": "mol", "gaussian": "gaussian"}[self.output]
