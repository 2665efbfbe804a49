"""bf16 products on the CPU (csrc/cpu/bf16.h) and DiffWave's cpp loop with dtype bfloat16.

The product's rule is exact (bf16-rounded inputs, fp32 fma in a fixed order, subnormals
flushed), so the AVX512-BF16 kernel and the plain C++ emulation must agree bit for bit; the
DiffWave loop in bf16 is held to DESIGN.md's rule for reduced precision: its error against an
fp64 run no more than 2x that of the eager model run in torch at bf16."""
import copy

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import (WAVENET_PRECISION_VARIANTS, assert_emulation_gives_the_same, assert_error_within_twice,
                      wavenet_teacher_inputs)

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast import _cpp  # noqa: E402
from audiogen_fast.models.diffwave import runtime as rt  # noqa: E402
from audiogen_fast.models.diffwave.reference import Schedule  # noqa: E402

NATIVE = _cpp.cpu_features().get("avx512bf16", False)
AVX2 = _cpp.cpu_features()["avx2"] and _cpp.cpu_features()["fma"]
# the kernels held to the emulation bit for bit: AVX512-BF16 and AVX2 + FMA, where this CPU has them
KERNELS = [pytest.param("native", marks=pytest.mark.skipif(not NATIVE, reason="this CPU has no AVX512-BF16")),
           pytest.param("avx2", marks=pytest.mark.skipif(not AVX2, reason="this CPU has no AVX2 + FMA"))]
SHAPES = [(1, 1, 1), (5, 7, 3), (6, 64, 128), (7, 13, 37), (13, 80, 128), (48, 65, 64), (11, 3, 200), (2, 130, 17)]


def _bf16(a):
    return torch.from_numpy(np.ascontiguousarray(a)).bfloat16().double().numpy()


