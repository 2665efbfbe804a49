"""int8 products on the CPU (csrc/cpu/int8.h) and the WaveRNN and WaveNet cpp loops with dtype int8.

The product's rule is exact (weights quantised per column, each input row to uint8 with its own
scale and zero point, integer sums, one fp32 fma per output), so the AVX512-VNNI kernel and the
plain C++ emulation must agree bit for bit, and both must equal the rule written here in numpy.
The loops in int8 are held to DESIGN.md's rule for reduced precision: their error against an
fp64 run no more than 2x that of the same model run in torch at int8 (torch's dynamic
quantisation, per-channel weights, of the WaveRNN's GRUs and fc layers, and of the WaveNet's
products written as nn.Linear)."""
import copy
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import (WAVENET_PRECISION_VARIANTS, assert_emulation_gives_the_same, assert_error_within_twice,
                      run_python, wavenet_teacher_inputs)

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast import _cpp  # noqa: E402

NATIVE = _cpp.cpu_features().get("avx512vnni", False)
AVX2 = _cpp.cpu_features()["avx2"] and _cpp.cpu_features()["fma"]
NEON = _cpp.cpu_features().get("asimddp", False)
# the int8 kernel below AVX-512 on this CPU (what AGF_CPU_KERNELS=avx2 leaves)
SIMD = "avx2" if AVX2 else "neon-dotprod" if NEON else "emulated"
# the kernels held to the emulation bit for bit: AVX512-VNNI, AVX2 + FMA and aarch64 DotProd
# (tools/aarch64_check.sh runs them under qemu), where this CPU has them
KERNELS = [pytest.param("native", marks=pytest.mark.skipif(not NATIVE, reason="this CPU has no AVX512-VNNI")),
           pytest.param("avx2", marks=pytest.mark.skipif(not AVX2, reason="this CPU has no AVX2 + FMA")),
           pytest.param("neon", marks=pytest.mark.skipif(not NEON, reason="this CPU has no aarch64 dot products"))]
SHAPES = [(1, 1, 1), (5, 7, 3), (6, 64, 128), (7, 13, 37), (13, 80, 128), (1, 512, 100), (11, 3, 200), (2, 130, 17),
          (4, 24, 8), (3, 17, 9)]
F32 = np.float32


def _round_f32(x: Fraction) -> np.float32:
    """x rounded once to the nearest float32 (ties to even)."""
    f = np.float32(float(x))
    best = f
    for g in (np.nextafter(f, F32(-np.inf)), np.nextafter(f, F32(np.inf))):
        d, db = abs(Fraction(float(g)) - x), abs(Fraction(float(best)) - x)
        if d < db or (d == db and (int(g.view(np.uint32)) & 1) == 0):
            best = g
    return best


def rule_quantize(x):
    """int8.h's activation rule in numpy float32 arithmetic: -> (u, s, zp) per row."""
    rows, K = x.shape
    u, s, zp = np.zeros((rows, K), np.uint8), np.zeros(rows, F32), np.zeros(rows, np.int32)
    for r in range(rows):
        lo, hi = min(F32(0), x[r].min()), max(F32(0), x[r].max())
        sv = F32(F32(hi - lo) / F32(255))
        if not sv >= np.finfo(F32).tiny:
            continue
        inv = F32(F32(1) / sv)
        z = int(np.clip(np.rint(F32(-lo * inv)), 0, 255))
        s[r], zp[r] = sv, z
        u[r] = np.clip(np.rint((x[r] * inv).astype(F32)).astype(np.int64) + z, 0, 255)
    return u, s, zp


def rule_weights(w):
    """-> (q int8 [K, N], sw [N]) per column."""
    sw = (np.abs(w).max(axis=0) / F32(127)).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(sw > 0, np.clip(np.rint((w / sw).astype(F32)), -127, 127), 0).astype(np.int64)
    return q, sw


