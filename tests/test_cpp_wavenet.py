"""The C++ WaveNet loop (csrc/cpu/wavenet.cpp, backend "cpp") against the eager reference."""
import os
import shutil
import subprocess
import sys

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
    "cin_pad": dict(cin_pad=2),
    # upsamplers that are not one linear map along time: per-sample (dense) conditioning
    "convt": dict(upsample_mode="convt"),
    "freq3": dict(upsample_freq_kernel=3),
}


def _randomize_upsampler(model, seed=0):
    """Trained upsamplers are not the constant averaging kernels they start from."""
    if model.upsample_net is None:
        return model
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.upsample_net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)
    return model


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
    model = _randomize_upsampler(agf.build("tiny-wavenet", seed=3, **VARIANTS[variant]))
    cfg = model.config
    B, T = 2, 1157  # several blocks: state carried across block boundaries
    mel, x, spk = _inputs(cfg, B, T, threads)
    _, ref = rt.run_torch(model, T, mel=mel, speaker=spk, teacher=x)
    _, out = rt.run_cpp(model, T, mel=mel, speaker=spk, teacher=x.float(), threads=threads)
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
    got, _ = rt.run_cpp(model, T, mel=mel, speaker=spk, noise=nz, threads=threads)
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
    got, _ = rt.run_cpp(model, T, mel=mel, noise=nz, threads=2)
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


# ---- conditioning in frame-rate form (models/wavenet/cond.py) -----------------------------------

def _blocks(model, loop, mel, spk, B, n):
    sess = rt.Session(model, loop, B, speaker=spk, limit=n)
    if mel is not None:
        sess.feed(mel)
    out = []
    while True:
        blk = sess.next_block(end=True)
        if blk is None or (mel is None and out):
            return sess, out
        out.append(blk)


@pytest.mark.parametrize("variant", ["mulaw", "cin_pad", "speaker", "uncond", "mulaw-k3"])
def test_frame_conditioning_equals_per_sample_conditioning(variant):
    """Every block's FrameCond (projected frames + the upsampler's per-sample weights) equals the
    per-sample conditioning the other loops get, first and last (clamped) blocks included."""
    from audiogen_fast.models.wavenet.cond import FrameCond

    model = _randomize_upsampler(agf.build("tiny-wavenet", seed=11, **VARIANTS[variant]), seed=2)
    cfg = model.config
    B = 2
    n = 21 * cfg.hop_length - 37  # not a whole number of blocks, nor of frames
    mel, _, spk = _inputs(cfg, B, n, 3)
    with torch.inference_mode():
        s_f, frame = _blocks(model, rt.cpp_loop(model), mel, spk, B, n)
        s_d, dense = _blocks(model, rt.TorchLoop(model), mel, spk, B, n)
    assert s_f.frame_cond and not s_d.frame_cond
    assert [b[:2] for b in frame] == [b[:2] for b in dense] and len(frame) >= (1 if variant == "uncond" else 3)
    for (_, _, fc), (_, _, dc) in zip(frame, dense):
        assert isinstance(fc, FrameCond) and fc.wts.shape[2] <= 6
        assert rel_err(fc.dense(), dc.reshape(B, dc.shape[1], -1)) <= 1e-6


@pytest.mark.parametrize("variant", ["convt", "freq3"])
def test_nonlinear_or_cross_channel_upsamplers_keep_per_sample_conditioning(variant):
    model = agf.build("tiny-wavenet", seed=1, **VARIANTS[variant])
    sess = rt.Session(model, rt.cpp_loop(model), 1, limit=64)
    assert not sess.frame_cond


def test_cpp_loop_frame_form_equals_dense_form():
    """The C++ loop's weighted sum of frames gives the logits of the dense conditioning it stands for."""
    from audiogen_fast.models.wavenet.cond import FrameCond

    model = agf.build("tiny-wavenet", seed=12)
    cfg = model.config
    loop = rt.cpp_loop(model)
    B, n, F, NB, LG = 2, 300, 9, 3, cfg.layers * cfg.gate_channels
    g = torch.Generator().manual_seed(0)
    f0 = torch.randint(0, F - NB + 1, (B, n), generator=g).to(torch.int32)
    fc = FrameCond(torch.randn(B, F, LG, generator=g), torch.randn(B, LG, generator=g), f0,
                   torch.rand(B, n, NB, generator=g))
    x = torch.randint(0, cfg.quantize_channels, (B, n), generator=g).float()
    outs = []
    for cond in (fc, fc.dense().reshape(B, n, cfg.layers, cfg.gate_channels).contiguous()):
        hist, x0 = loop.new_state(B, rt.initial_input(cfg))
        outs.append(loop.run_chunk(cond, hist, x0, 0, teacher=x, threads=2))
    assert rel_err(outs[0], outs[1]) <= 1e-6


