"""The C++ DiffWave denoise loop (csrc/cpu/diffwave.cpp, backend "cpp") against the eager reference."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import rel_err

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast._cpp import DiffWaveCPU  # noqa: E402
from audiogen_fast.models.diffwave import runtime as rt  # noqa: E402
from audiogen_fast.models.diffwave.reference import Schedule  # noqa: E402

# odd: channel counts that are not multiples of the 16-column panels / 8-wide vectors, and a
# dilation larger than the signal (every outer tap is padding)
VARIANTS = {"tiny": dict(), "odd": dict(residual_channels=13, residual_layers=5, dilation_cycle=5, n_mels=7),
            "uncond": dict(conditional=False)}


def _inputs(model, B, frames, seed, schedule=None):
    cfg = model.config
    sch = Schedule.from_config(cfg, schedule)
    g = torch.Generator().manual_seed(seed)
    T = frames * cfg.hop_length
    mel = torch.randn(B, cfg.n_mels, frames, generator=g) if cfg.conditional else None
    noise = torch.randn(len(sch), B, T, generator=g)
    return sch, mel, noise


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("B,frames", [(1, 1), (2, 5), (3, 13)])
def test_matches_eager(variant, B, frames):
    model = agf.build("tiny-diffwave", seed=frames, **VARIANTS[variant]).eval()
    sch, mel, noise = _inputs(model, B, frames, seed=B)
    ref = rt.run_torch(model, sch, noise, mel)
    for threads in (1, 2, 3):
        for hoist in (False, True):
            for winograd in (False, True):
                got = rt.run_cpp(model, sch, noise, mel, threads=threads, hoist=hoist, winograd=winograd)
                assert got.shape == ref.shape
                assert rel_err(got, ref) <= 1e-5, (threads, hoist, winograd)


def test_schedules_full_and_custom():
    model = agf.build("tiny-diffwave", seed=3).eval()
    for schedule in ("full", [1e-3, 0.02, 0.3]):
        sch, mel, noise = _inputs(model, 2, 4, seed=7, schedule=schedule)
        ref = rt.run_torch(model, sch, noise, mel)
        assert rel_err(rt.run_cpp(model, sch, noise, mel), ref) <= 1e-5


def test_standard_size_layers():
    """D1's layer shapes (C=64, 30 layers, dilations up to 512, 80 mels) on a short signal:
    the 16-column panels, the 6-row tiles and the hoisted conditioner at full width."""
    model = agf.build("D1", seed=0).eval()
    sch, mel, noise = _inputs(model, 1, 5, seed=1)
    ref = rt.run_torch(model, sch, noise, mel)
    for hoist in (False, True):
        for winograd in (False, True):
            assert rel_err(rt.run_cpp(model, sch, noise, mel, threads=2, hoist=hoist, winograd=winograd), ref) <= 1e-5


@pytest.mark.parametrize("dtype,winograd", [("float32", True), ("float32", False), ("bfloat16", True)])
def test_hoisting_changes_no_bits(dtype, winograd):
    """The conditioner cache holds what a layer computes first anyway, by the same product, so
    hoisting none, some or all layers gives the same audio bit for bit (which is what lets "auto"
    choose the layer count from a memory budget). Odd sizes, 2 streams, 2 threads."""
    model = agf.build("tiny-diffwave", seed=4, residual_channels=13, residual_layers=5, n_mels=7).eval()
    sch, mel, noise = _inputs(model, 2, 6, seed=2)
    outs = [rt.run_cpp(model, sch, noise, mel, threads=2, hoist=h, winograd=winograd, dtype=dtype)
            for h in (False, 1, 3, True, 99)]
    for o in outs[1:]:
        assert torch.equal(o, outs[0])
    ref = rt.run_torch(model, sch, noise, mel)
    assert rel_err(outs[0], ref) <= (1e-5 if dtype == "float32" else 1e-2)


def test_hoist_budget(monkeypatch):
    """"auto" hoists as many layers as the cache budget holds (2C fp32 values per sample and
    layer), AGF_DIFFWAVE_CACHE_MB sets the budget, and a bad value is an error naming it."""
    model = agf.build("tiny-diffwave", seed=0).eval()
    C, L = model.config.residual_channels, model.config.residual_layers
    per_layer = 2 * 1000 * 2 * C * 4  # B = 2, T = 1000
    assert rt.hoist_layers(model, 2, 1000, budget=0) == 0
    assert rt.hoist_layers(model, 2, 1000, budget=per_layer - 1) == 0
    assert rt.hoist_layers(model, 2, 1000, budget=2 * per_layer + 5) == min(2, L)
    assert rt.hoist_layers(model, 2, 1000, budget=10**12) == L
    monkeypatch.delenv("AGF_DIFFWAVE_CACHE_MB", raising=False)
    assert rt.cache_budget_bytes() == rt.CACHE_MB_DEFAULT << 20
    monkeypatch.setenv("AGF_DIFFWAVE_CACHE_MB", "0")
    assert rt.cache_budget_bytes() == 0 and rt.hoist_layers(model, 2, 1000) == 0
    monkeypatch.setenv("AGF_DIFFWAVE_CACHE_MB", "1.5")
    assert rt.cache_budget_bytes() == 3 << 19
    for bad in ("-1", "lots", "nan", "inf"):
        monkeypatch.setenv("AGF_DIFFWAVE_CACHE_MB", bad)
        with pytest.raises(ValueError, match="AGF_DIFFWAVE_CACHE_MB"):
            rt.cache_budget_bytes()
    # an unconditional model has nothing to hoist
    monkeypatch.delenv("AGF_DIFFWAVE_CACHE_MB")
    assert rt.hoist_layers(agf.build("tiny-diffwave", conditional=False), 1, 1000) == 0
    # the loop's own argument checks
    sch, mel, noise = _inputs(model, 1, 2, seed=0)
    for bad in ("some", -1, 2.5):
        with pytest.raises(ValueError, match="hoist"):
            rt.run_cpp(model, sch, noise, mel, hoist=bad)


def test_portable_kernels_match():
    """The portable C++ path (no AVX2) gives the same audio (forced in a subprocess: the kernel
    choice is made once per process)."""
    code = ("import torch, audiogen_fast as agf\n"
            "from audiogen_fast import _cpp\n"
            "assert _cpp._ext().kernels_name() == 'portable'\n"
            "from audiogen_fast.models.diffwave import runtime as rt\n"
            "from audiogen_fast.models.diffwave.reference import Schedule\n"
            "m = agf.build('tiny-diffwave', seed=5, residual_channels=13, n_mels=7).eval()\n"
            "sch = Schedule.from_config(m.config)\n"
            "g = torch.Generator().manual_seed(0)\n"
            "mel = torch.randn(2, 7, 3, generator=g); noise = torch.randn(len(sch), 2, 3 * m.config.hop_length, generator=g)\n"
            "a = rt.run_torch(m, sch, noise, mel)\n"
            "for wg in (False, True):\n"
            "    b = rt.run_cpp(m, sch, noise, mel, threads=2, winograd=wg)\n"
            "    print(float((a - b).abs().max() / a.abs().max()))\n")
    env = dict(os.environ, AGF_CPU_KERNELS="portable")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    errs = [float(v) for v in r.stdout.split()]
    assert len(errs) == 2 and max(errs) <= 1e-5


def test_vocoder_cpp_equals_torch():
    model = agf.build("tiny-diffwave", seed=1)
    mel = np.random.default_rng(0).standard_normal((2, model.config.n_mels, 6)).astype(np.float32)
    a = agf.Vocoder(model, backend="torch", device="cpu").generate(mel=mel, seed=[3, 4])
    b = agf.Vocoder(model, backend="cpp", device="cpu").generate(mel=mel, seed=[3, 4])
    assert a.shape == b.shape == (2, 6 * model.config.hop_length)
    assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(a))


def test_stream_cpp_matches_torch_stream():
    model = agf.build("tiny-diffwave", seed=2)
    mel = np.random.default_rng(1).standard_normal((model.config.n_mels, 70)).astype(np.float32)
    chunks = [mel[:, i:i + 9] for i in range(0, 70, 9)]
    out = {}
    for backend in ("torch", "cpp"):
        voc = agf.Vocoder(model, backend=backend, device="cpu")
        out[backend] = np.concatenate(list(voc.stream(iter(chunks), seed=11)), -1)
    assert out["cpp"].shape == out["torch"].shape == (70 * model.config.hop_length,)
    assert np.max(np.abs(out["cpp"] - out["torch"])) <= 1e-5 * np.max(np.abs(out["torch"]))


def test_checked_entry_point_rejects_bad_sizes():
    model = agf.build("tiny-diffwave").eval()
    loop = DiffWaveCPU(model)
    sch, mel, noise = _inputs(model, 1, 2, seed=0)
    S, L, C = len(sch), model.config.residual_layers, model.config.residual_channels
    coef = torch.zeros(3, S)
    mel_t = model.spectrogram_upsampler(mel).transpose(1, 2).contiguous().detach()
    with pytest.raises(ValueError, match="eproj"):
        loop.run(torch.zeros(S, L, C + 1), coef, noise, mel_t)
    with pytest.raises(ValueError, match="coefficients"):
        loop.run(torch.zeros(S, L, C), torch.zeros(3, S + 1), noise, mel_t)
    with pytest.raises(ValueError, match="mel"):
        loop.run(torch.zeros(S, L, C), coef, noise, mel_t[:, :-1].contiguous())
    with pytest.raises(ValueError, match="conditional"):
        loop.run(torch.zeros(S, L, C), coef, noise, None)
    with pytest.raises(ValueError, match="float32"):
        loop.run(torch.zeros(S, L, C), coef, noise.double(), mel_t)
