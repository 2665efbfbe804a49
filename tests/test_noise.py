import numpy as np
import pytest

from audiogen_fast import noise


def test_uniform_properties():
    u = noise.uniform(123, 100000)
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert np.array_equal(u, noise.uniform(123, 100000))
    assert not np.array_equal(u[:100], noise.uniform(124, 100))
    assert not np.array_equal(u[:100], noise.uniform(123, 100, stream=1))


def test_counter_based_slices_equal_one_shot():
    full = noise.uniform(7, 1000)
    assert np.array_equal(np.concatenate([noise.uniform(7, 300), noise.uniform(7, 700, offset=300)]), full)
    zf = noise.normal(7, 1000)
    assert np.array_equal(np.concatenate([noise.normal(7, 1), noise.normal(7, 999, offset=1)]), zf)


def test_normal_properties():
    z = noise.normal(5, 200000)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.all(np.isfinite(z))
    # tails: about 4.55% beyond 2 sigma
    assert abs((np.abs(z) > 2).mean() - 0.0455) < 0.003


def test_layouts():
    assert noise.ar_noise(1, 10, "softmax").shape == (10,)
    m = noise.ar_noise(1, 10, "mol")
    assert m.shape == (10, 2) and np.array_equal(m[:, 0], noise.ar_noise(1, 10, "softmax"))
    d = noise.diffusion_noise(1, 4, 10)
    assert d.shape == (4, 10) and not np.array_equal(d[0], d[1])
    # large and negative seeds are fine and distinct
    assert not np.array_equal(noise.uniform(-1, 5), noise.uniform(2 ** 64 - 2, 5))
    assert np.array_equal(noise.uniform(-1, 5), noise.uniform(2 ** 64 - 1, 5))   # two's complement
    for bad in (2 ** 64, -2 ** 63 - 1, 2 ** 64 + 5):                             # would wrap: refused
        with pytest.raises(ValueError, match="64-bit"):
            noise.uniform(bad, 5)
