"""The public API: load().generate() on every preset, determinism, batches, noise, errors."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.models import family
from conftest import random_mel, rel_err

ALL = agf.preset_names()
TINY = [p for p in ALL if p.startswith("tiny-")]


@pytest.mark.parametrize("preset", ALL)
def test_every_preset_generates_through_save_load(preset, tmp_path):
    model = agf.build(preset, seed=0)
    p = tmp_path / "m.safetensors"
    agf.save(model, p)
    voc = agf.load(p, device="cpu", backend="auto")
    # auto: the fastest CPU backend that implements the family
    want = "cpp" if ("cpp" in voc.family.runtime.BACKENDS and agf.backends()["cpp"][0]) else "torch"
    assert voc.backend == want
    assert voc.sample_rate == model.config.sample_rate and voc.hop_length == model.config.hop_length
    assert voc.n_mels == model.config.n_mels and isinstance(voc.model, torch.nn.Module)
    frames = 1
    mel = random_mel(voc.config, frames)
    a = voc.generate(mel=mel, seed=0)
    assert a.dtype == np.float32 and a.shape == (frames * voc.hop_length,)
    assert np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0 and a.std() > 0
    # the loaded model is the same function as the saved one
    b = agf.Vocoder(model, device="cpu").generate(mel=mel, seed=0)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("preset", TINY)
def test_determinism_seeds_batches_noise(preset):
    voc = agf.load(f"preset:{preset}", device="cpu")
    cfg = voc.config
    mel = random_mel(cfg, 3)
    a = voc.generate(mel=mel, seed=0)
    assert np.array_equal(a, voc.generate(mel=mel, seed=0))
    assert not np.array_equal(a, voc.generate(mel=mel, seed=1))
    # batched rows equal runs alone: sampled (autoregressive) outputs exactly; the diffusion
    # model's continuous output up to fp32 rounding (a batched conv sums in another order)
    mels = np.stack([mel, random_mel(cfg, 3, rng=np.random.default_rng(9)), mel])
    ab = voc.generate(mel=mels, seed=[0, 1, 2])
    assert ab.shape == (3, a.shape[0])
    for b, s in enumerate([0, 1, 2]):
        alone = voc.generate(mel=mels[b], seed=s)
        if voc.family.name == "diffwave":
            assert rel_err(ab[b], alone) <= 1e-5
        else:
            assert np.array_equal(ab[b], alone)
    # explicit noise equals seeded noise
    n = a.shape[0]
    nz = voc.family.runtime.draw_noise(cfg, 0, n, *voc._opts(n, None, None).values())
    assert tuple(nz.shape) == voc.noise_shape(n)
    assert np.array_equal(voc.generate(mel=mel, noise=nz), a)
    assert np.array_equal(voc.generate(mel=mels[:1], noise=nz[None])[0], a)


def _ended_session(model, backend, mel, speaker=None):
    """A family's block Session over mel [B, n_mels, frames], all frames fed and ended, so
    next_block() hands out every block's conditioning."""
    rt = family(model.config.family).runtime
    loop = rt.make_loop(model, backend)
    loop = loop[0] if isinstance(loop, tuple) else loop   # WaveNet's make_loop: (loop, run options)
    sess = rt.Session(model, loop, mel.shape[0], **({"speaker": speaker} if speaker is not None else {}))
    sess.feed(mel)
    sess.end()
    return sess


