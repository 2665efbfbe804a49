"""Triton: the whole WaveNet generation loop for one stream in one program.

Design (nv-wavenet's "single block" variant, written for Triton): program b owns stream b and
runs every layer of every sample of a chunk of time steps without leaving the kernel, so there
is no launch or host round trip per sample. Per sample and layer it

  reads the K-1 dilated taps from the layer's ring buffer (global memory, L1/L2 resident),
  a = sum_k tap_k @ Wd[l, k] + cond[t, l]          (cond: conv bias + mel + speaker, precomputed)
  z = tanh(a[:G/2]) * sigmoid(a[G/2:])             (in chunks of BG gate channels)
  h = (h + z @ Wo[l] + bo[l]) * sqrt(1/2);  skip += z @ Ws[l] + bs[l]
  writes the layer input into the ring buffer

then the output stack relu -> W1 -> relu -> W2 and the sampler (inverse CDF over the softmax,
or the mixture-of-logistics / Gaussian rule) with the injected uniforms, and embeds the sample
as the next input. Weights stream from L2 every sample (W1 in fp16 is ~1.3 MB, L2 holds it);
arithmetic is fp32 whatever the weight dtype. The layer loop is software-pipelined (LSTAGES > 1):
the compiler issues layer l + 1's weight, tap and conditioning loads as async copies while layer
l computes. For that the loop has no barrier inside: each layer's ring has one row more than its
taps span, so a step writes x[t] where none of its taps reads (a barrier between reading the
oldest tap and overwriting it kept Triton from pipelining the loop); the barrier after the loop
orders one step's ring stores before the next step's loads.

Shapes: B streams, Tc steps in this chunk, L layers, K taps, R residual, G gate (G2 = G/2),
S skip, H output hidden, OUT outputs; HIST = sum over layers of ((K-1) * dilation + 1).
"""
from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from ._persistent import check_tensor
from .samplers import gaussian_sample, inverse_cdf, mol_sample

# a launch input's checks (shape, fp32, contiguous, device) without the finiteness test: no device
# sync per launch
_check = functools.partial(check_tensor, finite=False)