@pytest.mark.parametrize("rows,K,N", SHAPES)
def test_emulated_product_is_the_bf16_rule(rows, K, N):
    """Against float64 sums of the bf16-rounded inputs (torch's rounding, nearest even): within
    fp32 accumulation error, and not the fp32 product (the inputs really are rounded)."""
    rng = np.random.default_rng(rows * 1000 + K * 10 + N)
    x = rng.standard_normal((rows, K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    y0 = rng.standard_normal((rows, N)).astype(np.float32)
    scale = np.abs(_bf16(x)) @ np.abs(_bf16(w))
    for bias, y in ((b, None), (None, None), (None, y0)):
        got = _cpp.bf16_matmul(x, w, bias=bias, y=y, impl="emulated")
        base = b if bias is not None else (y0 if y is not None else 0.0)
        ref = _bf16(x) @ _bf16(w) + base
        bound = (K + 2) * 2.0 ** -24 * (scale + np.abs(base))
        print(rows, K, N, "max err", np.abs(got - ref).max())
        assert np.all(np.abs(got - ref) <= bound)
    if K >= 8:
        exact32 = x.astype(np.float64) @ w.astype(np.float64) + b
        assert np.abs(_cpp.bf16_matmul(x, w, bias=b, impl="emulated") - exact32).max() > 1e-4


@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("rows,K,N", SHAPES)
def test_kernel_equals_emulated_bit_for_bit(impl, rows, K, N):
    rng = np.random.default_rng(rows + K + N)
    x = rng.standard_normal((rows, K)).astype(np.float32)
    w = (rng.standard_normal((K, N)) * 0.3).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    y0 = rng.standard_normal((rows, N)).astype(np.float32)
    for kw in (dict(bias=b), dict(), dict(y=y0)):
        a = _cpp.bf16_matmul(x, w, impl=impl, **kw)
        e = _cpp.bf16_matmul(x, w, impl="emulated", **kw)
        assert a.tobytes() == e.tobytes(), kw


@pytest.mark.parametrize("impl", KERNELS)
def test_kernel_flushes_subnormals_like_the_emulation(impl):
    """Subnormal inputs, a subnormal starting accumulator, products and sums that land in the
    subnormal range: both flush them to signed zero."""
    tiny = np.float32(np.finfo(np.float32).tiny)
    x = np.array([[1e-39, -3e-39, 2.0 ** -70, -(2.0 ** -70)], [1.0, tiny, 2.0 ** -70, 1.5]], np.float32)
    w = np.array([[1.0, -1.0], [1.0, 2.0], [2.0 ** -70, 2.0 ** -70], [0.0, -1.0]], np.float32)
    for y0 in (np.array([[1e-39, -0.0], [1.5 * tiny, -1.5 * tiny]], np.float32), np.zeros((2, 2), np.float32)):
        a = _cpp.bf16_matmul(x, w, y=y0, impl=impl)
        e = _cpp.bf16_matmul(x, w, y=y0, impl="emulated")
        assert a.tobytes() == e.tobytes()
    # the same in wide rows (the kernels' vector paths: 16 floats rounded at a time, 4-row tiles,
    # partial column groups): values around 2^-63 whose products (~2^-126) and sums cross FLT_MIN,
    # subnormal entries, signed zeros, starting accumulators at +-FLT_MIN
    rng = np.random.default_rng(7)
    for rows, K, N in ((6, 40, 21), (5, 33, 16), (1, 16, 9)):
        x = (rng.standard_normal((rows, K)) * 2.0 ** -63).astype(np.float32)
        w = (rng.standard_normal((K, N)) * 2.0 ** -63).astype(np.float32)
        x[rng.random((rows, K)) < 0.2] = np.float32(3e-39)
        x[rng.random((rows, K)) < 0.1] = -0.0
        w[rng.random((K, N)) < 0.1] = np.float32(-5e-40)
        y0 = (rng.choice([-1.0, 1.0], (rows, N)) * tiny * rng.choice([0.5, 1.0, 1.5], (rows, N))).astype(np.float32)
        for kw in (dict(y=y0), dict(bias=y0[0]), dict()):
            a = _cpp.bf16_matmul(x, w, impl=impl, **kw)
            e = _cpp.bf16_matmul(x, w, impl="emulated", **kw)
            assert a.tobytes() == e.tobytes(), (rows, K, N, list(kw))
        assert np.count_nonzero(e) > 0 and np.count_nonzero(e == 0) > 0   # both sides of FLT_MIN


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="x is"):
        _cpp.bf16_matmul(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="bias"):
        _cpp.bf16_matmul(np.zeros((2, 3), np.float32), np.zeros((3, 5), np.float32), bias=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="impl"):
        _cpp.bf16_matmul(np.zeros((2, 3), np.float32), np.zeros((3, 5), np.float32), impl="fast")


def _case(name, B, frames, seed, **over):
    model = agf.build(name, seed=seed, **over).eval()
    cfg = model.config
    sch = Schedule.from_config(cfg, None)
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, cfg.n_mels, frames, generator=g) - 2 if cfg.conditional else None
    noise = torch.randn(len(sch), B, frames * cfg.hop_length, generator=g)
    return model, sch, mel, noise


def _errors(model, sch, noise, mel):
    """max-abs and rms errors against an fp64 run of the reference: (eager bf16, cpp bf16)."""
    ref = rt.run_torch(copy.deepcopy(model).double(), sch, noise.double(),
                       None if mel is None else mel.double()).double()
    tb = rt.run_torch(copy.deepcopy(model).bfloat16(), sch, noise, mel).double()
    cb = rt.run_cpp(model, sch, noise, mel, dtype="bfloat16").double()

    def e(a):
        return float((a - ref).abs().max()), float((a - ref).pow(2).mean().sqrt())
    return e(tb), e(cb), cb


@pytest.mark.parametrize("variant", [dict(), dict(residual_channels=13, residual_layers=5, dilation_cycle=5, n_mels=7),
                                     dict(conditional=False)])
