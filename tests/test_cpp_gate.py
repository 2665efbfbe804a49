"""The C++ gate kernels (csrc/cpu/kernels_*.cpp) against float64: sigmoid(a) * tanh(b) for
DiffWave, tanh(a) * sigmoid(b) for WaveNet, each kernel set against the same reference."""
import numpy as np
import pytest

import audiogen_fast as agf

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast import _cpp  # noqa: E402

FEAT = _cpp.cpu_features()
IMPLS = ["portable"] + (["avx2"] if FEAT["avx2"] and FEAT["fma"] else [])


def _inputs():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(20011) * 3, rng.uniform(-100, 100, 2003),
                        [0.0, -0.0, 88.0, -88.0, 89.0, -89.0, 1e3, -1e3, 1e-30, -1e-30, 1e-3, -1e-3]]).astype(np.float32)
    return a, np.roll(a, 7)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["st", "ts"])
def test_gate_against_float64(kind, impl):
    a, b = _inputs()
    ad, bd = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(over="ignore"):
        ref = _sig(ad) * np.tanh(bd) if kind == "st" else np.tanh(ad) * _sig(bd)
    z = _cpp.gate(a, b, kind, impl)
    err = np.abs(z - ref)
    print(kind, impl, "max abs err %.2e" % err.max())
    assert np.isfinite(z).all() and err.max() <= 5e-7
    # the tanh factor is odd: flipping its argument flips the result exactly
    if kind == "st":
        assert np.array_equal(_cpp.gate(a, -b, kind, impl), -z)
    else:
        assert np.array_equal(_cpp.gate(-a, b, kind, impl), -z)
    # odd lengths take the scalar tail: the same function
    assert np.abs(_cpp.gate(a[:13], b[:13], kind, impl) - ref[:13]).max() <= 5e-7


def test_gate_arguments_are_checked():
    with pytest.raises(ValueError, match="kind"):
        _cpp.gate(np.zeros(3, np.float32), np.zeros(3, np.float32), "xx")
    with pytest.raises(ValueError, match="a is"):
        _cpp.gate(np.zeros(3, np.float32), np.zeros(4, np.float32))