@pytest.mark.parametrize("preset,kw,backend", [
    ("tiny-wavernn", {}, "torch"),
    ("tiny-wavenet", dict(upsample_mode="convt"), "torch"),               # per-sample conditioning
    ("tiny-wavenet", dict(gin_channels=3, n_speakers=2), "torch"),        # + speaker projection
    ("tiny-wavenet", dict(gin_channels=3, n_speakers=2), "cpp"),          # frame-rate form
])
def test_a_batch_row_gets_the_conditioning_it_gets_alone(preset, kw, backend):
    """torch's CPU convolutions pick their algorithm by shape, so the tiny WaveRNN's upsampler
    gives a row of a batch other last bits (~5e-6) than the same row alone; the Sessions compute
    the conditioning row by row, so every block hands the loop exactly a stream's own bits."""
    if backend == "cpp" and not agf.backends()["cpp"][0]:
        pytest.skip("C++ extension not built")
    model = agf.build(preset, seed=3, **kw)
    cfg = model.config
    with torch.no_grad():
        for prm in model.parameters():  # trained-looking weights, not the initial averaging kernels
            prm.add_(torch.randn(prm.shape, generator=torch.Generator().manual_seed(prm.numel())) * 0.3)
    g = torch.Generator().manual_seed(0)
    B = 4
    mel = torch.randn(B, cfg.n_mels, 40, generator=g) - 2
    spk = torch.tensor([1, 0, 1, 0]) if cfg.family == "wavenet" and cfg.gin_channels else None

    @torch.inference_mode()
    def blocks(rows):
        sess = _ended_session(model, backend, mel[rows], spk[rows] if spk is not None else None)
        out = []
        while (blk := sess.next_block()) is not None:
            out.append([c.dense() if hasattr(c, "dense") else c for c in blk[2:]])
        return out

    alone = [blocks(slice(b, b + 1)) for b in range(B)]
    batched = blocks(slice(0, B))
    assert len(batched) == len(alone[0]) > 1
    for k, parts in enumerate(batched):
        for i, t in enumerate(parts):
            for b in range(B):
                assert torch.equal(t[b], alone[b][k][i][0]), (k, i, b)


@pytest.mark.parametrize("preset,backend", [("tiny-wavernn", "cpp"), ("tiny-wavernn", "torch"),
                                            ("tiny-wavenet", "cpp"), ("tiny-wavenet", "torch")])
def test_the_conditioning_runs_on_one_torch_thread(preset, backend):
    """Between two loop calls the Sessions compute a block's conditioning in torch; on more than
    one torch thread libgomp's workers then spin for milliseconds and take cores from the C++
    loop (base.one_torch_thread). Every module call of a block runs on one torch thread, and the
    caller's thread count is back afterwards."""
    if backend == "cpp" and not agf.backends()["cpp"][0]:
        pytest.skip("C++ extension not built")
    model = agf.build(preset, seed=0)
    cfg = model.config
    seen = []
    hooks = [m.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads())) for m in model.modules()]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            sess = _ended_session(model, backend, torch.randn(1, cfg.n_mels, 20) - 2)
            n = 0
            while sess.next_block() is not None:
                n += 1
                assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        for h in hooks:
            h.remove()
    assert n > 1 and seen and set(seen) == {1}, (n, seen)


def test_one_torch_thread_restores_the_count_and_is_per_thread():
    import threading

    from audiogen_fast.models.base import one_torch_thread
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread("cpu"):
            assert torch.get_num_threads() == 1
            with one_torch_thread(torch.device("cpu")):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1   # the inner exit leaves the outer's setting
        assert torch.get_num_threads() == 2
        with one_torch_thread("meta"):            # not the CPU: nothing changes
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with one_torch_thread("cpu"):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        # another thread inside it leaves this thread's count alone, and gets its own back
        inside, release, counts = threading.Event(), threading.Event(), []

        def other():
            torch.set_num_threads(2)
            with one_torch_thread("cpu"):
                counts.append(torch.get_num_threads())
                inside.set()
                release.wait(10)
            counts.append(torch.get_num_threads())
        t = threading.Thread(target=other)
        t.start()
        assert inside.wait(10)
        assert torch.get_num_threads() == 2
        release.set()
        t.join()
        assert counts == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("config,dtype", [("R2", "bfloat16"), ("R2", "int8"), ("W1", "bfloat16")])
def test_batched_generate_equals_alone_at_standard_size(config, dtype):
    """The standard configs with the cpp backend's reduced-precision products, where a last-bit
    difference (batched conditioning; 2 streams on 2 threads with another sum order) flipped
    samples within 0.1 s before both were fixed."""
    if not agf.backends()["cpp"][0]:
        pytest.skip("C++ extension not built")
    from audiogen_fast import presets

    model = presets.build(config, seed=0)
    voc = agf.Vocoder(model, device="cpu", backend="cpp", dtype=dtype)
    rng = np.random.default_rng(0)
    mels = (rng.standard_normal((2, model.config.n_mels, 9)) - 4).astype(np.float32)
    both = voc.generate(mel=mels, seed=[0, 1])
    for b in range(2):
        assert np.array_equal(both[b], voc.generate(mel=mels[b], seed=b)), b


