"""Triton: DiffWave's residual layer fused into one kernel, and the output head fused with the
sampler update. The whole denoise loop is S * (L + 2) launches, replayed as one CUDA graph.

Residual layer (lmnt layout), per tile of BT samples of one stream, all in registers:
    y_k   = x[:, t + (k-1) d] + dstep            (zero outside [0, T): the conv pads y)
    gate  = sum_k Wd_g[k] @ y_k + Wc_g @ mel + b_g        [C, BT]  (tl.dot, fp32 accumulate)
    filt  = sum_k Wd_f[k] @ y_k + Wc_f @ mel + b_f
    z     = sigmoid(gate) * tanh(filt)
    x'    = (x + Wo_r @ z + bo_r) / sqrt(2);  skip += Wo_s @ z + bo_s
Memory per sample-layer: read x (3 taps, mostly cache hits), the upsampled mel and skip, write x'
and skip: the ~6x cut in traffic over eager PyTorch's separate kernels (PRIOR_ART.md).

Head, per tile: eps = w_out . relu(Wsk @ (skip / sqrt(L)) + b_sk) + b_out, then lmnt's update
x = clamp(c1 * (x - c2 * eps) + sigma * z, -1, 1).

Shapes: B streams, T samples, C residual channels, M mel channels (padded to M_P for tl.dot).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _dot(a, b, PREC: tl.constexpr):
    return tl.dot(a, b, input_precision=PREC)


@triton.jit
def diffwave_layer_kernel(
    x_ptr, xo_ptr, skip_ptr,      # [B, C, T] layer input, layer output, skip accumulator
    mel_ptr,                      # [B, M, T] upsampled mel (activation dtype)
    dstep_ptr,                    # [C] fp32: diffusion_projection(step embedding) for this layer
    wd_ptr, bd_ptr,               # [3, 2C, C] (tap-major), [2C] dilated conv (+ conditioner bias folded in)
    wc_ptr,                       # [2C, M_P] conditioner projection, zero-padded columns
    wo_ptr, bo_ptr,               # [2C, C], [2C] output projection
    T, dil,
    C: tl.constexpr, M: tl.constexpr, M_P: tl.constexpr, BT: tl.constexpr,
    FIRST: tl.constexpr, COND: tl.constexpr, PREC: tl.constexpr,
):
    b = tl.program_id(1)
    t0 = tl.program_id(0) * BT
    rc = tl.arange(0, C)
    rt = t0 + tl.arange(0, BT)
    mt = rt < T
    base = b * C * T
    dstep = tl.load(dstep_ptr + rc).to(tl.float32)
    wdt = wd_ptr.dtype.element_ty
    # y taps [C, BT] in the weights' dtype for tl.dot
    acc_g = tl.zeros([C, BT], dtype=tl.float32)
    acc_f = tl.zeros([C, BT], dtype=tl.float32)
    x_c = tl.zeros([C, BT], dtype=tl.float32)
    for k in tl.static_range(3):
        tk = rt + (k - 1) * dil
        vk = (tk >= 0) & (tk < T)
        xk = tl.load(x_ptr + base + rc[:, None] * T + tk[None, :], mask=vk[None, :], other=0.0).to(tl.float32)
        if k == 1:
            x_c = xk
        yk = tl.where(vk[None, :], xk + dstep[:, None], 0.0).to(wdt)
        wg = tl.load(wd_ptr + (k * 2 * C + rc[:, None]) * C + rc[None, :])
        wf = tl.load(wd_ptr + (k * 2 * C + C + rc[:, None]) * C + rc[None, :])
        acc_g += _dot(wg, yk, PREC)
        acc_f += _dot(wf, yk, PREC)
    if COND:
        rm = tl.arange(0, M_P)
        mel = tl.load(mel_ptr + b * M * T + rm[:, None] * T + rt[None, :], mask=(rm[:, None] < M) & mt[None, :],
                      other=0.0).to(wdt)
        wcg = tl.load(wc_ptr + rc[:, None] * M_P + rm[None, :])
        wcf = tl.load(wc_ptr + (C + rc[:, None]) * M_P + rm[None, :])
        acc_g += _dot(wcg, mel, PREC)
        acc_f += _dot(wcf, mel, PREC)
    acc_g += tl.load(bd_ptr + rc).to(tl.float32)[:, None]
    acc_f += tl.load(bd_ptr + C + rc).to(tl.float32)[:, None]
    z = (tl.sigmoid(acc_g) * _tanh(acc_f)).to(wdt)
    wr = tl.load(wo_ptr + rc[:, None] * C + rc[None, :])
    wsk = tl.load(wo_ptr + (C + rc[:, None]) * C + rc[None, :])
    res = _dot(wr, z, PREC) + tl.load(bo_ptr + rc).to(tl.float32)[:, None]
    sk = _dot(wsk, z, PREC) + tl.load(bo_ptr + C + rc).to(tl.float32)[:, None]
    offs = base + rc[:, None] * T + rt[None, :]
    m2 = mt[None, :]
    tl.store(xo_ptr + offs, ((x_c + res) * 0.7071067811865476).to(xo_ptr.dtype.element_ty), mask=m2)
    if FIRST:
        tl.store(skip_ptr + offs, sk.to(skip_ptr.dtype.element_ty), mask=m2)
    else:
        prev = tl.load(skip_ptr + offs, mask=m2, other=0.0).to(tl.float32)
        tl.store(skip_ptr + offs, (prev + sk).to(skip_ptr.dtype.element_ty), mask=m2)


@triton.jit
def diffwave_head_kernel(
    skip_ptr,                     # [B, C, T]
    audio_ptr,                    # [B, T] fp32 x_t, updated in place to x_{t-1}
    noise_ptr,                    # [B, T] fp32 z (unused when not ADD_NOISE)
    wsk_ptr, bsk_ptr,             # [C, C], [C] skip projection
    wout_ptr, bout,               # [C] output projection, its bias (scalar)
    T, skip_scale, c1, c2, sigma,
    C: tl.constexpr, BT: tl.constexpr, ADD_NOISE: tl.constexpr, PREC: tl.constexpr,
):
    b = tl.program_id(1)
    t0 = tl.program_id(0) * BT
    rc = tl.arange(0, C)
    rt = t0 + tl.arange(0, BT)
    mt = rt < T
    wdt = wsk_ptr.dtype.element_ty
    s = tl.load(skip_ptr + b * C * T + rc[:, None] * T + rt[None, :], mask=mt[None, :], other=0.0).to(tl.float32)
    s = (s * skip_scale).to(wdt)
    hdn = _dot(tl.load(wsk_ptr + rc[:, None] * C + rc[None, :]), s, PREC) + tl.load(bsk_ptr + rc).to(tl.float32)[:, None]
    hdn = tl.maximum(hdn, 0.0)
    eps = tl.sum(hdn * tl.load(wout_ptr + rc).to(tl.float32)[:, None], 0) + bout
    x = tl.load(audio_ptr + b * T + rt, mask=mt, other=0.0)
    x = c1 * (x - c2 * eps)
    if ADD_NOISE:
        x = x + sigma * tl.load(noise_ptr + b * T + rt, mask=mt, other=0.0)
    x = tl.minimum(tl.maximum(x, -1.0), 1.0)
    tl.store(audio_ptr + b * T + rt, x, mask=mt)


def _p2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


class DiffWaveTriton:
    """Weights in kernel layout plus the launch sequence of a whole denoise loop.

    dtype: float32 (tl.dot in `precision`, default "ieee": true fp32), float16 or bfloat16
    (operands in that dtype, fp32 accumulation; activations stored in it too)."""

    # (block_t, num_warps) per (dtype, precision) where none is given: the largest tile whose layer
    # kernel does not spill registers on sm_90 (ops/aot.py, D1, Triton 3.9): exact fp32 at 64 x 4
    # kept 45 KB per thread on the stack (the H100's 0.05x eager), at 16 x 4 nothing; tf32 at 64 x 4
    # spilled 72 B, at 64 x 8 nothing; bf16 / fp16 at 64 x 4 nothing (tf32x3 spills at every size)
    TILES = {("float32", "ieee"): (16, 4), ("float32", "tf32"): (64, 8), ("float32", "tf32x3"): (16, 4)}

    def __init__(self, model, dtype=torch.float32, block_t: int | None = None, num_warps: int | None = None,
                 precision: str = "ieee"):
        bt, nw = self.TILES.get((str(dtype).split(".")[-1], precision), (64, 4))
        block_t = bt if block_t is None else block_t
        num_warps = nw if num_warps is None else num_warps
        cfg = model.config
        self.model, self.cfg, self.dtype = model, cfg, dtype
        p = next(model.parameters())
        self.device = p.device
        C, M = cfg.residual_channels, cfg.n_mels
        if C != _p2(C) or C < 16:
            raise ValueError(f"the Triton DiffWave kernel needs residual_channels a power of two >= 16, got {C}")
        self.C, self.M, self.M_P = C, M, max(16, _p2(M))
        self.L = cfg.residual_layers
        f32 = dict(device=self.device, dtype=torch.float32)
        wt = dict(device=self.device, dtype=dtype)
        self.wd, self.bd, self.wc, self.wo, self.bo, self.dil = [], [], [], [], [], []
        with torch.no_grad():
            for layer in model.residual_layers:
                self.wd.append(layer.dilated_conv.weight.permute(2, 0, 1).contiguous().to(**wt))       # [3, 2C, C]
                bias = layer.dilated_conv.bias.float()
                if layer.conditioner_projection is not None:
                    bias = bias + layer.conditioner_projection.bias.float()
                    wc = torch.zeros(2 * C, self.M_P, **f32)
                    wc[:, :M] = layer.conditioner_projection.weight[:, :, 0]
                    self.wc.append(wc.to(**wt).contiguous())
                else:
                    self.wc.append(torch.zeros(2 * C, self.M_P, **wt))
                self.bd.append(bias.to(**f32).contiguous())
                self.wo.append(layer.output_projection.weight[:, :, 0].contiguous().to(**wt))           # [2C, C]
                self.bo.append(layer.output_projection.bias.to(**f32).contiguous())
                self.dil.append(layer.dilated_conv.dilation[0])
            self.w_in = model.input_projection.weight.view(-1).to(**f32)
            self.b_in = model.input_projection.bias.to(**f32)
            self.wsk = model.skip_projection.weight[:, :, 0].contiguous().to(**wt)
            self.bsk = model.skip_projection.bias.to(**f32).contiguous()
            self.wout = model.output_projection.weight.view(-1).to(**f32).contiguous()
            self.bout = float(model.output_projection.bias.item())
            self.w_dp = torch.cat([l.diffusion_projection.weight for l in model.residual_layers]).to(**f32)  # [L*C, 512]
            self.b_dp = torch.cat([l.diffusion_projection.bias for l in model.residual_layers]).to(**f32)
        self.block_t, self.num_warps, self.precision = block_t, num_warps, precision

    def step_tables(self, schedule):
        """[S, L, C] diffusion-step projections for every step n (computed once per schedule)."""
        with torch.inference_mode():
            steps = torch.tensor(schedule.steps, device=self.device, dtype=torch.float32)
            emb = self.model.diffusion_embedding(steps).float()                        # [S, 512]
            return (emb @ self.w_dp.t() + self.b_dp).view(len(schedule), self.L, self.C).contiguous()

    def buffers(self, B, T):
        act = self.dtype
        return {"x": torch.empty(B, self.C, T, device=self.device, dtype=act),
                "x2": torch.empty(B, self.C, T, device=self.device, dtype=act),
                "skip": torch.empty(B, self.C, T, device=self.device, dtype=torch.float32 if act == torch.float32 else act)}

    def denoise_step(self, audio, mel_up, dstep, buf, c1, c2, sigma, noise=None):
        """One executed step: audio [B, T] fp32 updated in place. dstep [L, C]."""
        B, T = audio.shape
        x, x2, skip = buf["x"], buf["x2"], buf["skip"]
        # input projection (1 -> C) + ReLU; one small elementwise op
        x.copy_(torch.addcmul(self.b_in.view(1, -1, 1), self.w_in.view(1, -1, 1), audio.unsqueeze(1)).relu_())
        grid = (triton.cdiv(T, self.block_t), B)
        cond = mel_up is not None
        for l in range(self.L):
            diffwave_layer_kernel[grid](
                x, x2, skip, mel_up if cond else x, dstep[l], self.wd[l], self.bd[l], self.wc[l], self.wo[l], self.bo[l],
                T, self.dil[l], C=self.C, M=self.M, M_P=self.M_P, BT=self.block_t, FIRST=(l == 0), COND=cond,
                PREC=self.precision, num_warps=self.num_warps)
            x, x2 = x2, x
        diffwave_head_kernel[grid](
            skip, audio, noise if noise is not None else audio, self.wsk, self.bsk, self.wout, self.bout,
            T, 1.0 / math.sqrt(self.L), float(c1), float(c2), float(sigma),
            C=self.C, BT=self.block_t, ADD_NOISE=noise is not None, PREC=self.precision, num_warps=self.num_warps)

    @torch.inference_mode()
    def run(self, schedule, noise, mel_up=None, tables=None):
        """noise [S, B, T] fp32, mel_up [B, M, T] -> audio [B, T] fp32 (lmnt's loop)."""
        if noise.ndim != 3 or noise.shape[0] != len(schedule):
            raise ValueError(f"noise must be [S={len(schedule)}, B, T], got shape {tuple(noise.shape)}")
        S, B, T = noise.shape
        if mel_up is not None and (mel_up.ndim != 3 or tuple(mel_up.shape) != (B, self.M, T)):
            raise ValueError(f"mel_up must be [B={B}, M={self.M}, T={T}], got shape {tuple(mel_up.shape)}")
        if noise.dtype != torch.float32:
            raise ValueError(f"noise must be float32, got {noise.dtype}")
        tables = self.step_tables(schedule) if tables is None else tables
        buf = self.buffers(B, T)
        audio = noise[0].to(self.device, torch.float32).clone()
        mel = mel_up.to(self.dtype).contiguous() if mel_up is not None else None
        for i in range(S):
            n = S - 1 - i
            self.denoise_step(audio, mel, tables[n], buf, schedule.c1[n], schedule.c2[n], schedule.sigma[n],
                              noise[i + 1].contiguous() if n > 0 else None)
        return audio


def diffwave_loop_ref(model, schedule, noise, mel=None):
    """The reference this op must reproduce: the eager denoise loop."""
    from ..models.diffwave.runtime import run_torch

    return run_torch(model, schedule, noise, mel=mel)