@pytest.mark.parametrize("B,frames", [(1, 1), (2, 7)])
def test_diffwave_bf16_within_twice_eager_bf16(variant, B, frames):
    model, sch, mel, noise = _case("tiny-diffwave", B, frames, seed=frames, **variant)
    (t_max, t_rms), (c_max, c_rms), cb = _errors(model, sch, noise, mel)
    print("eager bf16 max %.2e rms %.2e | cpp bf16 max %.2e rms %.2e" % (t_max, t_rms, c_max, c_rms))
    assert c_max <= 2 * t_max and c_rms <= 2 * t_rms
    # and it is the bf16 path: not the fp32 loop's output
    c32 = rt.run_cpp(model, sch, noise, mel).double()
    assert float((cb - c32).abs().max()) > 1e-6


def test_diffwave_bf16_standard_size_and_threads():
    """D1's layer shapes (C=64: 8 panels, two 4-panel groups; 80 mels: K2 = 40) on a short
    signal; the audio does not depend on the thread count (every output row is one thread's)."""
    model, sch, mel, noise = _case("D1", 1, 5, seed=1)
    (t_max, t_rms), (c_max, c_rms), cb = _errors(model, sch, noise, mel)
    print("D1: eager bf16 max %.2e rms %.2e | cpp bf16 max %.2e rms %.2e" % (t_max, t_rms, c_max, c_rms))
    assert c_max <= 2 * t_max and c_rms <= 2 * t_rms
    for threads in (1, 3):
        other = rt.run_cpp(model, sch, noise, mel, dtype="bfloat16", threads=threads).double()
        assert torch.equal(other, cb)


def test_emulated_loop_gives_the_same_audio():
    """The loop with each bf16 product kernel this CPU has and with the emulation (in subprocesses:
    the choice is made once per process): the same audio bit for bit."""
    code = ("import torch, numpy as np, audiogen_fast as agf\n"
            "from audiogen_fast import _cpp\n"
            "from audiogen_fast.models.diffwave import runtime as rt\n"
            "from audiogen_fast.models.diffwave.reference import Schedule\n"
            "print(_cpp.bf16_kernel())\n"
            "m = agf.build('tiny-diffwave', seed=5, residual_channels=13, n_mels=7).eval()\n"
            "sch = Schedule.from_config(m.config)\n"
            "g = torch.Generator().manual_seed(0)\n"
            "mel = torch.randn(2, 7, 3, generator=g); noise = torch.randn(len(sch), 2, 3 * m.config.hop_length, generator=g)\n"
            "a = rt.run_cpp(m, sch, noise, mel, threads=2, dtype='bfloat16')\n"
            "print(a.numpy().tobytes().hex())\n")
    assert_emulation_gives_the_same(code, "avx512bf16", NATIVE)


def test_vocoder_bfloat16_on_cpu():
    model = agf.build("tiny-diffwave", seed=1)
    mel = np.random.default_rng(0).standard_normal((2, model.config.n_mels, 6)).astype(np.float32)
    voc = agf.Vocoder(model, backend="cpp", device="cpu", dtype="bfloat16")
    a = voc.generate(mel=mel, seed=[3, 4])
    f = agf.Vocoder(model, backend="cpp", device="cpu").generate(mel=mel, seed=[3, 4])
    assert a.shape == f.shape and np.isfinite(a).all()
    assert 0 < np.max(np.abs(a - f)) <= 0.05 * np.max(np.abs(f))
    # streaming runs the same product: with one window the stream is the one-shot audio
    chunk = mel[0]
    s = np.concatenate(list(voc.stream(iter([chunk]), seed=3)), -1)
    assert np.array_equal(s, a[0])
    with pytest.raises(agf.InputError, match="float32 or bfloat16"):
        agf.Vocoder(model, backend="cpp", device="cpu", dtype="float16")
    with pytest.raises(agf.InputError, match="bfloat16"):
        agf.Vocoder(model, backend="torch", device="cpu", dtype="bfloat16")


# ---- WaveRNN: the GRU and fc products in bf16 ----------------------------------------------------

