"""The C++ WaveNet loop (csrc/cpu/wavenet.cpp, backend "cpp") against the eager reference."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast import _cpp
from conftest import rel_err

rt = pytest.importorskip("audiogen_fast.models.wavenet.runtime")
if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)

VARIANTS = {
    "mulaw": dict(),
    "mulaw-k3": dict(kernel_size=3, layers=6, stacks=2),
    "mol": dict(output="mol", n_mix=3, kernel_size=3),
    "gaussian": dict(output="gaussian"),
    "odd": dict(residual_channels=7, gate_channels=10, skip_channels=5, out_hidden=9, quantize_channels=33),
    "wide": dict(residual_channels=24, gate_channels=80, skip_channels=72, out_hidden=40),
    "speaker": dict(gin_channels=3, n_speakers=2),
    "uncond": dict(conditional=False),
}


def _inputs(cfg, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, cfg.n_mels, -(-T // cfg.hop_length) + 1, generator=g) if cfg.conditional else None
    x = (torch.randint(0, cfg.quantize_channels, (B, T), generator=g) if cfg.output == "mulaw"
         else torch.rand(B, T, generator=g) * 2 - 1)
    spk = torch.tensor([1, 0][:B]) if cfg.gin_channels else None
    return mel, x, spk


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_teacher_forced_outputs_match_eager(variant, threads):
    model = agf.build("tiny-wavenet", seed=3, **VARIANTS[variant])
    cfg = model.config
    B, T = 2, 157  # chunks of 50: state carried across chunk boundaries
    mel, x, spk = _inputs(cfg, B, T, threads)
    _, ref = rt.run_torch(model, T, mel=mel, speaker=spk, teacher=x)
    _, out = rt.run_cpp(model, T, mel=mel, speaker=spk, teacher=x.float(), chunk=50, threads=threads)
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("variant", ["mulaw", "mulaw-k3", "odd", "speaker"])
@pytest.mark.parametrize("threads", [1, 2])
def test_sampled_mulaw_equals_eager_exactly(variant, threads):
    model = agf.build("tiny-wavenet", seed=4, **VARIANTS[variant])
    cfg = model.config
    B, T = 2, 400
    mel, _, spk = _inputs(cfg, B, T, 7)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (5, 6)]))
    ref, _ = rt.run_torch(model, T, mel=mel, speaker=spk, noise=nz)
    got, _ = rt.run_cpp(model, T, mel=mel, speaker=spk, noise=nz, chunk=128, threads=threads)
    # same logits to ~1e-7 and the same float64 sampling rule: a flip would need a uniform within
    # ~1e-7 of a CDF boundary (probability ~1e-4 for this test); none is expected
    assert torch.equal(ref, got)


@pytest.mark.parametrize("variant", ["mol", "gaussian"])
def test_sampled_continuous_close_to_eager(variant):
    model = agf.build("tiny-wavenet", seed=4, **VARIANTS[variant])
    cfg = model.config
    B, T = 2, 200
    mel, _, _ = _inputs(cfg, B, T, 8)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (5, 6)]))
    ref, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    got, _ = rt.run_cpp(model, T, mel=mel, noise=nz, chunk=64, threads=2)
    assert rel_err(got, ref) <= 1e-5


def test_fp16_weights_error_is_fp16_sized():
    """fp16-stored weights: error vs fp64 within 2x of torch with fp16-rounded weights."""
    model = agf.build("tiny-wavenet", seed=5, residual_channels=32, gate_channels=64, skip_channels=64, out_hidden=64)
    cfg = model.config
    B, T = 1, 200
    mel, x, _ = _inputs(cfg, B, T, 9)
    _, ref64 = rt.run_torch(model.double(), T, mel=mel.double(), teacher=x)
    model.float()
    rounded = agf.build("tiny-wavenet", seed=5, residual_channels=32, gate_channels=64, skip_channels=64, out_hidden=64)
    with torch.no_grad():
        for name, p in rounded.named_parameters():
            if "first_conv" not in name and "conv1x1c" not in name and name.endswith("weight") and "upsample" not in name:
                p.copy_(p.half().float())
    _, torch_half = rt.run_torch(rounded, T, mel=mel, teacher=x)
    _, ours = rt.run_cpp(model, T, mel=mel, teacher=x.float(), dtype="float16", threads=2)
    e_ref = rel_err(torch_half, ref64)
    assert 0 < e_ref < 1e-2
    assert rel_err(ours, ref64) <= 2 * e_ref


def test_engine_picks_cpp_and_matches_torch():
    model = agf.build("tiny-wavenet", seed=6)
    mel = np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)
    voc = agf.Vocoder(model, device="cpu")
    assert voc.backend == "cpp"
    a = voc.generate(mel=mel, seed=3)
    b = agf.Vocoder(model, device="cpu", backend="torch").generate(mel=mel, seed=3)
    assert np.array_equal(a, b)
    h = agf.Vocoder(model, device="cpu", dtype="float16").generate(mel=mel, seed=3)
    assert h.shape == a.shape and np.all(np.abs(h) <= 1)


def test_cpp_entry_points_check_sizes():
    model = agf.build("tiny-wavenet")
    loop = rt.cpp_loop(model)
    hist, x = loop.new_state(1, 128)
    cond = torch.zeros(1, 10, 4, 16)
    with pytest.raises(ValueError, match="cond"):
        loop.run_chunk(torch.zeros(1, 10, 4, 15), hist, x, 0, noise=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="noise"):
        loop.run_chunk(cond, hist, x, 0, noise=torch.zeros(1, 9))
    with pytest.raises(ValueError, match="hist"):
        loop.run_chunk(cond, hist[:, :-1].contiguous(), x, 0, noise=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="float32"):
        loop.run_chunk(cond.double(), hist, x, 0, noise=torch.zeros(1, 10))
    with pytest.raises(ValueError):
        loop.run_chunk(cond, hist, x, -1, noise=torch.zeros(1, 10))


def test_half_conversion_roundtrip():
    ext = _cpp._ext()
    for v in [0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 1e-9, 70000.0, 0.1, -0.33333]:
        h = ext.float_to_half(v)
        with np.errstate(over="ignore"):
            want = np.float16(v)
        assert np.uint16(h) == want.view(np.uint16), v
        assert ext.half_to_float(h) == float(want) or (np.isinf(want) and np.isinf(ext.half_to_float(h)))
