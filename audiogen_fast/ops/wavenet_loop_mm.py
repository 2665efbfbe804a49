"""Triton: the WaveNet generation loop for BM streams per program, every product a tensor-core dot.

The single-stream loop (wavenet_loop.py) re-reads every weight from L2 for each stream and sample:
with many streams the GPU spends its time moving the same weights. Here program p owns streams
[p BM, (p + 1) BM) in lockstep (one time step for all of them), keeps their states as the rows of
[BM, C] tiles and runs each product for all BM streams at once as tl.dot:

    a, g = h @ Wd[l, K-1] + sum_k tap_k @ Wd[l, k] + cond[t, l]   (the tanh / sigmoid halves, [BM, G2])
    z = tanh(a) * sigmoid(g);  h = (h + z @ Wo[l] + bo[l]) * sqrt(1/2);  skip += z @ Ws[l] + bs[l]
    logits = relu(relu(skip * scale) @ W1 + b1) @ W2 + b2;  x = sample(logits, u)  (row by row)

so a weight tile read from L2 serves BM streams (the route to hundreds of real-time streams on
one GPU, issue 9). Arithmetic: with 16-bit weights each dot's left operand (the activations) is
rounded to the weights' type and accumulated in fp32 (as the CUDA kernel's 16-stream tensor-core
variant does); with fp32 weights the dots are exact fp32 ("ieee"), which is what the tests check
on the CPU (TRITON_INTERPRET=1). Tiles need power-of-two sizes of at least 16: every channel
count is padded (the padding holds zeros and is masked out of the samplers).

Shapes: B streams, Tc steps in this chunk, L layers, K taps, R residual, G2 = G/2, S skip, H output
hidden, OUT outputs; weights and ring buffers as WaveNetLoop lays them out (layer l owns
(K-1) * d_l + 1 ring rows, HIST = their sum; see the layer loop).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .samplers import gaussian_sample_rows, inverse_cdf_rows, mol_sample_rows
from .wavenet_loop import WaveNetLoop, _tanh, wavenet_loop_ref


@triton.jit
def _dot(a, w, WT: tl.constexpr):
    # a [BM, K] fp32 activations, w [K, N] weights in their storage type; fp32 accumulation
    if WT == 0:
        return tl.dot(a, w, input_precision="ieee")
    elif WT == 1:
        return tl.dot(a.to(tl.float16), w)
    else:
        return tl.dot(a.to(tl.bfloat16), w)


@triton.jit
def wavenet_loop_mm_kernel(
    cond_ptr, hist_ptr, x_ptr, noise_ptr, teacher_ptr, out_ptr, logits_ptr,
    emb_ptr, emb_b_ptr, wd_ptr, wo_ptr, bo_ptr, ws_ptr, bs_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
    B, t0, Tc, L, HIST,
    skip_scale, log_scale_min,
    R: tl.constexpr, G2: tl.constexpr, S: tl.constexpr, H: tl.constexpr, OUT: tl.constexpr,
    K: tl.constexpr, CYCLE: tl.constexpr, NZ: tl.constexpr, N_MIX: tl.constexpr,
    R_P: tl.constexpr, G2_P: tl.constexpr, S_P: tl.constexpr, H_P: tl.constexpr, OUT_P: tl.constexpr,
    BM: tl.constexpr, WT: tl.constexpr, BH: tl.constexpr, LSTAGES: tl.constexpr,
    MODE: tl.constexpr,      # 0 mu-law softmax, 1 mixture of logistics, 2 Gaussian
    TEACHER: tl.constexpr,
):
    G: tl.constexpr = 2 * G2
    rb = tl.program_id(0) * BM + tl.arange(0, BM)  # this program's streams
    mb = rb < B
    rR = tl.arange(0, R_P)
    mR = rR < R
    rG = tl.arange(0, G2_P)
    mG = rG < G2
    rS = tl.arange(0, S_P)
    mS = rS < S
    rO = tl.arange(0, OUT_P)
    mO = rO < OUT
    mbR = mb[:, None] & mR[None, :]
    mRG = mR[:, None] & mG[None, :]
    # W2's bias, loaded once; the output stack's weight tiles are read from L2 each step (in
    # chunks, below), as the layers' are
    emb_b = tl.load(emb_b_ptr + rR, mask=mR, other=0.0).to(tl.float32)
    b2 = tl.load(b2_ptr + rO, mask=mO, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + rb, mask=mb, other=0.0)
    for tt in range(Tc):
        t = t0 + tt
        if TEACHER:
            x = tl.load(teacher_ptr + rb * Tc + tt, mask=mb, other=0.0)
        if MODE == 0:
            h = tl.load(emb_ptr + x.to(tl.int32)[:, None] * R + rR[None, :], mask=mbR, other=0.0).to(tl.float32)
        else:
            h = x[:, None] * tl.load(emb_ptr + rR, mask=mR, other=0.0).to(tl.float32)[None, :]
        h = tl.where(mbR, h + emb_b[None, :], 0.0)
        skip = tl.zeros([BM, S_P], dtype=tl.float32)
        # the layer loop is software-pipelined (LSTAGES > 1): the compiler issues layer l + 1's
        # weight and tap loads as async copies while layer l computes. Each layer's ring has one
        # row more than its taps span, so a step writes x[t] where no tap of that step reads and
        # the loop needs no barrier between reading the oldest tap and overwriting it (a barrier
        # inside the loop keeps Triton from pipelining it); the barrier after the loop orders one
        # step's ring stores before the next step's loads
        for l in tl.range(0, L, num_stages=LSTAGES):
            # dilation 2**(l % CYCLE); ring rows of earlier layers: (K-1) * their dilations + 1 each
            d = 1 << (l % CYCLE)
            P = (K - 1) * d + 1
            off = (K - 1) * ((l // CYCLE) * ((1 << CYCLE) - 1) + (d - 1)) + l
            hb = hist_ptr + (rb[:, None] * HIST + off) * R + rR[None, :]    # [BM, R_P] row starts
            wl = wd_ptr + l * K * R * G + rR[:, None] * G + rG[None, :]     # tap k: + k R G; sigmoid half: + G2
            cl = cond_ptr + ((rb[:, None] * Tc + tt) * L + l) * G + rG[None, :]
            mbG = mb[:, None] & mG[None, :]
            tap0 = tl.load(hb + ((t + 1) % P) * R, mask=mbR, other=0.0)    # x[t - (K-1) d]
            a = tl.load(cl, mask=mbG, other=0.0)
            g = tl.load(cl + G2, mask=mbG, other=0.0)
            a += _dot(h, tl.load(wl + (K - 1) * R * G, mask=mRG, other=0.0), WT)
            g += _dot(h, tl.load(wl + (K - 1) * R * G + G2, mask=mRG, other=0.0), WT)
            a += _dot(tap0, tl.load(wl, mask=mRG, other=0.0), WT)
            g += _dot(tap0, tl.load(wl + G2, mask=mRG, other=0.0), WT)
            if K == 3:
                tap1 = tl.load(hb + ((t + d + 1) % P) * R, mask=mbR, other=0.0)  # x[t - d]
                a += _dot(tap1, tl.load(wl + R * G, mask=mRG, other=0.0), WT)
                g += _dot(tap1, tl.load(wl + R * G + G2, mask=mRG, other=0.0), WT)
            z = tl.where(mG[None, :], _tanh(a) * tl.sigmoid(g), 0.0)
            wo = tl.load(wo_ptr + (l * G2 + rG[:, None]) * R + rR[None, :], mask=mG[:, None] & mR[None, :], other=0.0)
            ws = tl.load(ws_ptr + (l * G2 + rG[:, None]) * S + rS[None, :], mask=mG[:, None] & mS[None, :], other=0.0)
            bo = tl.load(bo_ptr + l * R + rR, mask=mR, other=0.0).to(tl.float32)
            bs = tl.load(bs_ptr + l * S + rS, mask=mS, other=0.0).to(tl.float32)
            res = _dot(z, wo, WT)
            skip += _dot(z, ws, WT) + bs[None, :]
            tl.store(hb + (t % P) * R, h, mask=mbR)                        # x[t]
            h = tl.where(mbR, (h + res + bo[None, :]) * 0.7071067811865476, 0.0)
        tl.debug_barrier()
        # the output stack in chunks of BH hidden units: W1 [S, H] and W2 [H, OUT] whole would be
        # 192 KB of fp16 tiles in shared memory and registers (W1: 255 registers and spills at 4
        # warps, one program per SM; audiogen_fast/ops/aot.py compiles it for sm_90 here)
        y = tl.where(mS[None, :], tl.maximum(skip * skip_scale, 0.0), 0.0)
        logits = tl.zeros([BM, OUT_P], dtype=tl.float32)
        for c in range(0, H_P, BH):
            rc = c + tl.arange(0, BH)
            mc = rc < H
            w1 = tl.load(w1_ptr + rS[:, None] * H + rc[None, :], mask=mS[:, None] & mc[None, :], other=0.0)
            b1 = tl.load(b1_ptr + rc, mask=mc, other=0.0).to(tl.float32)
            hid = tl.where(mc[None, :], tl.maximum(_dot(y, w1, WT) + b1[None, :], 0.0), 0.0)
            w2 = tl.load(w2_ptr + rc[:, None] * OUT + rO[None, :], mask=mc[:, None] & mO[None, :], other=0.0)
            logits += _dot(hid, w2, WT)
        logits += b2[None, :]
        if TEACHER:
            tl.store(logits_ptr + (rb[:, None] * Tc + tt) * OUT + rO[None, :], logits, mask=mb[:, None] & mO[None, :])
        else:
            nz = noise_ptr + (rb * Tc + tt) * NZ
            if MODE == 0:
                x = inverse_cdf_rows(logits, mO, tl.load(nz, mask=mb, other=0.0), OUT).to(tl.float32)
            elif MODE == 1:
                x = mol_sample_rows(logits, rO, tl.load(nz, mask=mb, other=0.5), tl.load(nz + 1, mask=mb, other=0.5),
                                    log_scale_min, N_MIX)
            else:
                x = gaussian_sample_rows(logits, rO, tl.load(nz, mask=mb, other=0.0), log_scale_min)
            tl.store(out_ptr + rb * Tc + tt, x, mask=mb)
    tl.store(x_ptr + rb, x, mask=mb)


def _p2_16(n: int) -> int:
    """Power of two >= n and >= 16 (tl.dot's smallest tile side)."""
    return max(16, 1 << max(0, (int(n) - 1).bit_length()))


class WaveNetLoopMM(WaveNetLoop):
    """WaveNetLoop's weights and state, run `streams_per_program` streams per program on tensor
    cores. dtype float16 / bfloat16: activations rounded to it as they enter each product (not
    bit-equal to a stream run alone); float32: exact fp32 dots (the CPU tests' mode; slow on a GPU)."""

    def __init__(self, model, dtype=torch.float16, streams_per_program: int = 16, num_warps: int = 8,
                 block_h: int = 64, layer_stages: int | None = None):
        # 8 warps, the output stack in 64-unit chunks: for W1 in fp16 at 16 streams per program,
        # 4 warps spilled (255 registers and 104 B of stack) and whole W1 / W2 tiles took 196 KB of
        # shared memory (ops/aot.py, compiled for sm_90 with Triton 3.9; tests/test_triton_aot.py)
        super().__init__(model, dtype=dtype, num_warps=num_warps)
        if streams_per_program not in (16, 32, 64):
            raise ValueError(f"streams_per_program must be 16, 32 or 64 (a tensor-core tile's rows), got {streams_per_program}")
        cfg = self.cfg
        c = self.consts
        if layer_stages is None:
            layer_stages = self.default_stages(cfg, dtype, copies=2)  # W1 fp16 2; W4 1
        self.mm_consts = dict(R=c["R"], G2=c["G2"], S=c["S"], H=c["H"], OUT=c["OUT"], K=c["K"], CYCLE=c["CYCLE"],
                              NZ=c["NZ"], N_MIX=c["N_MIX"], MODE=c["MODE"],
                              R_P=_p2_16(cfg.residual_channels), G2_P=_p2_16(cfg.gate_channels // 2),
                              S_P=_p2_16(cfg.skip_channels), H_P=_p2_16(cfg.out_hidden), OUT_P=_p2_16(c["OUT"]),
                              BH=min(_p2_16(cfg.out_hidden), block_h), LSTAGES=int(layer_stages),
                              BM=int(streams_per_program), WT={torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}[dtype])
        self.BM = int(streams_per_program)

    def run_chunk(self, cond, hist, x, t0, noise=None, teacher=None):
        """As WaveNetLoop.run_chunk: cond [B, Tc, L, G]; noise [B, Tc, NZ] or teacher [B, Tc]."""
        B, Tc, out, logits = self._outputs(cond, hist, x, noise, teacher)
        wavenet_loop_mm_kernel[(-(-B // self.BM),)](
            cond, hist, x, noise if noise is not None else out, teacher if teacher is not None else out, out, logits,
            self.emb, self.emb_b, self.wd, self.wo, self.bo, self.ws, self.bs, self.w1, self.b1, self.w2, self.b2,
            B, int(t0), Tc, self.L, self.hist_rows,
            math.sqrt(1.0 / self.L), float(self.cfg.log_scale_min),
            TEACHER=teacher is not None, num_warps=self.num_warps, **self.mm_consts)
        return logits if teacher is not None else out


# The reference this op must reproduce: the eager incremental loop, as for the single-stream loop
# (16-bit weights: with every product's left operand rounded to the weights' type; see the tests).
wavenet_loop_mm_ref = wavenet_loop_ref
