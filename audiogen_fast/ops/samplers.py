"""Triton device functions shared by the autoregressive loop kernels: the samplers of
audiogen_fast/sampling.py (their reference), in fp32, on a logits row held in registers.

    inverse_cdf(logits, mask, u)        -> k: smallest class with CDF_k > u over the masked entries
    mol_sample(logits, rO, N_MIX, ...)  -> x: mixture-of-logistics sample from (logit_probs | means |
                                           log_scales) with uniforms u1 (component), u2 (value)
"""
import triton
import triton.language as tl


@triton.jit
def inverse_cdf(logits, mask, u, N: tl.constexpr):
    lg = tl.where(mask, logits, float("-inf"))
    e = tl.where(mask, tl.exp(lg - tl.max(lg, 0)), 0.0)
    cdf = tl.cumsum(e, 0)
    target = u * tl.sum(e, 0)
    return tl.minimum(tl.sum(tl.where((cdf <= target) & mask, 1, 0), 0), N - 1)


@triton.jit
def mol_sample(logits, rO, u1, u2, log_scale_min, N_MIX: tl.constexpr):
    k = inverse_cdf(logits, rO < N_MIX, u1, N_MIX)
    mean = tl.sum(tl.where(rO == N_MIX + k, logits, 0.0), 0)
    ls = tl.maximum(tl.sum(tl.where(rO == 2 * N_MIX + k, logits, 0.0), 0), log_scale_min)
    u2 = tl.minimum(tl.maximum(u2, 1e-5), 1.0 - 1e-5)
    x = mean + tl.exp(ls) * (tl.log(u2) - tl.log(1.0 - u2))
    return tl.minimum(tl.maximum(x, -1.0), 1.0)
