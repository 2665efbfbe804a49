"""The fp32 products of the C++ kernel sets (csrc/cpu/kernels.h: gemm_packed, gemm_packed_set,
gemm_panels, gemm_panels_h) alone, each set against float64: the portable set (the only one on
aarch64, and AGF_CPU_KERNELS=portable) and the AVX2 one where this CPU runs it. Shapes cover
every register tile and remainder: 1-7 rows, partial panels, K = 1."""
import numpy as np
import pytest

import audiogen_fast as agf

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast import _cpp  # noqa: E402

FEAT = _cpp.cpu_features()
IMPLS = ["portable"] + (["avx2"] if FEAT["avx2"] and FEAT["fma"] else [])
SHAPES = [(1, 1, 1), (1, 64, 64), (1, 129, 130), (2, 7, 16), (3, 64, 17), (4, 33, 64), (5, 3, 70), (6, 80, 128),
          (7, 65, 33), (1, 512, 192), (9, 16, 5)]
U = 2.0 ** -24   # fp32 unit roundoff


def _check(out, ref, scale, K):
    """A sum of K products in fp32, one rounding per multiply-add, is within (K + 2) u of the
    sum of magnitudes (the standard bound for recursive summation): a wrong column, row or
    panel gives an error of the size of the values themselves."""
    bound = (K + 2) * U * scale * 1.01 + 1e-30
    err = np.abs(out.astype(np.float64) - ref)
    print(f"max err {err.max():.3g}, max err / bound {np.max(err / bound):.3g}")
    assert np.all(err <= bound)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rows,K,N", SHAPES)
@pytest.mark.parametrize("kind", ["packed", "packed_set", "panels", "panels_h"])
def test_product_against_float64(kind, rows, K, N, impl):
    rng = np.random.default_rng(rows * 1000 + K * 10 + N)
    x = rng.standard_normal((rows, K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    y0 = rng.standard_normal((rows, N)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    wd = (w.astype(np.float16) if kind == "panels_h" else w).astype(np.float64)   # half: IEEE rounding
    x64 = x.astype(np.float64)
    if kind == "packed_set":
        out = _cpp.fp32_matmul(x, w, kind, bias=bias, impl=impl)
        _check(out, bias + x64 @ wd, np.abs(bias) + np.abs(x64) @ np.abs(wd), K)
        out = _cpp.fp32_matmul(x, w, kind, impl=impl)   # no bias: zeros
        _check(out, x64 @ wd, np.abs(x64) @ np.abs(wd), K)
    else:
        out = _cpp.fp32_matmul(x, w, kind, y=y0, impl=impl)
        _check(out, y0 + x64 @ wd, np.abs(y0) + np.abs(x64) @ np.abs(wd), K)


def test_arguments_are_checked():
    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="kind is packed"):
        _cpp.fp32_matmul(x, w, "dense")
    with pytest.raises(ValueError, match="impl is auto, avx2 or portable"):
        _cpp.fp32_matmul(x, w, "packed", impl="neon")
    with pytest.raises(ValueError, match="fp32_matmul: x is"):
        _cpp.fp32_matmul(x, np.ones((4, 4), np.float32), "packed")