def test_frame_cond_cat_pads_to_common_frames_and_taps():
    from audiogen_fast.models.wavenet.cond import FrameCond, cat_cond

    g = torch.Generator().manual_seed(1)
    def make(F, NB, n=40, LG=12):
        f0 = torch.randint(0, F - NB + 1, (1, n), generator=g).to(torch.int32)
        return FrameCond(torch.randn(1, F, LG, generator=g), torch.randn(1, LG, generator=g), f0,
                         torch.rand(1, n, NB, generator=g))
    a, b = make(5, 2), make(9, 4)
    c = cat_cond([a, b])
    assert c.P.shape[1] >= 9 + 4 - 1 and c.wts.shape[2] == 4
    assert torch.allclose(c.dense(), torch.cat([a.dense(), b.dense()]), rtol=0, atol=1e-6)


def test_band_covers_every_nonzero():
    from audiogen_fast.models.wavenet.cond import band

    g = torch.Generator().manual_seed(2)
    F, n = 7, 50
    U = torch.zeros(F, n)
    for t in range(n):
        lo = min(F - 1, t // 8)
        hi = min(F, lo + 1 + t % 3)
        U[lo:hi, t] = torch.randn(hi - lo, generator=g)
    f0, wts = band(U)
    NB = wts.shape[1]
    rec = torch.zeros(F, n)
    for t in range(n):
        rec[f0[t]:f0[t] + NB, t] = wts[t]
    assert NB == 3 and torch.equal(rec, U) and int(f0.max()) + NB <= F


def test_cpp_rejects_frame_indices_outside_the_frames():
    from audiogen_fast.models.wavenet.cond import FrameCond

    model = agf.build("tiny-wavenet")
    cfg = model.config
    loop = rt.cpp_loop(model)
    hist, x = loop.new_state(1, 128)
    LG = cfg.layers * cfg.gate_channels
    bad = FrameCond(torch.zeros(1, 4, LG), torch.zeros(1, LG), torch.tensor([[0, 1, 3]], dtype=torch.int32),
                    torch.ones(1, 3, 2))
    with pytest.raises(ValueError, match="f0 out of range"):
        loop.run_chunk(bad, hist, x, 0, noise=torch.zeros(1, 3))


@pytest.mark.parametrize("schedule", ["team", "split"])
@pytest.mark.parametrize("variant", ["mulaw", "odd", "mulaw-k3", "mol"])
@pytest.mark.parametrize("B,threads", [(3, 2), (5, 2), (5, 3), (4, 1)])
def test_lockstep_streams_match_eager(variant, B, threads, schedule):
    """Streams in lockstep, every product [B, in] x [in, out]: on the whole team (each product
    split over the threads) or split (each thread its own streams): teacher-forced outputs
    within 1e-5 of eager, sampled mu-law classes equal."""
    model = _randomize_upsampler(agf.build("tiny-wavenet", seed=8, **VARIANTS[variant]), seed=3)
    cfg = model.config
    T = 700
    g = torch.Generator().manual_seed(B)
    mel = torch.randn(B, cfg.n_mels, -(-T // cfg.hop_length) + 1, generator=g)
    x = (torch.randint(0, cfg.quantize_channels, (B, T), generator=g) if cfg.output == "mulaw"
         else torch.rand(B, T, generator=g) * 2 - 1)
    _, ref = rt.run_torch(model, T, mel=mel, teacher=x)
    _, out = rt.run_cpp(model, T, mel=mel, teacher=x.float(), threads=threads, schedule=schedule)
    assert rel_err(out, ref) <= 1e-5
    if cfg.output == "mulaw":
        nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
        a, _ = rt.run_torch(model, T, mel=mel, noise=nz)
        b, _ = rt.run_cpp(model, T, mel=mel, noise=nz, threads=threads, schedule=schedule)
        assert torch.equal(a, b)


# wide enough that every thread of 2 or 3 gets gate channels and hidden units of its own
SPLIT_VARIANTS = {
    "wide": VARIANTS["wide"],
    "wide-k3-mol": dict(VARIANTS["wide"], kernel_size=3, output="mol", n_mix=3),
    "wide-speaker": dict(VARIANTS["wide"], gin_channels=3, n_speakers=2),
}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8"])
@pytest.mark.parametrize("variant", list(SPLIT_VARIANTS))
@pytest.mark.parametrize("threads", [2, 3])
def test_a_stream_of_a_batch_computes_the_bits_it_computes_alone(variant, dtype, threads):
    """The loop's arithmetic is that of `threads` parts (residual, skip and logit partial sums per
    part, added in part order), whichever way a batch is scheduled: "team" (each part on its own
    thread, all streams in lockstep) or "split" (each thread its own streams, running every part
    itself). So every stream of a batch of 2 or 5 gives exactly the teacher-forced outputs and the
    samples it gives alone. (Before: 2 streams on 2 threads ran one per thread with the
    arithmetic of one part, a different sum order: other bits, other samples once one flipped.)"""
    model = _randomize_upsampler(agf.build("tiny-wavenet", seed=5, **SPLIT_VARIANTS[variant]), seed=2)
    cfg = model.config
    B, T = 5, 300
    g = torch.Generator().manual_seed(threads)
    mel = torch.randn(B, cfg.n_mels, -(-T // cfg.hop_length) + 1, generator=g)
    x = (torch.randint(0, cfg.quantize_channels, (B, T), generator=g) if cfg.output == "mulaw"
         else torch.rand(B, T, generator=g) * 2 - 1).float()
    spk = torch.tensor([1, 0, 1, 1, 0]) if cfg.gin_channels else None
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
    kw = dict(threads=threads, dtype=dtype)

    def run(rows, **more):
        s = spk[rows] if spk is not None else None
        _, logits = rt.run_cpp(model, T, mel=mel[rows], speaker=s, teacher=x[rows], **kw, **more)
        samples, _ = rt.run_cpp(model, T, mel=mel[rows], speaker=s, noise=nz[rows], **kw, **more)
        return logits, samples

    alone = [run(slice(b, b + 1)) for b in range(B)]
    for schedule in ("team", "split", "auto"):
        for n in (2, B):
            logits, samples = run(slice(0, n), schedule=schedule)
            for b in range(n):
                assert torch.equal(logits[b], alone[b][0][0]), (schedule, n, b)
                assert torch.equal(samples[b], alone[b][1][0]), (schedule, n, b)


def test_schedule_is_checked():
    model = agf.build("tiny-wavenet", seed=1)
    with pytest.raises(ValueError, match="schedule must be one of"):
        rt.run_cpp(model, 64, mel=torch.randn(1, model.config.n_mels, 2), noise=torch.rand(1, 64), schedule="fast")


def test_default_threads_are_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    """Without set_num_threads / AGF_NUM_THREADS the C++ loops use the CPUs of the affinity mask,
    capped by a cgroup CPU quota (rounded up), not every CPU of the host: a larger team stalls."""
    import os

    monkeypatch.delenv("AGF_NUM_THREADS", raising=False)
    monkeypatch.setattr(_cpp, "_NUM_THREADS", None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    root = tmp_path / "cgroup"
    monkeypatch.setattr(_cpp, "CGROUP_ROOT", str(root))
    assert _cpp.num_threads() == 6                                     # no cgroup files: the mask
    root.mkdir()
    (root / "cpu.max").write_text("max 100000\n")
    assert _cpp.num_threads() == 6                                     # v2, no quota
    (root / "cpu.max").write_text("150000 100000\n")
    assert _cpp.num_threads() == 2                                     # v2: 1.5 CPUs -> 2 threads
    (root / "cpu.max").write_text("garbage\n")
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cpp.num_threads() == 1                                     # v1: half a CPU -> 1 thread
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cpp.num_threads() == 6                                     # v1, no quota; garbage v2 ignored
    monkeypatch.setenv("AGF_NUM_THREADS", "3")
    assert _cpp.num_threads() == 3                                     # the environment decides first
    _cpp.set_num_threads(5)
    assert _cpp.num_threads() == 5                                     # then the explicit setting


@pytest.mark.skipif(shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
                    reason="needs taskset and 2 CPUs")
def test_default_threads_follow_taskset():
    code = "import audiogen_fast._cpp as c; print(c.num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "AGF_NUM_THREADS"}
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