def test_input_errors_name_the_problem():
    voc = agf.load("preset:tiny-wavenet", device="cpu")
    good = random_mel(voc.config, 2)
    cases = [
        (dict(mel=np.zeros((15, 2), np.float32)), "n_mels=16"),
        (dict(mel=np.zeros((16,), np.float32)), "shape"),
        (dict(mel=np.zeros((1, 1, 16, 2), np.float32)), "shape"),
        (dict(mel=np.zeros((16, 0), np.float32)), "zero frames"),
        (dict(mel=np.where(np.eye(16, 2) > 0, np.nan, good)), "NaN"),
        (dict(mel=np.full((16, 2), np.inf, np.float32)), "NaN or inf"),
        (dict(mel=np.array([["a"] * 2] * 16)), "float"),
        (dict(), "mel-conditioned"),
        (dict(mel=good, num_samples=5), "not both"),
        (dict(mel=good, seed=[0, 1]), "2 seeds"),
        (dict(mel=good, seed="zero"), "seed"),
        (dict(mel=good, seed=2 ** 64), "64-bit"),            # would wrap onto seed 0
        (dict(mel=good, seed=[0, -2 ** 63 - 1]), "64-bit"),
        (dict(mel=good, noise=np.zeros(5, np.float32)), "noise has shape"),
        (dict(mel=good, noise=np.full(128, 1.5, np.float32)), "uniforms"),
        (dict(mel=good, noise=np.full(128, np.nan, np.float32)), "NaN"),
        (dict(mel=good, schedule="fast"), "diffusion"),
        (dict(mel=good, fold=True), "WaveRNN"),
    ]
    for kw, msg in cases:
        with pytest.raises(agf.InputError, match=msg):
            voc.generate(**kw)
    # torch tensors of any float dtype are taken as their values (bfloat16 has no numpy dtype)
    mel16 = torch.from_numpy(good).bfloat16()
    assert np.array_equal(voc.generate(mel=mel16, seed=0), voc.generate(mel=mel16.float().numpy(), seed=0))
    with pytest.raises(agf.InputError, match="float"):
        voc.generate(mel=torch.from_numpy(good).to(torch.complex64))


def test_backend_registry():
    b = agf.backends()
    assert set(b) == {"torch", "cpp", "triton", "cuda"}
    assert b["torch"] == (True, "")
    for name, (ok, why) in b.items():
        assert ok or why  # an unavailable backend always says why
    model = agf.build("tiny-wavenet")
    with pytest.raises(agf.BackendError, match="unknown backend"):
        agf.Vocoder(model, backend="fastest")
    if not b["cuda"][0]:
        with pytest.raises(agf.BackendError, match="not available"):
            agf.Vocoder(model, backend="cuda")
    if b["cpp"][0]:
        with pytest.raises(agf.InputError, match="float16"):
            agf.Vocoder(model, backend="torch", device="cpu", dtype="float16")
        with pytest.raises(agf.InputError, match="float32 or bfloat16"):
            agf.Vocoder(agf.build("tiny-diffwave"), backend="cpp", device="cpu", dtype="float16")
    with pytest.raises(agf.InputError, match="device"):
        agf.Vocoder(model, device="tpu")
    with pytest.raises(agf.InputError, match="dtype"):
        agf.Vocoder(model, device="cpu", dtype="float64")
    if b["cpp"][0]:   # reduced precision on the CPU is a cpp option (fp16-stored weights, bf16 products)
        assert agf.Vocoder(model, device="cpu", dtype="bfloat16").backend == "cpp"
        with pytest.raises(agf.InputError, match="cpp backend takes float32 or float16 or bfloat16"):
            agf.Vocoder(model, backend="torch", device="cpu", dtype="bfloat16")
    else:
        with pytest.raises(agf.InputError, match="float16"):
            agf.Vocoder(model, device="cpu", dtype="bfloat16")