def rule_matmul(x, w, base):
    u, s, zp = rule_quantize(x)
    q, sw = rule_weights(w)
    acc = u.astype(np.int64) @ q - zp[:, None].astype(np.int64) * q.sum(0)[None, :]
    out = np.zeros(acc.shape, F32)
    for r in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            sc = F32(s[r] * sw[c])
            out[r, c] = _round_f32(Fraction(float(F32(acc[r, c]))) * Fraction(float(sc)) + Fraction(float(base[r, c])))
    return out


def _inputs(rows, K, N, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, K)).astype(F32)
    if rows > 2:
        x[1] = np.abs(x[1])          # one-signed (ReLU outputs): zero point 0
        x[2] = -np.abs(x[2])         # zero point 255
    w = (rng.standard_normal((K, N)) * 0.2).astype(F32)
    if N > 2:
        w[:, 1] = 0.0                # an all-zero column
    return x, w, rng.standard_normal(N).astype(F32), rng.standard_normal((rows, N)).astype(F32)


@pytest.mark.parametrize("rows,K,N", SHAPES)
def test_emulated_product_is_the_int8_rule(rows, K, N):
    """The emulation against int8.h's rule computed here (numpy quantisation, exact integer sums,
    the final fma rounded once): equal bit for bit; and not the fp32 product."""
    x, w, b, y0 = _inputs(rows, K, N, rows * 1000 + K * 10 + N)
    u, s, zp = _cpp.int8_quantize(x, impl="emulated")
    ur, sr, zr = rule_quantize(x)
    assert np.array_equal(u, ur) and s.tobytes() == sr.tobytes() and np.array_equal(zp, zr)
    for bias, y, base in ((b, None, np.broadcast_to(b, (rows, N))), (None, None, np.zeros((rows, N), F32)),
                          (None, y0, y0)):
        got = _cpp.int8_matmul(x, w, bias=bias, y=y, impl="emulated")
        ref = rule_matmul(x, w, base)
        print(rows, K, N, "max |got - rule|", np.abs(got - ref).max())
        assert got.tobytes() == ref.tobytes()
    if K >= 8:
        exact = x.astype(np.float64) @ w + b
        err = np.abs(_cpp.int8_matmul(x, w, bias=b, impl="emulated") - exact).max()
        assert 1e-4 < err < 0.05 * np.abs(exact - b).max()   # quantised, but close


@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("rows,K,N", SHAPES)
def test_kernel_equals_emulated_bit_for_bit(impl, rows, K, N):
    x, w, b, y0 = _inputs(rows, K, N, rows + K + N)
    for a, e in zip(_cpp.int8_quantize(x, impl=impl), _cpp.int8_quantize(x, impl="emulated")):
        assert a.tobytes() == e.tobytes()
    for kw in (dict(bias=b), dict(), dict(y=y0)):
        a = _cpp.int8_matmul(x, w, impl=impl, **kw)
        e = _cpp.int8_matmul(x, w, impl="emulated", **kw)
        assert a.tobytes() == e.tobytes(), kw


