"""The C++ sampler and mu-law codec (csrc/cpu/sampling.h) against the eager reference."""
import numpy as np
import pytest
import torch

from audiogen_fast import _cpp
from audiogen_fast import noise as noise_mod
from audiogen_fast.sampling import mulaw_decode, mulaw_encode, sample_gaussian, sample_mol, sample_softmax


@pytest.mark.parametrize("classes", [256, 512, 1024, 2])
def test_mulaw_roundtrip_and_cpp_parity(classes, rng):
    x = np.concatenate([rng.uniform(-1, 1, 10007), [-1.0, 0.0, 1.0, -2.0, 2.0]]).astype(np.float32)
    k_ref = mulaw_encode(x, classes)
    k_cpp = _cpp.mulaw_encode(x, classes)
    assert k_ref.min() >= 0 and k_ref.max() <= classes - 1
    assert np.array_equal(k_ref, k_cpp)
    all_k = np.arange(classes)
    d_ref = mulaw_decode(all_k, classes)
    d_cpp = _cpp.mulaw_decode(all_k, classes)
    assert np.array_equal(d_ref, d_cpp)
    assert d_ref[0] == -1.0 and d_ref[-1] == 1.0 and np.all(np.diff(d_ref) > 0)
    # decode(encode(code value)) is the identity on the codebook
    assert np.array_equal(mulaw_encode(d_ref, classes), all_k)
    # quantisation error is bounded by half a code step in the companded domain
    if classes >= 256:
        err = np.abs(mulaw_decode(k_ref, classes) - np.clip(x, -1, 1))
        assert err.max() < 0.07


def test_mulaw_known_values():
    assert mulaw_encode(np.array([0.0], np.float32), 256)[0] == 128  # (0 + 1) / 2 * 255 + 0.5 -> 128
    assert abs(mulaw_decode(np.array([128]), 256)[0] - 0.0) < 2e-4


def test_softmax_sampler_matches_definition(rng):
    N, C = 4000, 37
    logits = torch.from_numpy(rng.standard_normal((N, C)).astype(np.float32) * 3)
    u = torch.from_numpy(rng.uniform(0, 1, N).astype(np.float32))
    k = sample_softmax(logits, u)
    # definition: smallest k with cumulative probability > u
    cdf = torch.cumsum(torch.softmax(logits.double(), -1), -1)
    k_def = (cdf <= u.double().unsqueeze(-1)).sum(-1)
    mism = (k != k_def).sum().item()
    assert mism <= 1  # only a u within ~1e-16 of a boundary could differ
    assert np.array_equal(_cpp.sample_softmax(logits.numpy(), u.numpy()), k.numpy())


@pytest.mark.parametrize("classes", [256, 512, 1100])
def test_fast_softmax_sampler_equals_the_double_rule(classes, rng):
    """The loops' fp32 fast path gives exactly the double-precision rule's class, including for
    uniforms placed on (fp32) cumulative-sum boundaries, where it must fall back."""
    N = 6000
    logits = (rng.standard_normal((N, classes)) * rng.uniform(0.5, 8, (N, 1))).astype(np.float32)
    logits[:50, ::3] = -np.inf                     # masked classes never sampled
    u = rng.uniform(0, 1, N).astype(np.float32)
    # every third row: u exactly at a cumulative boundary of the fp32 softmax
    p = np.exp(logits[::3] - logits[::3].max(1, keepdims=True))
    c = np.cumsum(p, 1) / p.sum(1, keepdims=True)
    pick = rng.integers(0, classes - 1, len(c))
    u[::3] = np.minimum(c[np.arange(len(c)), pick], np.float32(0.9999999)).astype(np.float32)
    exact = _cpp.sample_softmax(logits, u)
    fast = _cpp.sample_softmax(logits, u, fast=True)
    assert np.array_equal(fast, exact)
    assert np.all(logits[np.arange(N), fast] > -np.inf)


