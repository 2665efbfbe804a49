"""Eager WaveNet: the function every WaveNet backend must reproduce.

Layout follows r9y9/wavenet_vocoder (gated residual layers with 1x1 residual and skip outputs,
residual scaled by sqrt(1/2), skips summed and scaled by sqrt(1/layers), output stack
ReLU -> 1x1 -> ReLU -> 1x1) with nv-wavenet's sizes as presets.

Shapes: B batch, T samples, R residual, G gate (= 2 halves of G/2), S skip, C mel channels.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import WaveNetConfig


class UpsampleNet(nn.Module):
    """mel [B, C, frames] -> [B, C, frames * prod(scales)].

    mode "conv" (r9y9's UpsampleNetwork): per scale, nearest-neighbour stretch along time, then an
    (F, 2s+1) smoothing conv shared over mel channels. mode "convt" (r9y9 v0.1.1's upsample_conv):
    per scale a ConvTranspose2d (F, s) with stride s, then ReLU. cin_pad > 0 (r9y9's
    ConvInUpsampleNetwork): first a (2*cin_pad+1)-tap Conv1d over the mel, edge-padded by cin_pad
    frames on each side so the frame count is kept. activation (mode "conv"): a torch.nn activation
    (config.UPSAMPLE_ACTIVATIONS) after each smoothing conv, as r9y9's upsample_activation."""

    def __init__(self, scales, mode="conv", freq_kernel=1, cin_pad=0, channels=80, activation="none",
                 activation_params=None):
        super().__init__()
        self.scales, self.mode, self.cin_pad, self.freq_kernel = list(scales), mode, cin_pad, freq_kernel
        # one activation module per scale (PReLU has a slope per conv; the others no state)
        self.acts = None if activation == "none" or mode != "conv" else nn.ModuleList(
            getattr(nn, activation)(**(activation_params or {})) for _ in self.scales)
        fp = (freq_kernel - 1) // 2
        self.conv_in = nn.Conv1d(channels, channels, 2 * cin_pad + 1, bias=False) if cin_pad > 0 else None
        if mode == "conv":
            self.convs = nn.ModuleList(nn.Conv2d(1, 1, (freq_kernel, 2 * s + 1), padding=(fp, s), bias=False)
                                       for s in self.scales)
            for s, conv in zip(self.scales, self.convs):
                nn.init.constant_(conv.weight, 1.0 / (freq_kernel * (2 * s + 1)))
        else:
            self.convts = nn.ModuleList(nn.ConvTranspose2d(1, 1, (freq_kernel, s), stride=(1, s), padding=(fp, 0))
                                        for s in self.scales)
            for conv in self.convts:
                nn.init.constant_(conv.weight, 1.0 / freq_kernel)
                nn.init.zeros_(conv.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.time_stage(self.frame_stage(mel))

    @property
    def time_linear(self) -> bool:
        """True when time_stage is one linear map along time shared by every channel (mode
        "conv", frequency kernel 1): then it commutes with any projection across channels."""
        return self.mode == "conv" and self.freq_kernel == 1 and self.acts is None

    def frame_stage(self, mel: torch.Tensor) -> torch.Tensor:
        """The part at frame rate: the cin_pad conv (identity without one). [B, C, frames]."""
        if self.conv_in is None:
            return mel
        p = self.cin_pad
        return self.conv_in(torch.cat([mel[:, :, :1].expand(-1, -1, p), mel, mel[:, :, -1:].expand(-1, -1, p)], -1))

    def time_stage(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, C, frames] -> [B, C, frames * hop]: the stretch and smoothing (or transposed) convs."""
        x = mel.unsqueeze(1)  # [B, 1, C, frames]
        if self.mode == "conv":
            for i, (s, conv) in enumerate(zip(self.scales, self.convs)):
                x = conv(torch.repeat_interleave(x, s, dim=-1))
                if self.acts is not None:
                    x = self.acts[i](x)
        else:
            for conv in self.convts:
                x = F.relu(conv(x))
        return x.squeeze(1)

    def time_stage_unfolded(self, mel: torch.Tensor) -> torch.Tensor:
        """time_stage for a time-linear upsampler (mode "conv", frequency kernel 1), written as
        unfold @ taps: the same function (to float rounding), for training. Why: on the CPU the
        backward of a one-channel Conv2d is slow (oneDNN: ~35% of a training step of the default
        model), that of a small matmul is not. It holds (2s+1) copies of each stage's output, so it
        is for training segments, not whole utterances. [B, C, frames] -> [B, C, frames * hop]."""
        if not self.time_linear:
            raise ValueError("time_stage_unfolded needs mode 'conv' with frequency kernel 1")
        x = mel
        for s, conv in zip(self.scales, self.convs):
            x = F.pad(torch.repeat_interleave(x, s, dim=-1), (s, s))   # stretch, zero-pad like the conv
            x = x.unfold(-1, 2 * s + 1, 1) @ conv.weight.reshape(-1)      # [B, C, T', 2s+1] @ [2s+1]
        return x


class ResidualLayer(nn.Module):
    def __init__(self, cfg: WaveNetConfig, dilation: int):
        super().__init__()
        R, G, S, K = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.kernel_size
        self.dilation = dilation
        self.kernel_size = K
        self.conv = nn.Conv1d(R, G, K, dilation=dilation)            # causal: padded on the left
        self.conv1x1c = nn.Conv1d(cfg.n_mels, G, 1, bias=False) if cfg.conditional else None
        self.conv1x1g = nn.Conv1d(cfg.gin_channels, G, 1, bias=False) if cfg.gin_channels else None
        self.conv1x1_out = nn.Conv1d(G // 2, R, 1)
        self.conv1x1_skip = nn.Conv1d(G // 2, S, 1)

    def forward(self, x, c=None, g=None):
        """x [B, R, T], c [B, C, T] upsampled mel, g [B, gin, 1] -> (x [B, R, T], skip [B, S, T])."""
        a = self.conv(F.pad(x, ((self.kernel_size - 1) * self.dilation, 0)))
        if self.conv1x1c is not None:
            a = a + self.conv1x1c(c)
        if self.conv1x1g is not None:
            a = a + self.conv1x1g(g)
        ta, sa = a.chunk(2, dim=1)
        z = torch.tanh(ta) * torch.sigmoid(sa)
        return (x + self.conv1x1_out(z)) * math.sqrt(0.5), self.conv1x1_skip(z)


class WaveNet(nn.Module):
    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.first_conv = nn.Conv1d(cfg.in_channels, cfg.residual_channels, 1)
        self.conv_layers = nn.ModuleList(ResidualLayer(cfg, cfg.dilation(i)) for i in range(cfg.layers))
        self.last_conv1 = nn.Conv1d(cfg.skip_channels, cfg.out_hidden, 1)
        self.last_conv2 = nn.Conv1d(cfg.out_hidden, cfg.out_channels, 1)
        self.upsample_net = UpsampleNet(cfg.upsample_scales, cfg.upsample_mode, cfg.upsample_freq_kernel, cfg.cin_pad,
                                        cfg.n_mels, cfg.upsample_activation,
                                        cfg.upsample_activation_params) if cfg.conditional else None
        self.embed_speakers = nn.Embedding(cfg.n_speakers, cfg.gin_channels) if cfg.gin_channels else None

    # ---- pieces shared with the incremental runtimes ---------------------------------------
    def upsample(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, C, frames] -> [B, C, frames * hop]."""
        return self.upsample_net(mel)

    def speaker_embedding(self, speaker: torch.Tensor | None) -> torch.Tensor | None:
        """speaker [B] int64 -> [B, gin, 1] (None when the model has no global conditioning)."""
        if self.embed_speakers is None:
            return None
        return self.embed_speakers(speaker).unsqueeze(-1)

    def embed_input(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T] (int64 classes for mu-law, float samples otherwise) -> first_conv input [B, in, T]."""
        if self.config.output == "mulaw":
            return F.one_hot(x, self.config.quantize_channels).transpose(1, 2).to(self.first_conv.weight.dtype)
        return x.unsqueeze(1).to(self.first_conv.weight.dtype)

    def output_stack(self, skip: torch.Tensor) -> torch.Tensor:
        """summed, scaled skips [B, S, T] -> outputs [B, out_channels, T]."""
        return self.last_conv2(F.relu(self.last_conv1(F.relu(skip))))

    # ---- parallel (training / teacher-forced) forward ------------------------------------------
    def forward(self, x: torch.Tensor, mel: torch.Tensor | None = None, speaker: torch.Tensor | None = None):
        """x [B, T]: the input at each step (the previous sample; step 0 gets the initial input).
        mel [B, C, frames] with frames * hop >= T. Returns logits / parameters [B, out_channels, T]."""
        T = x.shape[1]
        c = None
        if self.upsample_net is not None:
            if mel is None:
                raise ValueError("this WaveNet is mel-conditioned: pass mel")
            c = self.upsample(mel)[:, :, :T]
        g = self.speaker_embedding(speaker)
        h = self.first_conv(self.embed_input(x))
        skips = 0.0
        for layer in self.conv_layers:
            h, s = layer(h, c, g)
            skips = skips + s
        return self.output_stack(skips * math.sqrt(1.0 / len(self.conv_layers)))