def _wavernn_logits(model, B, T, seed):
    """Teacher-forced outputs: fp64 eager (the reference), eager bf16, cpp bf16 (2 threads)."""
    from audiogen_fast.models.wavernn import runtime as wrt

    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, cfg.n_mels, (T + cfg.hop_length - 1) // cfg.hop_length, generator=g)
    x = torch.rand(B, T, generator=g) * 2 - 1

    def cond_of(m, dt):
        with torch.inference_mode():
            return [c[:, :T].to(dt).contiguous() for c in m.conditioning(mel.to(dt))]
    m64, mb = copy.deepcopy(model).double(), copy.deepcopy(model).bfloat16()
    ref = wrt.run_torch(m64, cond_of(m64, torch.float64), teacher=x.double())[1].double()
    tb = wrt.run_torch(mb, cond_of(mb, torch.bfloat16), teacher=x)[1].double()
    c = cond_of(model, torch.float32)
    cb = wrt.run_cpp(model, c, teacher=x, bf16=True, threads=2)[1]
    c32 = wrt.run_cpp(model, c, teacher=x)[1]
    return ref, tb, cb, c32, (c, x)


@pytest.mark.parametrize("mode", ["RAW", "MOL"])
@pytest.mark.parametrize("B,T", [(1, 97), (7, 40)])
def test_wavernn_bf16_within_twice_eager_bf16(mode, B, T):
    from audiogen_fast.models.wavernn import runtime as wrt

    model = agf.build("tiny-wavernn", seed=B, rnn_dims=64, fc_dims=40, mode=mode).eval()
    ref, tb, cb, c32, (c, x) = _wavernn_logits(model, B, T, seed=B)
    assert_error_within_twice(ref, tb, cb, "bf16")
    assert float((cb - c32).abs().max()) > 0   # the bf16 path, not the fp32 one
    # every output column is one thread's: the same bits for any thread count
    for threads in (1, 3):
        assert torch.equal(wrt.run_cpp(model, c, teacher=x, bf16=True, threads=threads)[1], cb)


# ---- WaveNet: the dilated, residual / skip and output products in bf16 ---------------------------

@pytest.mark.parametrize("variant", list(WAVENET_PRECISION_VARIANTS))
@pytest.mark.parametrize("B,T", [(1, 150), (2, 60), (5, 40)])   # mat-vec, a stream per thread, lockstep
def test_wavenet_bf16_within_twice_eager_bf16(variant, B, T):
    from audiogen_fast.models.wavenet import runtime as wrt

    model = agf.build("tiny-wavenet", seed=B, **WAVENET_PRECISION_VARIANTS[variant]).eval()
    mel, x = wavenet_teacher_inputs(model, B, T, seed=B)
    ref = wrt.run_torch(copy.deepcopy(model).double(), T, mel=mel.double(), teacher=x)[1].double()
    tb = wrt.run_torch(copy.deepcopy(model).bfloat16(), T, mel=mel.bfloat16(), teacher=x)[1].double()
    cb = wrt.run_cpp(model, T, mel=mel, teacher=x, dtype="bfloat16", threads=2)[1]
    c32 = wrt.run_cpp(model, T, mel=mel, teacher=x, threads=2)[1]
    assert_error_within_twice(ref, tb, cb, "bf16")
    assert float((cb - c32).abs().max()) > 0


def test_wavenet_bf16_through_the_engine_stream_and_streams():
    model = agf.build("tiny-wavenet", seed=6)
    mel = np.random.default_rng(1).standard_normal((16, 12)).astype(np.float32)
    voc = agf.Vocoder(model, device="cpu", dtype="bfloat16")
    assert voc.backend == "cpp"
    a = voc.generate(mel=mel, seed=3)
    assert np.all(np.abs(a) <= 1)
    b = np.concatenate(list(voc.stream(iter([mel[:, :5], mel[:, 5:]]), seed=3)), -1)
    assert np.array_equal(a, b)
    # a batch: each row is that stream run alone (lockstep products give the same bits per row)
    ab = voc.generate(mel=np.stack([mel, mel[:, ::-1].copy(), mel]), seed=[3, 4, 5])
    assert np.array_equal(ab[0], a)
    assert np.array_equal(ab[1], voc.generate(mel=mel[:, ::-1].copy(), seed=4))