def test_auto_picks_per_family_and_dtype_on_a_gpu(monkeypatch):
    """With every backend available (faked): on a GPU "auto" takes the CUDA persistent kernels for
    WaveNet and WaveRNN, Triton for DiffWave in fp16 / bf16, but eager for DiffWave in fp32 (the
    exact fp32 Triton kernel ran at 0.05x eager); naming triton still runs it."""
    import importlib

    bk = importlib.import_module("audiogen_fast.backends")
    monkeypatch.setattr(bk, "backends", lambda: {b: (True, "") for b in bk.PREFERENCE})
    assert bk.resolve("auto", family("wavenet"), "cuda") == "cuda"
    assert bk.resolve("auto", family("wavernn"), "cuda", "float16") == "cuda"
    dw = family("diffwave")
    assert bk.resolve("auto", dw, "cuda", "float32") == "torch"
    assert bk.resolve("auto", dw, "cuda", "float16") == "triton"
    assert bk.resolve("auto", dw, "cuda", "bfloat16") == "triton"
    assert bk.resolve("triton", dw, "cuda", "float32") == "triton"
    assert bk.resolve("auto", dw, "cpu", "float32") == "cpp"


def test_import_does_not_initialise_cuda():
    import subprocess
    import sys

    code = ("import audiogen_fast, torch, sys; "
            "sys.exit(1 if torch.cuda.is_initialized() else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_mel_from_wav_matches_model_settings():
    voc = agf.load("preset:tiny-diffwave", device="cpu")
    sr = voc.sample_rate
    t = np.arange(sr) / sr
    wav = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    mel = voc.mel(wav)
    assert mel.shape == (voc.n_mels, 1 + len(wav) // voc.hop_length)
    a = voc.generate(mel=mel[:, :3], seed=0)
    assert a.shape == (3 * voc.hop_length,)
    # a wav at another rate is resampled, giving about the same features
    from audiogen_fast.audio import resample

    wav2 = resample(wav, sr, 2 * sr)
    mel2 = voc.mel(wav2, sample_rate=2 * sr)
    assert mel2.shape[0] == mel.shape[0] and abs(mel2.shape[1] - mel.shape[1]) <= 1
    k = min(mel.shape[1], mel2.shape[1]) - 2
    assert np.abs(mel2[:, 2:k] - mel[:, 2:k]).mean() < 0.1


@pytest.mark.skipif(not agf.backends()["cpp"][0], reason="C++ extension not built")
@pytest.mark.parametrize("preset", TINY)
def test_the_fast_loops_follow_weights_changed_in_place(preset):
    """The C++ loops hold a copy of the weights, cached for the model: load_state_dict (which copies
    into the existing tensors) must rebuild it. The cache is kept beside the model, so a model that
    has generated still deep-copies, and is freed when dropped."""
    import copy
    import gc
    import weakref

    model, other = agf.build(preset, seed=0), agf.build(preset, seed=1)
    voc = agf.Vocoder(model.train(), device="cpu", backend="cpp")
    assert not model.training                        # taken over in eval mode (the backends' function)
    mel = random_mel(voc.config, 3)
    before = voc.generate(mel=mel, seed=2)
    model.load_state_dict(other.state_dict())
    after = voc.generate(mel=mel, seed=2)
    assert np.array_equal(after, agf.Vocoder(other, device="cpu", backend="cpp").generate(mel=mel, seed=2))
    assert not np.array_equal(after, before)
    twin = copy.deepcopy(model)
    assert np.array_equal(agf.Vocoder(twin, device="cpu", backend="cpp").generate(mel=mel, seed=2), after)
    ref = weakref.ref(model)
    del model, voc, twin
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("preset", TINY)
def test_a_model_made_under_inference_mode_generates(preset, tmp_path):
    """Production code often loads and generates inside torch.inference_mode(): the parameters are
    then inference tensors (no version counter), which the fast loops' weight cache must accept."""
    agf.save(agf.build(preset, seed=0), tmp_path / "m.safetensors")
    backend = "cpp" if agf.backends()["cpp"][0] else "torch"
    ref = agf.load(tmp_path / "m.safetensors", device="cpu", backend=backend)
    mel = random_mel(ref.config, 2)
    with torch.inference_mode():
        voc = agf.load(tmp_path / "m.safetensors", device="cpu", backend=backend)
        a = voc.generate(mel=mel, seed=3)
        assert np.array_equal(a, voc.generate(mel=mel, seed=3))
    assert np.array_equal(a, ref.generate(mel=mel, seed=3))