def _zero_quads(w, density, seed):
    """w with all but ~density of its 16-column x 4-input blocks (the int8 products' quad rows) zeroed."""
    K, N = w.shape
    keep = np.random.default_rng(seed).random((-(-K // 4), -(-N // 16))) < density
    return (w * np.repeat(np.repeat(keep, 4, 0), 16, 1)[:K, :N]).astype(F32)


SPARSE_KERNELS = ["emulated", pytest.param("avx2", marks=pytest.mark.skipif(not AVX2, reason="no AVX2 + FMA")), "auto"]


@pytest.mark.parametrize("impl", SPARSE_KERNELS)
@pytest.mark.parametrize("rows,K,N", SHAPES + [(1, 512, 768), (2, 512, 1536)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_block_sparse_product_equals_the_dense_one_bit_for_bit(impl, rows, K, N, density):
    """W held as its nonzero 16 x 4 blocks (int8.h): the kept quads' integer sums are the dense
    ones (the skipped quads add exact zeros), so the same bits as the dense emulation; a kernel that
    dropped or misplaced a block, or read the wrong input quad, would differ."""
    x, w, b, y0 = _inputs(rows, K, N, rows + 3 * K + N)
    w = _zero_quads(w, density, K + N)
    for kw in (dict(bias=b), dict(), dict(y=y0)):
        a = _cpp.int8_matmul(x, w, impl=impl, sparse=True, **kw)
        e = _cpp.int8_matmul(x, w, impl="emulated", **kw)
        assert a.tobytes() == e.tobytes(), kw


def test_sparse_product_kernels():
    """The sparse int8 product runs on AVX2 (the loops' kernel on AVX2 and AVX512-VNNI CPUs); where
    there is none it is the emulation, and the WaveRNN loop keeps int8 weights dense."""
    assert _cpp.int8_sparse_kernel() == ("avx2" if AVX2 else "emulated")
    code = "from audiogen_fast import _cpp; print(_cpp.int8_sparse_kernel())"
    assert run_python(code, products="emulated") == ["emulated"]
    with pytest.raises(ValueError, match="sparse product's impl"):
        _cpp.int8_matmul(np.zeros((1, 4), F32), np.ones((4, 16), F32), impl="native", sparse=True)


@pytest.mark.parametrize("impl", ["emulated"] + KERNELS)
def test_degenerate_rows(impl):
    """An all-zero row, a range below FLT_MIN (quantised to zeros: the product adds nothing), a
    constant row, one huge value among small ones: finite, and as the rule says."""
    tiny = np.finfo(F32).tiny
    x = np.array([[0, 0, 0, 0, 0], [tiny * 10, -tiny, 0, tiny, 0], [0.5] * 5, [1e30, 1e-3, -1e-3, 2, 0]], F32)
    w = np.random.default_rng(0).standard_normal((5, 19)).astype(F32)
    y0 = np.random.default_rng(1).standard_normal((4, 19)).astype(F32)
    u, s, zp = _cpp.int8_quantize(x, impl=impl)
    ur, sr, zr = rule_quantize(x)
    assert np.array_equal(u, ur) and s.tobytes() == sr.tobytes() and np.array_equal(zp, zr)
    assert s[0] == 0 and s[1] == 0 and not u[:2].any()
    got = _cpp.int8_matmul(x, w, y=y0, impl=impl)
    assert np.isfinite(got).all()
    assert np.array_equal(got[:2], y0[:2])
    assert got.tobytes() == rule_matmul(x, w, y0).tobytes()


def test_environment_caps_the_product_kernels():
    """AGF_CPU_KERNELS caps the fp32 kernels and the bf16 / int8 products at its instruction set,
    AGF_CPU_PRODUCTS the products alone (the best this CPU has, never more)."""
    code = "from audiogen_fast import _cpp; print(_cpp.kernels_name(), _cpp.bf16_kernel(), _cpp.int8_kernel())"
    f = _cpp.cpu_features()
    avx2 = "avx2" if AVX2 else "emulated"
    fp32 = "avx2" if AVX2 else "portable"
    best = ["avx512bf16" if f["avx512bf16"] else avx2, "avx512vnni" if NATIVE else SIMD]
    assert run_python(code) == [fp32] + best
    assert run_python(code, kernels="avx2") == [fp32, avx2, SIMD]
    assert run_python(code, kernels="portable") == ["portable", "emulated", "emulated"]
    assert run_python(code, products="avx2") == [fp32, avx2, SIMD]
    assert run_python(code, products="emulated") == [fp32, "emulated", "emulated"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="x is"):
        _cpp.int8_matmul(np.zeros((2, 3), F32), np.zeros((4, 5), F32))
    with pytest.raises(ValueError, match="impl"):
        _cpp.int8_matmul(np.zeros((2, 3), F32), np.zeros((3, 5), F32), impl="fast")
    with pytest.raises(ValueError, match="K .* 66000"):   # its int32 sums would overflow
        _cpp.int8_matmul(np.zeros((1, 66001), F32), np.zeros((66001, 2), F32))


# ---- WaveRNN: the GRU and fc products in int8 -------------------------------------------------

def _torch_int8(model):
    """The model with torch's dynamic int8 quantisation of the GRUs and fc layers (per-channel
    weights, like ours; the input projection I stays fp32, as in our loop)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            spec = {n: per_channel_dynamic_qconfig for n in ("rnn1", "rnn2", "fc1", "fc2", "fc3")}
            return quantize_dynamic(copy.deepcopy(model), spec)
    except (ImportError, AttributeError, RuntimeError) as e:   # removed from a later torch
        pytest.skip(f"torch's dynamic int8 quantisation is unavailable: {e}")


@pytest.mark.parametrize("preset,mode,B,T,over", [
    ("tiny-wavernn", "RAW", 1, 97, dict(rnn_dims=64, fc_dims=40)),
    ("tiny-wavernn", "MOL", 7, 40, dict(rnn_dims=64, fc_dims=40)),
    ("tiny-wavernn", "RAW", 3, 50, dict(rnn_dims=37, fc_dims=29)),   # odd sizes: partial panels and quads
    ("R2", "RAW", 2, 120, dict()),
])
def test_wavernn_int8_within_twice_torch_int8(preset, mode, B, T, over):
    from audiogen_fast.models.wavernn import runtime as wrt

    model = agf.build(preset, seed=B, mode=mode, **over).eval()
    cfg = model.config
    g = torch.Generator().manual_seed(B)
    mel = torch.randn(B, cfg.n_mels, (T + cfg.hop_length - 1) // cfg.hop_length, generator=g)
    x = torch.rand(B, T, generator=g) * 2 - 1
    tq_model = _torch_int8(model)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = copy.deepcopy(model).double()(x.double(), mel.double())
        try:
            tq = tq_model(x, mel).double()
        except RuntimeError as e:   # e.g. no quantized engine for this CPU in this torch build
            pytest.skip(f"torch's dynamic int8 quantisation does not run here: {e}")
        c = [t[:, :T].contiguous() for t in model.conditioning(mel)]
    ci = wrt.run_cpp(model, c, teacher=x, int8=True, threads=2)[1]
    c32 = wrt.run_cpp(model, c, teacher=x, threads=2)[1]
    assert float((c32.double() - ref).abs().max()) < 1e-4   # the fp64 reference is the function
    assert_error_within_twice(ref, tq, ci, "int8")
    assert float((ci - c32).abs().max()) > 1e-5   # the int8 path, not the fp32 one
    # every output column is one thread's, and each thread quantises whole rows: any thread count
    for threads in (1, 3):
        assert torch.equal(wrt.run_cpp(model, c, teacher=x, int8=True, threads=threads)[1], ci)


def test_emulated_wavernn_loop_gives_the_same_audio():
    """The loop with each int8 product kernel this CPU has and with the emulation (in subprocesses:
    the choice is made once per process): the same sampled audio bit for bit."""
    code = ("import numpy as np, audiogen_fast as agf\n"
            "from audiogen_fast import _cpp\n"
            "print(_cpp.int8_kernel())\n"
            "m = agf.build('tiny-wavernn', seed=5, rnn_dims=48, fc_dims=40)\n"
            "mel = np.random.default_rng(0).standard_normal((2, m.config.n_mels, 6)).astype(np.float32)\n"
            "a = agf.Vocoder(m, backend='cpp', device='cpu', dtype='int8').generate(mel=mel, seed=[1, 2])\n"
            "print(a.tobytes().hex())\n")
    assert_emulation_gives_the_same(code, "avx512vnni", NATIVE, SIMD)


def test_int8_is_a_cpp_option_of_the_autoregressive_families():
    mel = np.random.default_rng(0).standard_normal((2, 80, 4)).astype(np.float32)
    for m in (agf.build("tiny-wavernn", seed=1), agf.build("tiny-wavenet", seed=1)):
        mm = mel[:, : m.config.n_mels]
        a = agf.Vocoder(m, backend="cpp", device="cpu", dtype="int8").generate(mel=mm, seed=[3, 4])
        f = agf.Vocoder(m, backend="cpp", device="cpu").generate(mel=mm, seed=[3, 4])
        assert a.shape == f.shape and np.isfinite(a).all()
        with pytest.raises(agf.InputError, match="float32 or float16 or bfloat16 or int8"):
            agf.Vocoder(m, backend="torch", device="cpu", dtype="int8")
    with pytest.raises(agf.InputError, match="int8"):
        agf.Vocoder(agf.build("tiny-diffwave", seed=1), backend="cpp", device="cpu", dtype="int8")


# ---- WaveNet: the dilated, residual / skip and output products in int8 ----------------------

class _LinearWaveNet(torch.nn.Module):
    """The teacher-forced WaveNet with its four products as nn.Linear modules (the dilated conv over
    its taps side by side, residual | skip, the output stack's two 1x1s), so that torch's dynamic
    int8 quantisation can take exactly the products our loop runs in int8; the input embedding and
    the conditioning projection stay fp32 in both."""

    def __init__(self, model):
        super().__init__()
        import torch.nn as nn

        cfg = model.config
        self.model, K, R, G = model, cfg.kernel_size, cfg.residual_channels, cfg.gate_channels

        def lin(w, b):
            m = nn.Linear(w.shape[1], w.shape[0])
            m.weight.data.copy_(w)
            m.bias.data.copy_(b)
            return m
        # tap k of a layer is x[t - (K - 1 - k) d]: Conv1d weight [G, R, K] -> Linear [G, K * R]
        self.gate = nn.ModuleList(lin(lay.conv.weight.data.permute(0, 2, 1).reshape(G, K * R), lay.conv.bias.data)
                                  for lay in model.conv_layers)
        self.os = nn.ModuleList(lin(torch.cat([lay.conv1x1_out.weight.data[:, :, 0], lay.conv1x1_skip.weight.data[:, :, 0]]),
                                    torch.cat([lay.conv1x1_out.bias.data, lay.conv1x1_skip.bias.data]))
                                for lay in model.conv_layers)
        self.l1 = lin(model.last_conv1.weight.data[:, :, 0], model.last_conv1.bias.data)
        self.l2 = lin(model.last_conv2.weight.data[:, :, 0], model.last_conv2.bias.data)
        self.K, self.R = K, R

    def forward(self, x, mel):   # -> [B, T, OUT]
        import math

        import torch.nn.functional as F

        m, K, R, T = self.model, self.K, self.R, x.shape[1]
        c = m.upsample(mel)[:, :, :T]
        h = m.first_conv(m.embed_input(x))
        skips = 0.0
        for lay, gate, os_ in zip(m.conv_layers, self.gate, self.os):
            d = lay.dilation
            hp = F.pad(h, ((K - 1) * d, 0))
            taps = torch.cat([hp[:, :, k * d: k * d + T] for k in range(K)], 1)
            a = gate(taps.transpose(1, 2)).transpose(1, 2) + lay.conv1x1c(c)
            ta, sa = a.chunk(2, 1)
            o = os_((torch.tanh(ta) * torch.sigmoid(sa)).transpose(1, 2)).transpose(1, 2)
            h = (h + o[:, :R]) * math.sqrt(0.5)
            skips = skips + o[:, R:]
        y = F.relu(skips * math.sqrt(1.0 / len(m.conv_layers))).transpose(1, 2)
        return self.l2(F.relu(self.l1(y)))


def _torch_int8_wavenet(model):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            lin = _LinearWaveNet(copy.deepcopy(model))
            return lin, quantize_dynamic(copy.deepcopy(lin), {torch.nn.Linear: per_channel_dynamic_qconfig})
    except (ImportError, AttributeError, RuntimeError) as e:   # removed from a later torch
        pytest.skip(f"torch's dynamic int8 quantisation is unavailable: {e}")


@pytest.mark.parametrize("variant", list(WAVENET_PRECISION_VARIANTS))
@pytest.mark.parametrize("B,T", [(1, 150), (2, 60), (5, 40)])   # mat-vec, a stream per thread, lockstep
def test_wavenet_int8_within_twice_torch_int8(variant, B, T):
    from audiogen_fast.models.wavenet import runtime as wrt

    model = agf.build("tiny-wavenet", seed=B, **WAVENET_PRECISION_VARIANTS[variant]).eval()
    mel, x = wavenet_teacher_inputs(model, B, T, seed=B)
    xm = x.long() if model.config.output == "mulaw" else x   # the model's own input form
    lin, tq_model = _torch_int8_wavenet(model)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = copy.deepcopy(model).double()(xm if xm.dtype == torch.long else xm.double(), mel.double()).transpose(1, 2)
        lin64 = copy.deepcopy(lin).double()(xm if xm.dtype == torch.long else xm.double(), mel.double())
        assert float((lin64 - ref).abs().max()) < 1e-10   # the Linear form is the same function
        try:
            tq = tq_model(xm, mel).double()
        except RuntimeError as e:   # e.g. no quantized engine for this CPU in this torch build
            pytest.skip(f"torch's dynamic int8 quantisation does not run here: {e}")
    ci = wrt.run_cpp(model, T, mel=mel, teacher=x, dtype="int8", threads=2)[1]
    c32 = wrt.run_cpp(model, T, mel=mel, teacher=x, threads=2)[1]
    assert float((c32.double() - ref).abs().max()) < 1e-4   # the fp64 reference is the function
    assert_error_within_twice(ref, tq, ci, "int8")
    assert float((ci - c32).abs().max()) > 1e-5   # the int8 path, not the fp32 one
    # the gate outputs and hidden units are split over threads, but quantised on ranges that do
    # not depend on the split: other thread counts differ only by fp32 rounding of the partials
    for threads in (1, 3):
        other = wrt.run_cpp(model, T, mel=mel, teacher=x, dtype="int8", threads=threads)[1]
        assert float((other - ci).abs().max()) <= 1e-5 * float(ci.abs().max())


def test_emulated_wavenet_loop_gives_the_same_audio():
    code = ("import numpy as np, audiogen_fast as agf\n"
            "from audiogen_fast import _cpp\n"
            "print(_cpp.int8_kernel())\n"
            "m = agf.build('tiny-wavenet', seed=5, kernel_size=3, residual_channels=24, gate_channels=48)\n"
            "mel = np.random.default_rng(0).standard_normal((3, m.config.n_mels, 6)).astype(np.float32)\n"
            "a = agf.Vocoder(m, backend='cpp', device='cpu', dtype='int8').generate(mel=mel, seed=[1, 2, 3])\n"
            "print(a.tobytes().hex())\n")
    assert_emulation_gives_the_same(code, "avx512vnni", NATIVE, SIMD)


def test_emulated_products_warn_once():
    """Asking for bf16 / int8 products where they run as the plain emulation (here forced by
    AGF_CPU_PRODUCTS=emulated) warns, once per dtype, naming the dtype; a SIMD kernel does not."""
    code = ("import warnings, audiogen_fast as agf\n"
            "m = agf.build('tiny-wavernn', seed=0)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    for dt in ('int8', 'int8', 'bfloat16', 'float16', 'float32'):\n"
            "        agf.Vocoder(m, backend='cpp', device='cpu', dtype=dt)\n"
            "print(len(w), ' '.join(str(x.message).split(':')[0].replace(' ', '_') for x in w))\n")
    assert run_python(code, products="emulated") == ["2", "dtype_int8", "dtype_bfloat16"]
    expected = [d for d in ("int8", "bfloat16") if (_cpp.int8_kernel() if d == "int8" else _cpp.bf16_kernel()) == "emulated"]
    assert run_python(code) == [str(len(expected))] + [f"dtype_{d}" for d in expected]
