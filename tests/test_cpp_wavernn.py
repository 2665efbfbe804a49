"""The C++ WaveRNN loop (csrc/cpu/wavernn.cpp, backend "cpp") against the eager reference."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import random_mel, rel_err

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)
from audiogen_fast.models.wavernn import runtime as rt  # noqa: E402

VARIANTS = {"raw9": dict(), "mol": dict(mode="MOL", n_mix=3), "gauss": dict(mode="GAUSS", log_scale_min=-7.0), "odd": dict(rnn_dims=13, fc_dims=11, bits=5, pad=0),
            "raw10": dict(bits=10, rnn_dims=24, fc_dims=40)}


def _cond(model, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, model.config.n_mels, -(-T // model.config.hop_length), generator=g)
    with torch.no_grad():
        return [c[:, :T].contiguous() for c in model.conditioning(mel)]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("B", [1, 3, 7])
def test_teacher_forced_outputs_match_eager(variant, B):
    model = agf.build("tiny-wavernn", seed=B, **VARIANTS[variant])
    T = 131
    cond = _cond(model, B, T, B)
    x = torch.rand(B, T, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _, ref, _ = rt.run_torch(model, cond, teacher=x)
    for threads in (1, 2):
        _, out, _ = rt.run_cpp(model, cond, teacher=x, chunk=40 * B, threads=threads)
        assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("variant", ["raw9", "odd", "raw10"])
def test_sampled_classes_equal_eager(variant):
    model = agf.build("tiny-wavernn", seed=2, **VARIANTS[variant])
    cfg = model.config
    B, T = 7, 300
    cond = _cond(model, B, T, 3)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
    _, _, ref = rt.run_torch(model, cond, noise=nz)
    for threads in (1, 2):
        s, _, got = rt.run_cpp(model, cond, noise=nz, chunk=70 * B, threads=threads)
        assert torch.equal(got, ref)
        assert torch.equal(s, 2.0 * ref.float() / float(cfg.n_classes - 1) - 1.0)


@pytest.mark.parametrize("variant", ["mol", "gauss"])
def test_continuous_samples_close(variant):
    model = agf.build("tiny-wavernn", seed=2, **VARIANTS[variant])
    B, T = 2, 200
    cond = _cond(model, B, T, 4)
    nz = torch.from_numpy(np.stack([rt.draw_noise(model.config, s, T) for s in range(B)]))
    ref, _, _ = rt.run_torch(model, cond, noise=nz)
    got, _, _ = rt.run_cpp(model, cond, noise=nz, threads=2)
    assert rel_err(got, ref) <= 1e-5


def test_engine_fold_cpp_equals_torch():
    model = agf.build("tiny-wavernn", seed=5)
    mel = random_mel(model.config, 20)
    voc = agf.Vocoder(model, device="cpu")
    assert voc.backend == "cpp"
    a = voc.generate(mel=mel, seed=1, fold=(300, 40))
    b = agf.Vocoder(model, device="cpu", backend="torch").generate(mel=mel, seed=1, fold=(300, 40))
    assert np.array_equal(a, b)
    assert np.array_equal(voc.generate(mel=mel, seed=2), agf.Vocoder(model, device="cpu", backend="torch").generate(mel=mel, seed=2))


def test_entry_points_check_sizes():
    model = agf.build("tiny-wavernn")
    loop = rt.cpp_loop(model)
    C, A = 16, 4
    mel, aux = torch.zeros(1, 5, C), torch.zeros(1, 5, 4 * A)
    st = loop.new_state(1)
    with pytest.raises(ValueError, match="noise"):
        loop.run_chunk(mel, aux, st, noise=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="conditioning"):
        loop.run_chunk(mel, aux[:, :, :-1].contiguous(), st, noise=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="state"):
        loop.run_chunk(mel, aux, (st[0], st[1], torch.zeros(2)), noise=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="float32"):
        loop.run_chunk(mel.double(), aux, st, noise=torch.zeros(1, 5))


@pytest.mark.parametrize("B", [1, 7])
def test_fp16_weights_close_to_fp32(B):
    """fp16-stored matrix weights (fp32 arithmetic): teacher-forced outputs within 1e-2 relative of
    the fp32 loop at R=64 (measured 2.8e-4: the fp16 rounding of the weights, 2^-11 relative)."""
    model = agf.build("tiny-wavernn", seed=B, rnn_dims=64, fc_dims=64)
    T = 97
    cond = _cond(model, B, T, B)
    x = torch.rand(B, T, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _, ref, _ = rt.run_cpp(model, cond, teacher=x)
    _, half, _ = rt.run_cpp(model, cond, teacher=x, half=True, threads=2)
    err = rel_err(half, ref)
    assert 0 < err <= 1e-2   # not exact (the weights are rounded), but close


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int8"])   # fp16-stored weights, bf16 / int8 products
def test_reduced_precision_through_the_engine_and_stream(dtype):
    model = agf.build("tiny-wavernn", seed=3)
    mel = np.random.default_rng(0).standard_normal((model.config.n_mels, 12)).astype(np.float32)
    voc = agf.Vocoder(model, backend="cpp", device="cpu", dtype=dtype)
    a = voc.generate(mel=mel, seed=2)
    b = np.concatenate(list(voc.stream(iter([mel[:, :5], mel[:, 5:]]), seed=2)), -1)
    assert np.array_equal(a, b)
    f = voc.generate(mel=mel, seed=2, fold=(200, 20))
    assert f.shape == a.shape and np.isfinite(f).all()


OPTS = {"fp32": {}, "fp16": dict(half=True), "bf16": dict(bf16=True), "int8": dict(int8=True)}


@pytest.mark.parametrize("variant", ["raw9", "mol", "odd"])
@pytest.mark.parametrize("opt", list(OPTS))
def test_split_schedule_gives_the_team_bits(variant, opt):
    """A batch run "split" (each thread its own streams, no barriers) or "team" (every product split
    over the threads) computes the same bits, samples and teacher-forced logits, for any share-out
    of the streams (B = 2, 3, 5 on 2-3 threads) and state carried over chunks."""
    model = agf.build("tiny-wavernn", seed=3, **{"rnn_dims": 48, "fc_dims": 40, **VARIANTS[variant]})
    cfg = model.config
    for B, threads in [(2, 2), (3, 2), (5, 3)]:
        T = 150
        cond = _cond(model, B, T, B)
        nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
        x = torch.rand(B, T, generator=torch.Generator().manual_seed(B)) * 2 - 1
        got = {}
        for schedule in ("team", "split", "auto"):
            kw = dict(threads=threads, schedule=schedule, chunk=60, **OPTS[opt])   # 3 chunks: the state carries over
            samples, _, classes = rt.run_cpp(model, cond, noise=nz, **kw)
            got[schedule] = (samples, classes, rt.run_cpp(model, cond, teacher=x, **kw)[1])
        for schedule in ("split", "auto"):
            for a, b in zip(got[schedule], got["team"]):
                assert (a is None and b is None) or torch.equal(a, b), (B, schedule)
        alone = rt.run_cpp(model, [c[1:2] for c in cond], noise=nz[1:2], threads=1, **OPTS[opt])[0]
        assert torch.equal(got["split"][0][1:2], alone)        # and each row is that stream run alone


def test_split_pays_for_few_weights_and_one_stream_a_thread():
    """schedule="auto" splits while each thread gets one stream and a step reads at most ~3 MB of
    weights (csrc/cpu/wavernn.cpp); weight_bytes counts the stored form (block-sparse: blocks + indices)."""
    from audiogen_fast._cpp import WaveRNNCPU
    from audiogen_fast.models.wavernn import sparsity as sp

    model = agf.build("tiny-wavernn", seed=0, rnn_dims=64, fc_dims=64, bits=9)
    cfg = model.config
    R, F, A, O = cfg.rnn_dims, cfg.fc_dims, cfg.aux_dims, cfg.n_classes
    weights = 4 * R * 3 * R + A * 3 * R + R * F + A * F + F * F + A * F + F * O   # 64-column panels: no padding here
    loop = rt.cpp_loop(model)
    assert loop.weight_bytes() == 4 * weights and loop.weight_bytes(half=True) == 2 * weights
    assert loop.weight_bytes(int8=True) < loop.weight_bytes(half=True)
    assert loop.split_pays(2, threads=2) and loop.split_pays(2, threads=4)
    assert not loop.split_pays(1, threads=2) and not loop.split_pays(3, threads=2) and not loop.split_pays(2, threads=1)
    r2 = agf.build("R2", seed=0)
    big = rt.cpp_loop(r2)
    assert big.weight_bytes(half=True) > 3e6 and not big.split_pays(2, threads=2, half=True)
    sp.prune(r2, 0.9, "gru+fc")
    small = WaveRNNCPU(r2)                                        # a fresh loop: the pruned weights
    assert small.weight_bytes(half=True) < 0.25 * big.weight_bytes(half=True)
    assert small.split_pays(2, threads=2, half=True)
    with pytest.raises(ValueError, match="schedule must be one of"):
        rt.run_cpp(model, _cond(model, 2, 10, 0), noise=torch.zeros(2, 10), schedule="lockstep")
