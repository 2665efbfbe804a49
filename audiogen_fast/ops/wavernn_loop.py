"""Triton: the WaveRNN generation loop for one stream in one program (fused GRU steps).

Design: program b owns stream b and runs every step of a chunk without leaving the kernel. The
step-independent parts are hoisted out of the loop exactly as the eager loop does
(models/wavernn/runtime.py `_Step.hoist`: the mel|a1 part of I, GRU2's a2 input gates, the a3 / a4
parts of fc1 / fc2, each one matrix product per chunk). What is left per sample is the true
recurrence, here in one program:

  h   = pre_I[t] + x * w_Ix                              [R]
  h1  = GRU(W_ih1 h + b_ih1, W_hh1 h1 + b_hh1, h1);  x1 = h1 + h
  h2  = GRU(W_ih2 x1 + pre_2[t], W_hh2 h2 + b_hh2, h2);  x2 = h2 + x1
  y   = relu(W_f1 x2 + pre_f1[t]);  y = relu(W_f2 y + pre_f2[t]);  logits = W_f3 y + b_f3
  sample (inverse CDF of the softmax with the injected uniform, RAW; or the MoL rule)

Vectors that another thread needs next (h, the gates, x1, x2, y) go through a per-stream
scratch row in global memory (L1/L2 resident) with a block barrier between stages. Matrix-
vector products read the nn weights in their own [out, in] layout (rows contiguous along the
reduction: coalesced), in tiles of BN rows x BK columns; arithmetic is fp32 whatever the weight
dtype. GRU gate order is PyTorch's (r, z, n).

Shapes: B streams, Tc steps in this chunk, R rnn units, F fc width, OUT classes (RAW) or
3 * n_mix (MOL).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .samplers import gaussian_sample, inverse_cdf, mol_sample
from .wavenet_loop import _check, _p2


@triton.jit
def _tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _matvec(w_ptr, v_ptr, N, K, out_ptr, add_ptr, RELU: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """out[n] = (relu)(sum_k w[n, k] v[k] + add[n]) for n < N; w [N, K] row-major."""
    rn0 = tl.arange(0, BN)
    rk0 = tl.arange(0, BK)
    for n0 in range(0, N, BN):
        rn = n0 + rn0
        mn = rn < N
        acc = tl.zeros([BN], dtype=tl.float32)
        for k0 in range(0, K, BK):
            rk = k0 + rk0
            mk = rk < K
            v = tl.load(v_ptr + rk, mask=mk, other=0.0)
            w = tl.load(w_ptr + rn[:, None] * K + rk[None, :], mask=mn[:, None] & mk[None, :], other=0.0)
            acc += tl.sum(w.to(tl.float32) * v[None, :], 1)
        acc += tl.load(add_ptr + rn, mask=mn, other=0.0)
        if RELU:
            acc = tl.maximum(acc, 0.0)
        tl.store(out_ptr + rn, acc, mask=mn)


@triton.jit
def _gru_update(gi_ptr, gh_ptr, h_ptr, res_ptr, x_out_ptr, R, BN: tl.constexpr):
    """h <- n + z (h - n) with r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r gh_n);
    x_out = h_new + res (the residual the next stage takes)."""
    rn0 = tl.arange(0, BN)
    for n0 in range(0, R, BN):
        rn = n0 + rn0
        m = rn < R
        r = tl.sigmoid(tl.load(gi_ptr + rn, mask=m, other=0.0) + tl.load(gh_ptr + rn, mask=m, other=0.0))
        z = tl.sigmoid(tl.load(gi_ptr + R + rn, mask=m, other=0.0) + tl.load(gh_ptr + R + rn, mask=m, other=0.0))
        nn = _tanh(tl.load(gi_ptr + 2 * R + rn, mask=m, other=0.0) + r * tl.load(gh_ptr + 2 * R + rn, mask=m, other=0.0))
        h = tl.load(h_ptr + rn, mask=m, other=0.0)
        h = nn + z * (h - nn)
        tl.store(h_ptr + rn, h, mask=m)
        tl.store(x_out_ptr + rn, h + tl.load(res_ptr + rn, mask=m, other=0.0), mask=m)


@triton.jit
def wavernn_loop_kernel(
    pre_i_ptr,           # [B, Tc, R]  mel|a1 part of I + its bias
    pre_2_ptr,           # [B, Tc, 3R] a2 part of GRU2's input gates + b_ih2
    pre_f1_ptr,          # [B, Tc, F]  a3 part of fc1 + its bias
    pre_f2_ptr,          # [B, Tc, F]  a4 part of fc2 + its bias
    h1_ptr, h2_ptr,      # [B, R] GRU states (updated)
    x_ptr,               # [B] previous sample value (updated)
    noise_ptr,           # [B, Tc, NZ]
    teacher_ptr,         # [B, Tc] (TEACHER) else unused
    out_ptr,             # [B, Tc] sample values
    cls_ptr,             # [B, Tc] int64 classes (RAW, sampling) else unused
    logits_ptr,          # [B, Tc, OUT] (TEACHER) else unused
    scr_ptr,             # [B, 10R + 2F + OUT] scratch
    w_ix_ptr,            # [R]
    w_ih1_ptr, b_ih1_ptr, w_hh1_ptr, b_hh1_ptr,   # [3R, R], [3R], [3R, R], [3R]
    w_ih2_ptr, w_hh2_ptr, b_hh2_ptr,              # [3R, R] (x part), [3R, R], [3R]
    w_f1_ptr, w_f2_ptr, w_f3_ptr, b_f3_ptr,       # [F, R], [F, F], [OUT, F], [OUT]
    Tc, R, F, log_scale_min,
    OUT: tl.constexpr, OUT_P: tl.constexpr, NZ: tl.constexpr, N_MIX: tl.constexpr,
    BN: tl.constexpr, BK: tl.constexpr,
    MODE: tl.constexpr,      # 0 RAW (softmax over OUT classes), 1 MOL, 2 GAUSS (mean | log_std)
    TEACHER: tl.constexpr,
):
    b = tl.program_id(0)
    scr = scr_ptr + b * (10 * R + 2 * F + OUT)
    s_h, s_gi, s_gh, s_x1, s_x2 = scr, scr + R, scr + 4 * R, scr + 7 * R, scr + 8 * R
    s_y1, s_y2, s_lg = scr + 10 * R, scr + 10 * R + F, scr + 10 * R + 2 * F
    h1 = h1_ptr + b * R
    h2 = h2_ptr + b * R
    rR0 = tl.arange(0, BN)
    rO = tl.arange(0, OUT_P)
    mO = rO < OUT
    x = tl.load(x_ptr + b)
    for tt in range(Tc):
        row = b * Tc + tt
        if TEACHER:
            x = tl.load(teacher_ptr + row)
        # h = pre_I[t] + x * w_Ix
        for n0 in range(0, R, BN):
            rn = n0 + rR0
            m = rn < R
            hv = tl.load(pre_i_ptr + row * R + rn, mask=m, other=0.0) + x * tl.load(w_ix_ptr + rn, mask=m, other=0.0)
            tl.store(s_h + rn, hv, mask=m)
        tl.debug_barrier()
        # GRU1
        _matvec(w_ih1_ptr, s_h, 3 * R, R, s_gi, b_ih1_ptr, False, BN, BK)
        _matvec(w_hh1_ptr, h1, 3 * R, R, s_gh, b_hh1_ptr, False, BN, BK)
        tl.debug_barrier()
        _gru_update(s_gi, s_gh, h1, s_h, s_x1, R, BN)
        tl.debug_barrier()
        # GRU2 (input gates: x1 part here + the hoisted a2 part and bias)
        _matvec(w_ih2_ptr, s_x1, 3 * R, R, s_gi, pre_2_ptr + row * 3 * R, False, BN, BK)
        _matvec(w_hh2_ptr, h2, 3 * R, R, s_gh, b_hh2_ptr, False, BN, BK)
        tl.debug_barrier()
        _gru_update(s_gi, s_gh, h2, s_x1, s_x2, R, BN)
        tl.debug_barrier()
        _matvec(w_f1_ptr, s_x2, F, R, s_y1, pre_f1_ptr + row * F, True, BN, BK)
        tl.debug_barrier()
        _matvec(w_f2_ptr, s_y1, F, F, s_y2, pre_f2_ptr + row * F, True, BN, BK)
        tl.debug_barrier()
        # logits in BN-row tiles through the scratch row, then the whole vector for the sampler (a
        # [OUT, BK] tile in registers, R2's 512 x 64, spilled 4.3 KB per thread on sm_90: ops/aot.py)
        _matvec(w_f3_ptr, s_y2, OUT, F, s_lg, b_f3_ptr, False, BN, BK)
        tl.debug_barrier()
        logits = tl.load(s_lg + rO, mask=mO, other=0.0)
        if TEACHER:
            tl.store(logits_ptr + row * OUT + rO, logits, mask=mO)
        else:
            nz = noise_ptr + row * NZ
            if MODE == 0:
                k = inverse_cdf(logits, mO, tl.load(nz), OUT)
                tl.store(cls_ptr + row, k.to(tl.int64))
                # label_to_float bit for bit: Triton's `/` is an approximate division on the GPU
                x = tl.math.div_rn(2.0 * k.to(tl.float32), (OUT - 1) * 1.0) - 1.0
            elif MODE == 1:
                x = mol_sample(logits, rO, tl.load(nz), tl.load(nz + 1), log_scale_min, N_MIX)
            else:
                x = gaussian_sample(logits, rO, tl.load(nz), log_scale_min)
            tl.store(out_ptr + row, x)
        # the scratch rows are rewritten next step only after barriers every thread passes
        tl.debug_barrier()
    tl.store(x_ptr + b, x)


class WaveRNNLoop:
    """Weights laid out for the kernel and the loop interface of the other WaveRNN loops:
    new_state(B) -> (h1, h2, x); run_chunk(mel_up [B, n, C], aux [B, n, 4A], state, noise= |
    teacher=) -> (samples [B, n], classes or None) or logits [B, n, OUT]. dtype: storage dtype
    of the matrix weights (float32, float16, bfloat16); state and arithmetic stay fp32."""

    def __init__(self, model, dtype=torch.float32, block_n: int = 32, block_k: int = 64, num_warps: int = 4):
        from ..models.wavernn.runtime import _Step

        cfg = model.config
        self.model, self.cfg, self.st = model, cfg, _Step(model)
        p = next(model.parameters())
        self.device = p.device
        R, Fd = cfg.rnn_dims, cfg.fc_dims
        f32 = dict(device=self.device, dtype=torch.float32)
        wt = dict(device=self.device, dtype=dtype)
        st = self.st
        with torch.no_grad():
            c = lambda t, **kw: t.detach().to(**kw).contiguous()  # noqa: E731
            self.w = dict(
                w_ix=c(st.w_I_x, **f32),
                w_ih1=c(st.w_ih1, **wt), b_ih1=c(st.b_ih1, **f32), w_hh1=c(st.w_hh1, **wt), b_hh1=c(st.b_hh1, **f32),
                w_ih2=c(st.w_ih2_x, **wt), w_hh2=c(st.w_hh2, **wt), b_hh2=c(st.b_hh2, **f32),
                w_f1=c(st.w_fc1_x, **wt), w_f2=c(st.w_fc2_x, **wt), w_f3=c(model.fc3.weight, **wt),
                b_f3=c(model.fc3.bias, **f32))
        mode = cfg.mode_index
        OUT = cfg.n_classes
        self.consts = dict(OUT=OUT, OUT_P=_p2(OUT), NZ=2 if mode == 1 else 1, N_MIX=cfg.n_mix if mode == 1 else 1,
                           BN=min(block_n, _p2(max(R, Fd))), BK=min(block_k, _p2(max(R, Fd))), MODE=mode)
        self.num_warps = num_warps

    def new_state(self, B: int):
        R = self.cfg.rnn_dims
        z = dict(device=self.device, dtype=torch.float32)
        return torch.zeros(B, R, **z), torch.zeros(B, R, **z), torch.zeros(B, **z)

    @torch.inference_mode()
    def run_chunk(self, mel_up, aux, state, noise=None, teacher=None):
        cfg, A, R, Fd = self.cfg, self.cfg.aux_dims, self.cfg.rnn_dims, self.cfg.fc_dims
        B, Tc = mel_up.shape[:2]
        dt = self.st.w_I_c.dtype
        mel_up, aux = mel_up.to(self.device, dt), aux.to(self.device, dt)
        cond = [mel_up] + [aux[..., i * A:(i + 1) * A] for i in range(4)]
        pre = [t.float().contiguous() for t in self.st.hoist(self.model, cond)]   # [B, Tc, R | 3R | F | F]
        h1, h2, x = state
        for t, name, shape in ((h1, "h1", (B, R)), (h2, "h2", (B, R)), (x, "x", (B,))):
            _check(t, name, shape, self.device)
        out = torch.empty(B, Tc, device=self.device, dtype=torch.float32)
        cls = torch.empty(B, Tc, device=self.device, dtype=torch.int64) if (cfg.mode == "RAW" and teacher is None) else None
        logits = torch.empty(B, Tc, cfg.n_classes, device=self.device, dtype=torch.float32) if teacher is not None else None
        if teacher is not None:
            _check(teacher, "teacher", (B, Tc), self.device)
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            noise = noise.reshape(B, Tc, self.consts["NZ"]).float().contiguous()
            _check(noise, "noise", (B, Tc, self.consts["NZ"]), self.device)
        if Tc == 0:
            return logits if teacher is not None else (out, cls)
        scr = torch.empty(B, 10 * R + 2 * Fd + cfg.n_classes, device=self.device, dtype=torch.float32)
        w = self.w
        wavernn_loop_kernel[(B,)](
            *pre, h1, h2, x, noise if noise is not None else out, teacher if teacher is not None else out, out,
            cls if cls is not None else out, logits if logits is not None else out, scr,
            w["w_ix"], w["w_ih1"], w["b_ih1"], w["w_hh1"], w["b_hh1"], w["w_ih2"], w["w_hh2"], w["b_hh2"],
            w["w_f1"], w["w_f2"], w["w_f3"], w["b_f3"],
            Tc, R, Fd, float(cfg.log_scale_min),
            TEACHER=teacher is not None, num_warps=self.num_warps, **self.consts)
        return logits if teacher is not None else (out, cls)


def wavernn_loop_ref(model, cond, noise=None, teacher=None):
    """The reference this op must reproduce: the eager step loop."""
    from ..models.wavernn.runtime import run_torch

    return run_torch(model, cond, noise=noise, teacher=teacher)
