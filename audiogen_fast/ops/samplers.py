"""Triton device functions shared by the autoregressive loop kernels: the samplers of
audiogen_fast/sampling.py (their reference), in fp32, on a logits row held in registers.

    inverse_cdf(logits, mask, u)        -> k: smallest class with CDF_k > u over the masked entries
    mol_sample(logits, rO, N_MIX, ...)  -> x: mixture-of-logistics sample from (logit_probs | means |
                                           log_scales) with uniforms u1 (component), u2 (value)
    gaussian_sample(logits, rO, z, ...) -> x: mean + exp(log_std) z from (mean | log_std), z standard normal
    inverse_cdf_rows / mol_sample_rows / gaussian_sample_rows
                                         the same for each row of a [BM, C] tile (BM streams)
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


@triton.jit
def gaussian_sample(logits, rO, z, log_scale_min):
    mean = tl.sum(tl.where(rO == 0, logits, 0.0), 0)
    ls = tl.maximum(tl.sum(tl.where(rO == 1, logits, 0.0), 0), log_scale_min)
    return tl.minimum(tl.maximum(mean + tl.exp(ls) * z, -1.0), 1.0)


@triton.jit
def inverse_cdf_rows(logits, mask, u, N: tl.constexpr):
    """inverse_cdf for each row of logits [BM, C] (mask [C], u [BM]) -> [BM] classes."""
    lg = tl.where(mask[None, :], logits, float("-inf"))
    e = tl.where(mask[None, :], tl.exp(lg - tl.max(lg, 1)[:, None]), 0.0)
    cdf = tl.cumsum(e, 1)
    target = u[:, None] * tl.sum(e, 1)[:, None]
    return tl.minimum(tl.sum(tl.where((cdf <= target) & mask[None, :], 1, 0), 1), N - 1)


@triton.jit
def mol_sample_rows(logits, rO, u1, u2, log_scale_min, N_MIX: tl.constexpr):
    """mol_sample for each row of logits [BM, C] (rO [C], u1 / u2 [BM]) -> [BM] samples."""
    k = inverse_cdf_rows(logits, rO < N_MIX, u1, N_MIX)
    mean = tl.sum(tl.where(rO[None, :] == N_MIX + k[:, None], logits, 0.0), 1)
    ls = tl.maximum(tl.sum(tl.where(rO[None, :] == 2 * N_MIX + k[:, None], logits, 0.0), 1), log_scale_min)
    u2 = tl.minimum(tl.maximum(u2, 1e-5), 1.0 - 1e-5)
    x = mean + tl.exp(ls) * (tl.log(u2) - tl.log(1.0 - u2))
    return tl.minimum(tl.maximum(x, -1.0), 1.0)


@triton.jit
def gaussian_sample_rows(logits, rO, z, log_scale_min):
    """gaussian_sample for each row of logits [BM, C] (rO [C], z [BM]) -> [BM] samples."""
    mean = tl.sum(tl.where(rO[None, :] == 0, logits, 0.0), 1)
    ls = tl.maximum(tl.sum(tl.where(rO[None, :] == 1, logits, 0.0), 1), log_scale_min)
    return tl.minimum(tl.maximum(mean + tl.exp(ls) * z, -1.0), 1.0)