@triton.jit
def _tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def wavenet_loop_kernel(
    cond_ptr,            # [B, Tc, L, 2*G2] fp32
    hist_ptr,            # [B, HIST, R] fp32 ring buffers (persist across chunks)
    x_ptr,               # [B] fp32: the input of the chunk's first step (class index as float for mu-law); updated
    noise_ptr,           # [B, Tc, NZ] fp32
    teacher_ptr,         # [B, Tc] fp32 inputs (TEACHER) else unused
    out_ptr,             # [B, Tc] fp32 samples (class index as float for mu-law)
    logits_ptr,          # [B, Tc, OUT] fp32 (TEACHER) else unused
    emb_ptr, emb_b_ptr,  # [IN, R], [R]
    wd_ptr,              # [L, K, R, 2*G2]
    wo_ptr, bo_ptr,      # [L, G2, R], [L, R]
    ws_ptr, bs_ptr,      # [L, G2, S], [L, S]
    w1_ptr, b1_ptr,      # [S, H], [H]
    w2_ptr, b2_ptr,      # [H, OUT], [OUT]
    t0, Tc, L, HIST,
    skip_scale, log_scale_min,
    R: tl.constexpr, G2: tl.constexpr, S: tl.constexpr, H: tl.constexpr, OUT: tl.constexpr,
    K: tl.constexpr, CYCLE: tl.constexpr, NZ: tl.constexpr, N_MIX: tl.constexpr,
    R_P: tl.constexpr, S_P: tl.constexpr, OUT_P: tl.constexpr, BG: tl.constexpr, BH: tl.constexpr,
    LSTAGES: tl.constexpr,   # the layer loop's pipeline depth (1: none)
    MODE: tl.constexpr,      # 0 mu-law softmax, 1 mixture of logistics, 2 Gaussian
    TEACHER: tl.constexpr,
):
    b = tl.program_id(0)
    G: tl.constexpr = 2 * G2
    rR = tl.arange(0, R_P)
    mR = rR < R
    rS = tl.arange(0, S_P)
    mS = rS < S
    rG = tl.arange(0, BG)
    rH = tl.arange(0, BH)
    rO = tl.arange(0, OUT_P)
    mO = rO < OUT
    emb_b = tl.load(emb_b_ptr + rR, mask=mR, other=0.0).to(tl.float32)
    b2 = tl.load(b2_ptr + rO, mask=mO, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + b)
    for tt in range(Tc):
        t = t0 + tt
        if TEACHER:
            x = tl.load(teacher_ptr + b * Tc + tt)
        if MODE == 0:
            h = tl.load(emb_ptr + x.to(tl.int32) * R + rR, mask=mR, other=0.0).to(tl.float32) + emb_b
        else:
            h = x * tl.load(emb_ptr + rR, mask=mR, other=0.0).to(tl.float32) + emb_b
        skip = tl.zeros([S_P], dtype=tl.float32)
        for l in tl.range(0, L, num_stages=LSTAGES):
            # dilation 2**(l % CYCLE); ring rows of earlier layers: (K-1) * their dilations + 1 each
            d = 1 << (l % CYCLE)
            P = (K - 1) * d + 1
            off = (K - 1) * ((l // CYCLE) * ((1 << CYCLE) - 1) + (d - 1)) + l
            hb = hist_ptr + (b * HIST + off) * R
            wl = wd_ptr + l * K * R * G
            cl = cond_ptr + ((b * Tc + tt) * L + l) * G
            # every load of the layer is issued before any arithmetic (one memory latency, not three)
            tap0 = tl.load(hb + ((t + 1) % P) * R + rR, mask=mR, other=0.0)         # x[t - (K-1) d]
            if K == 3:
                tap1 = tl.load(hb + ((t + d + 1) % P) * R + rR, mask=mR, other=0.0)  # x[t - d]
            bo = tl.load(bo_ptr + l * R + rR, mask=mR, other=0.0).to(tl.float32)
            bs = tl.load(bs_ptr + l * S + rS, mask=mS, other=0.0).to(tl.float32)
            res = tl.zeros([R_P], dtype=tl.float32)
            sk = tl.zeros([S_P], dtype=tl.float32)
            for c in tl.static_range(0, G2, BG):
                cols = c + rG
                mc = cols < G2
                wmask = mR[:, None] & mc[None, :]
                a = tl.load(cl + cols, mask=mc, other=0.0)
                g = tl.load(cl + G2 + cols, mask=mc, other=0.0)
                wa_cur = tl.load(wl + ((K - 1) * R + rR[:, None]) * G + cols[None, :], mask=wmask, other=0.0)
                wg_cur = tl.load(wl + ((K - 1) * R + rR[:, None]) * G + (G2 + cols)[None, :], mask=wmask, other=0.0)
                wa_0 = tl.load(wl + rR[:, None] * G + cols[None, :], mask=wmask, other=0.0)
                wg_0 = tl.load(wl + rR[:, None] * G + (G2 + cols)[None, :], mask=wmask, other=0.0)
                if K == 3:
                    wa_1 = tl.load(wl + (R + rR[:, None]) * G + cols[None, :], mask=wmask, other=0.0)
                    wg_1 = tl.load(wl + (R + rR[:, None]) * G + (G2 + cols)[None, :], mask=wmask, other=0.0)
                wo = tl.load(wo_ptr + (l * G2 + cols[:, None]) * R + rR[None, :], mask=mc[:, None] & mR[None, :], other=0.0)
                ws = tl.load(ws_ptr + (l * G2 + cols[:, None]) * S + rS[None, :], mask=mc[:, None] & mS[None, :], other=0.0)
                # one reduction per gate half: the taps are summed elementwise first
                pa = h[:, None] * wa_cur.to(tl.float32) + tap0[:, None] * wa_0.to(tl.float32)
                pg = h[:, None] * wg_cur.to(tl.float32) + tap0[:, None] * wg_0.to(tl.float32)
                if K == 3:
                    pa += tap1[:, None] * wa_1.to(tl.float32)
                    pg += tap1[:, None] * wg_1.to(tl.float32)
                a += tl.sum(pa, 0)
                g += tl.sum(pg, 0)
                z = tl.where(mc, _tanh(a) * tl.sigmoid(g), 0.0)
                res += tl.sum(z[:, None] * wo.to(tl.float32), 0)
                sk += tl.sum(z[:, None] * ws.to(tl.float32), 0)
            tl.store(hb + (t % P) * R + rR, h, mask=mR)                               # x[t]
            h = (h + res + bo) * 0.7071067811865476
            skip += sk + bs
        tl.debug_barrier()  # this step's ring stores before the next step's tap loads
        # output stack: relu(skip * scale) -> W1 -> relu -> W2, in chunks of BH hidden units
        y = tl.maximum(skip * skip_scale, 0.0)
        logits = b2
        for c in tl.static_range(0, H, BH):
            hc = c + rH
            mh = hc < H
            w1 = tl.load(w1_ptr + rS[:, None] * H + hc[None, :], mask=mS[:, None] & mh[None, :], other=0.0).to(tl.float32)
            h1 = tl.sum(y[:, None] * w1, 0) + tl.load(b1_ptr + hc, mask=mh, other=0.0).to(tl.float32)
            h1 = tl.where(mh, tl.maximum(h1, 0.0), 0.0)
            w2 = tl.load(w2_ptr + hc[:, None] * OUT + rO[None, :], mask=mh[:, None] & mO[None, :], other=0.0).to(tl.float32)
            logits += tl.sum(h1[:, None] * w2, 0)
        if TEACHER:
            tl.store(logits_ptr + (b * Tc + tt) * OUT + rO, logits, mask=mO)
        else:
            nz = noise_ptr + (b * Tc + tt) * NZ
            if MODE == 0:
                x = inverse_cdf(logits, mO, tl.load(nz), OUT).to(tl.float32)
            elif MODE == 1:
                x = mol_sample(logits, rO, tl.load(nz), tl.load(nz + 1), log_scale_min, N_MIX)
            else:
                x = gaussian_sample(logits, rO, tl.load(nz), log_scale_min)
            tl.store(out_ptr + b * Tc + tt, x)
    tl.store(x_ptr + b, x)


def _p2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


class WaveNetLoop:
    """Weights laid out for the kernel, plus the per-stream state. dtype: storage dtype of the
    weights (float32, float16 or bfloat16); state, conditioning and arithmetic stay fp32."""

    def __init__(self, model, dtype=torch.float32, block_g: int | None = None, block_h: int = 64, num_warps: int = 4,
                 layer_stages: int | None = None):
        cfg = model.config
        if layer_stages is None:
            layer_stages = self.default_stages(cfg, dtype)
        # all of a gate chunk's weight tiles are live at once (K taps x 2 halves [R, BG], Wo / Ws
        # rows [BG, R + S]): the widest chunk (up to 64) whose tiles stay within 80 KB, counted in
        # fp32 when the loop is pipelined (the prefetched 16-bit tiles are converted as they
        # leave shared memory). On sm_90 (ops/aot.py, 4 warps): up to 74 KB nothing spilled, from
        # 115 KB on everything did (W4 fp16 g64: 488 B a thread; pipelined W1 fp16 g64: 56 B,
        # W2 200 B; at g32 nothing). H100, 2026-11-22, unpipelined: W1 fp16 g64 was the fastest.
        if block_g is None:
            esize = 4 if layer_stages > 1 else torch.empty(0, dtype=dtype).element_size()
            K_, R_, S_ = cfg.kernel_size, cfg.residual_channels, cfg.skip_channels
            block_g = 64
            while block_g > 8 and (2 * K_ * R_ + R_ + S_) * block_g * esize > 80 * 1024:
                block_g //= 2
        self.model, self.cfg = model, cfg
        p = next(model.parameters())
        self.device = p.device
        L, K, R, G, S, H = cfg.layers, cfg.kernel_size, cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.out_hidden
        OUT = cfg.out_channels
        f32 = dict(device=self.device, dtype=torch.float32)
        wt = dict(device=self.device, dtype=dtype)
        layers = model.conv_layers
        with torch.no_grad():
            self.emb = model.first_conv.weight[:, :, 0].t().contiguous().to(**wt)                    # [IN, R]
            self.emb_b = model.first_conv.bias.to(**f32).contiguous()
            self.wd = torch.stack([lay.conv.weight.permute(2, 1, 0) for lay in layers]).contiguous().to(**wt)  # [L,K,R,G]
            self.wo = torch.stack([lay.conv1x1_out.weight[:, :, 0].t() for lay in layers]).contiguous().to(**wt)  # [L,G2,R]
            self.bo = torch.stack([lay.conv1x1_out.bias for lay in layers]).to(**f32).contiguous()
            self.ws = torch.stack([lay.conv1x1_skip.weight[:, :, 0].t() for lay in layers]).contiguous().to(**wt)  # [L,G2,S]
            self.bs = torch.stack([lay.conv1x1_skip.bias for lay in layers]).to(**f32).contiguous()
            self.w1 = model.last_conv1.weight[:, :, 0].t().contiguous().to(**wt)                  # [S, H]
            self.b1 = model.last_conv1.bias.to(**f32).contiguous()
            self.w2 = model.last_conv2.weight[:, :, 0].t().contiguous().to(**wt)                  # [H, OUT]
            self.b2 = model.last_conv2.bias.to(**f32).contiguous()
        # ring buffers: layer l (dilation 2**(l % cycle)) owns (K-1) * d rows; the kernel computes
        # the offsets from l, so the layout must be exactly this
        assert [lay.dilation for lay in layers] == [2 ** (i % cfg.cycle) for i in range(L)]
        self.hist_rows = (K - 1) * sum(lay.dilation for lay in layers) + L  # a row more per layer: see the kernel
        self.consts = dict(R=R, G2=G // 2, S=S, H=H, OUT=OUT, K=K, CYCLE=cfg.cycle, NZ=2 if cfg.output == "mol" else 1,
                           N_MIX=cfg.n_mix if cfg.output == "mol" else 1, R_P=_p2(R), S_P=_p2(S), OUT_P=_p2(OUT),
                           BG=min(_p2(G // 2), block_g), BH=min(_p2(H), block_h),
                           MODE={"mulaw": 0, "mol": 1, "gaussian": 2}[cfg.output],
                           LSTAGES=int(layer_stages))
        self.num_warps = num_warps
        self.L, self.G = L, G

    @staticmethod
    def layer_bytes(cfg, dtype) -> int:
        """One layer's weights (Wd's K taps, Wo, Ws) in the storage dtype."""
        G2 = cfg.gate_channels // 2
        esize = torch.empty(0, dtype=dtype).element_size()
        return (cfg.kernel_size * cfg.residual_channels * 2 * G2 + G2 * (cfg.residual_channels + cfg.skip_channels)) * esize

    @classmethod
    def default_stages(cls, cfg, dtype, copies: int = 1) -> int:
        """2 (pipeline the layer loop) where `copies` layers' weights fit next to the rest in
        shared memory, else 1. The single-stream loop keeps about one layer's bytes there (W1 fp16
        60 KB, W1 / W2 fp32 115 / 150 KB; W4's 262 KB in fp16 do not fit an SM's 227 KB); the
        tensor-core loop's dot operands pass through shared memory too: two (WaveNetLoopMM)."""
        return 2 if copies * cls.layer_bytes(cfg, dtype) <= 160 * 1024 else 1

    def new_state(self, B: int, initial: float):
        hist = torch.zeros(B, self.hist_rows, self.cfg.residual_channels, device=self.device, dtype=torch.float32)
        x = torch.full((B,), float(initial), device=self.device, dtype=torch.float32)
        return hist, x

    def _outputs(self, cond, hist, x, noise, teacher):
        """run_chunk's checks; returns (B, Tc, samples [B, Tc], logits [B, Tc, OUT] or the samples)."""
        if cond.ndim != 4:
            raise ValueError(f"cond must be [B, Tc, L, G], got shape {tuple(cond.shape)}")
        B, Tc = cond.shape[:2]
        _check(cond, "cond", (B, Tc, self.L, self.G), self.device)
        _check(hist, "hist", (B, self.hist_rows, self.cfg.residual_channels), self.device)
        _check(x, "x", (B,), self.device)
        out = torch.empty(B, Tc, device=self.device, dtype=torch.float32)
        logits = torch.empty(B, Tc, self.consts["OUT"], device=self.device, dtype=torch.float32) if teacher is not None else out
        if teacher is not None:
            _check(teacher, "teacher", (B, Tc), self.device)
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            _check(noise, "noise", (B, Tc, self.consts["NZ"]), self.device)
        return B, Tc, out, logits

    def run_chunk(self, cond, hist, x, t0, noise=None, teacher=None):
        """cond [B, Tc, L, G] fp32; noise [B, Tc, NZ] or teacher [B, Tc]. Returns samples [B, Tc]
        (or logits [B, Tc, OUT] when teacher-forced). hist and x are updated in place."""
        B, Tc, out, logits = self._outputs(cond, hist, x, noise, teacher)
        dummy = out
        wavenet_loop_kernel[(B,)](
            cond, hist, x, noise if noise is not None else dummy, teacher if teacher is not None else dummy, out, logits,
            self.emb, self.emb_b, self.wd, self.wo, self.bo, self.ws, self.bs, self.w1, self.b1, self.w2, self.b2,
            int(t0), Tc, self.L, self.hist_rows,
            math.sqrt(1.0 / self.L), float(self.cfg.log_scale_min),
            TEACHER=teacher is not None, num_warps=self.num_warps, **self.consts)
        return logits if teacher is not None else out


def wavenet_loop_ref(model, n, mel=None, speaker=None, noise=None, teacher=None):
    """The reference this op must reproduce: the eager incremental loop."""
    from ..models.wavenet.runtime import run_torch

    return run_torch(model, n, mel=mel, speaker=speaker, noise=noise, teacher=teacher)