def test_max_of_is_the_chain_of_maxima(rng):
    """The loops' vectorised max (8 running maxima, sampling.h): the softmax shift and the int8
    hidden layer's quantisation range. Every length through two blocks and a tail, the maximum at
    every position, NaNs skipped as std::max's chain skips them, init as a floor."""
    def chain(x, init):
        m = init
        for v in x:
            m = v if m < v else m   # std::max(m, v)
        return np.float32(m)
    for n in range(0, 27):
        for pos in range(n):
            x = rng.standard_normal(n).astype(np.float32) - 5
            x[pos] = 3.5
            assert _cpp.max_of(x, -1e30) == 3.5, (n, pos)
        x = rng.standard_normal(n).astype(np.float32)
        assert _cpp.max_of(x, 0.0) == chain(x, np.float32(0.0)), n
        assert _cpp.max_of(x, 10.0) == 10.0
    x = rng.standard_normal(40).astype(np.float32)
    x[[3, 17, 38]] = np.nan
    assert _cpp.max_of(x, -1e30) == np.nanmax(x) == chain(x, np.float32(-1e30))


def test_softmax_sampler_edges():
    logits = torch.tensor([[0.0, -np.inf, 0.0, -np.inf], [5.0, 5.0, 5.0, 5.0], [-1e4, 0.0, -1e4, -1e4]],
                          dtype=torch.float32)
    for u, want in [(0.0, [0, 0, 1]), (0.49, [0, 1, 1]), (0.5, [2, 2, 1]), (0.9999999, [2, 3, 1])]:
        uu = torch.full((3,), u)
        assert sample_softmax(logits, uu).tolist() == want, u
        assert _cpp.sample_softmax(logits.numpy(), uu.numpy()).tolist() == want, u
        assert _cpp.sample_softmax(logits.numpy(), uu.numpy(), fast=True).tolist() == want, u


def test_softmax_sampler_distribution(rng):
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    p = torch.softmax(logits, -1)[0].numpy()
    u = torch.from_numpy(noise_mod.uniform(5, 200000))
    k = sample_softmax(logits.expand(len(u), -1), u).numpy()
    freq = np.bincount(k, minlength=4) / len(k)
    assert np.abs(freq - p).max() < 0.005


def test_mol_and_gaussian_cpp_parity(rng):
    N, M = 3000, 5
    params = rng.standard_normal((N, 3 * M)).astype(np.float32)
    params[:, 2 * M:] -= 3
    u = rng.uniform(0, 1, (N, 2)).astype(np.float32)
    u[:5, 1] = [0.0, 1e-9, 0.5, 1 - 1e-9, 0.9999999]
    ref = sample_mol(torch.from_numpy(params), torch.from_numpy(u), -7.0).numpy()
    assert np.array_equal(_cpp.sample_mol(params, u, -7.0), ref)
    assert ref.min() >= -1 and ref.max() <= 1
    gp = rng.standard_normal((N, 2)).astype(np.float32) * 0.3
    z = rng.standard_normal(N).astype(np.float32)
    g_ref = sample_gaussian(torch.from_numpy(gp), torch.from_numpy(z), -7.0).numpy()
    assert np.array_equal(_cpp.sample_gaussian(gp, z, -7.0), g_ref)
    # x = mean + exp(log_std) * z when not clipped
    direct = gp[:, 0].astype(np.float64) + np.exp(gp[:, 1].astype(np.float64)) * z
    inside = np.abs(direct) < 1
    assert np.allclose(g_ref[inside], direct[inside], rtol=1e-6, atol=1e-7)


def test_mol_picks_component_by_u1():
    # two components with tiny scales at -0.5 and +0.5, equal weights: u1 decides the side
    params = np.array([[0.0, 0.0, -0.5, 0.5, -20.0, -20.0]] * 2, np.float32)
    u = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)
    out = sample_mol(torch.from_numpy(params), torch.from_numpy(u), -30.0).numpy()
    assert np.allclose(out, [-0.5, 0.5], atol=1e-6)


def test_cpp_wrappers_reject_bad_shapes():
    with pytest.raises(ValueError):
        _cpp.sample_softmax(np.zeros((3, 4), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError):
        _cpp.sample_mol(np.zeros((3, 5), np.float32), np.zeros((3, 2), np.float32), -7.0)
    with pytest.raises(ValueError):
        _cpp.mulaw_decode(np.array([300]), 256)  # out of range class: the C++ side checks
