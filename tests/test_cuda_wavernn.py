"""CUDA persistent WaveRNN kernel (csrc/cuda/wavernn_persistent.cuh) against the eager step loop.

Without a GPU the kernel source runs on the CPU through the fiber emulator (see
tests/test_cuda_wavenet.py); with a GPU the same tests also run the real kernel, and the tests
marked gpu add R2.
"""
import copy

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.models.wavernn import runtime as rt
from audiogen_fast.ops.wavernn_persistent import WaveRNNPersistentLoop
from conftest import HAS_CUDA, rel_err

emu = pytest.importorskip("audiogen_fast._C_cuda_emu")
CUDA_EXT = HAS_CUDA and agf.backends()["cuda"][0]
WHERE = ["emu"] + (["gpu"] if CUDA_EXT else [])
VARIANTS = {"raw9": dict(), "mol": dict(mode="MOL", n_mix=3), "gauss": dict(mode="GAUSS", log_scale_min=-7.0), "odd": dict(rnn_dims=13, fc_dims=11, bits=5, pad=0)}
# chains: one block; three blocks (units, fc rows and classes split unevenly); one GRU unit per
# block; and three blocks reading their rows from global memory
PLANS = {"one": dict(), "three": dict(min_blocks=3), "per-unit": dict(min_blocks=10 ** 6),
         "global": dict(min_blocks=3, max_blocks=3, smem_budget=64)}


def make(model, where, **kw):
    if where == "gpu":
        return WaveRNNPersistentLoop(model.cuda(), **kw)
    kw.setdefault("threads", 64)
    return WaveRNNPersistentLoop(model, emulate=True, **kw)


def _cond(model, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, model.config.n_mels, -(-T // model.config.hop_length), generator=g)
    with torch.no_grad():
        return [c[:, :T].contiguous() for c in model.conditioning(mel)]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("plan", list(PLANS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_teacher_forced_outputs_match_eager(variant, plan, where):
    model = agf.build("tiny-wavernn", seed=3, **VARIANTS[variant])
    B, T = 2, 17
    cond = _cond(model, B, T, 1)
    x = torch.rand(B, T, generator=torch.Generator().manual_seed(2)) * 2 - 1
    _, ref, _ = rt.run_torch(model, cond, teacher=x)
    loop = make(model, where, **PLANS[plan])
    pl = loop.plan(B, 1)
    R = model.config.rnn_dims
    assert pl["nblk"] == {"one": 1, "three": 3, "per-unit": R, "global": 3}[plan]
    assert pl["wsmem"] == (plan != "global")
    d = "cuda" if where == "gpu" else "cpu"
    _, out, _ = rt.run_cuda(model.to(d), [c.to(d) for c in cond], teacher=x.to(d), chunk=6, loop=loop)  # state carried
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("variant", ["raw9", "mol", "gauss", "odd"])
def test_sampled_generation_matches_eager(variant, where):
    """3 streams, 2 per chain (the second chain half full), 3 blocks per chain, chunks of 7 steps."""
    model = agf.build("tiny-wavernn", seed=4, **VARIANTS[variant])
    cfg = model.config
    B, T = 3, 40
    cond = _cond(model, B, T, 3)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (1, 2, 3)])).float()
    ref, _, ref_cls = rt.run_torch(model, cond, noise=nz)
    loop = make(model, where, streams_per_chain=2, min_blocks=3)
    assert loop.plan(B, 2)["nchains"] == 2
    d = "cuda" if where == "gpu" else "cpu"
    got, _, got_cls = rt.run_cuda(model.to(d), [c.to(d) for c in cond], noise=nz.to(d), chunk=7, loop=loop)
    if cfg.mode == "RAW":
        # float64 sampling on logits equal to ~1e-7: the classes are the reference's
        assert torch.equal(got_cls, ref_cls)
        assert torch.equal(got, ref)
    else:
        assert rel_err(got, ref) <= 1e-5


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("teacher", [False, True])
def test_profile_counts_every_phase_and_changes_nothing(teacher, where):
    """profile=True sums clock ticks per phase and block: the outputs are bit-equal to an
    unprofiled run, every phase a step runs is counted in every block (teacher-forced steps end at
    fc3: no logits gather, no sampling), per step of a chain, summed until reset_profile()."""
    from audiogen_fast.ops.wavernn_persistent import PHASES

    model = agf.build("tiny-wavernn", seed=4)
    cfg, B, T = model.config, 2, 12
    d = "cuda" if where == "gpu" else "cpu"
    cond = [c.to(d) for c in _cond(model, B, T, 3)]
    kw = dict(teacher=(torch.rand(B, T, generator=torch.Generator().manual_seed(2)) * 2 - 1).to(d)) if teacher else \
        dict(noise=torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).float().to(d))
    plain = make(model, where, min_blocks=3)
    prof = make(model, where, min_blocks=3, profile=True)
    with pytest.raises(RuntimeError, match="no profile"):
        prof.profile_report()
    ref = rt.run_cuda(model.to(d), cond, chunk=5, loop=plain, **kw)
    got = rt.run_cuda(model.to(d), cond, chunk=5, loop=prof, **kw)
    for i in ((1,) if teacher else (0, 2)):  # teacher-forced: the outputs; sampled: samples and classes
        assert torch.equal(got[i].cpu(), ref[i].cpu())
    rep = prof.profile_report()
    assert len(rep["blocks"]) == 3 and rep["samples"] == B * T  # one stream per chain
    ran = [ph for ph in PHASES if not (teacher and ph == "sample")]
    for blk in rep["blocks"]:
        assert set(blk) == set(PHASES) and min(blk[ph] for ph in ran) > 0
        if teacher:
            assert blk["sample"] == 0
    prof.reset_profile()
    with pytest.raises(RuntimeError, match="no profile"):
        prof.profile_report()


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_weights_equal_fp32_math_on_rounded_weights(dtype, where):
    model = agf.build("tiny-wavernn", seed=5)
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for w in (rounded.rnn1.weight_ih_l0, rounded.rnn1.weight_hh_l0, rounded.rnn2.weight_hh_l0,
                  rounded.fc3.weight):
            w.copy_(w.to(dtype).float())
        R, Fd = model.config.rnn_dims, model.config.fc_dims
        for w, k in ((rounded.rnn2.weight_ih_l0, R), (rounded.fc1.weight, R), (rounded.fc2.weight, Fd)):
            w[:, :k] = w[:, :k].to(dtype).float()  # the hoisted aux parts stay fp32
    B, T = 2, 15
    cond = _cond(model, B, T, 5)
    x = torch.rand(B, T, generator=torch.Generator().manual_seed(6)) * 2 - 1
    _, ref, _ = rt.run_torch(rounded, cond, teacher=x)
    _, ref32, _ = rt.run_torch(model, cond, teacher=x)
    loop = make(model, where, dtype=dtype, min_blocks=2)
    d = "cuda" if where == "gpu" else "cpu"
    _, out, _ = rt.run_cuda(model.to(d), [c.to(d) for c in cond], teacher=x.to(d), loop=loop)
    assert rel_err(out, ref) <= 1e-5
    assert rel_err(out, ref32) > 1e-5


def test_plan_spreads_r2_over_the_sms():
    model = agf.build("R2", seed=0)
    p16 = WaveRNNPersistentLoop(model, emulate=True, dtype=torch.float16).plan(1, 1)
    p32 = WaveRNNPersistentLoop(model, emulate=True).plan(1, 1)
    # 7.9 MB of fp16 rows (15.7 MB fp32) in 227 KB per block, on at most 132 SMs
    assert p16["wsmem"] == 1 and p32["wsmem"] == 1
    assert 35 <= p16["nblk"] < p32["nblk"] <= 132
    assert max(p16["smem"], p32["smem"]) <= 227 * 1024
    p4 = WaveRNNPersistentLoop(model, emulate=True, dtype=torch.float16).plan(10, 4)
    assert p4["nchains"] == 3 and p4["xbuf_floats"] == 3 * 5 * 4 * 1024


def test_wrapper_rejects_bad_input():
    model = agf.build("tiny-wavernn")
    cfg = model.config
    loop = WaveRNNPersistentLoop(model, emulate=True, threads=64)
    st = loop.new_state(1)
    mel_up, aux = torch.zeros(1, 4, cfg.n_mels), torch.zeros(1, 4, 4 * cfg.aux_dims)
    nz = torch.full((1, 4), 0.5)
    with pytest.raises(ValueError, match="aux"):
        loop.run_chunk(mel_up, aux[:, :, 1:], st, noise=nz)
    with pytest.raises(ValueError, match="h1"):
        loop.run_chunk(mel_up, aux, (st[0][:, 1:], st[1], st[2]), noise=nz)
    with pytest.raises(ValueError, match="noise"):
        loop.run_chunk(mel_up, aux, st, noise=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="NaN"):
        loop.run_chunk(mel_up, aux, st, noise=torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="conditioning"):
        loop.run_chunk(torch.full((1, 4, cfg.n_mels), float("inf")), aux, st, noise=nz)
    with pytest.raises(ValueError, match="teacher"):
        loop.run_chunk(mel_up, aux, st, teacher=torch.full((1, 4), 2.0))
    with pytest.raises(ValueError, match="streams_per_chain"):
        WaveRNNPersistentLoop(model, emulate=True, streams_per_chain=5)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_EXT, reason="needs the CUDA extension and a GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_r2_on_gpu(dtype):
    model = agf.build("R2", seed=0).cuda()
    B, T = 2, 300
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(B, model.config.n_mels, 2, generator=g).cuda()
    with torch.no_grad():
        cond = [c[:, :T].contiguous() for c in model.conditioning(mel)]
    x = (torch.rand(B, T, generator=g) * 2 - 1).cuda()
    _, ref, _ = rt.run_torch(model, cond, teacher=x)
    loop = WaveRNNPersistentLoop(model, dtype=dtype)
    _, out, _ = rt.run_cuda(model, cond, teacher=x, loop=loop)
    assert rel_err(out, ref) <= (1e-5 if dtype == torch.float32 else 2e-2)
    if dtype == torch.float32:
        nz = torch.from_numpy(np.stack([rt.draw_noise(model.config, s, T) for s in (0, 1)])).float().cuda()
        ref_s, _, ref_c = rt.run_torch(model, cond, noise=nz)
        got_s, _, got_c = rt.run_cuda(model, cond, noise=nz, loop=loop)
        assert (got_c == ref_c).float().mean() > 0.99


def test_streams_beyond_the_gpu_run_in_groups_of_launches():
    from test_cuda_wavenet import SmallGPU

    model = agf.build("tiny-wavernn", seed=9)
    cfg = model.config
    B, T = 7, 12
    cond = _cond(model, B, T, 4)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).float()
    ref, _, ref_cls = rt.run_torch(model, cond, noise=nz)
    for M, launches in ((None, [(7, 4)]), (2, [(4, 2), (3, 2)])):
        loop = WaveRNNPersistentLoop(model, emulate=True, threads=64, streams_per_chain=M, min_blocks=2)
        nblk = loop.plan(B, 1)["nblk"]
        fake = SmallGPU(2 * nblk)
        loop.emulate, loop.ext = False, fake
        got, _, got_cls = rt.run_cuda(model, cond, noise=nz, loop=loop)
        # None: 7 streams > 2 chains -> 4 per chain, 2 chains fit: one launch of 7 (4 + 3)
        assert fake.launches[:len(launches)] == launches and len(fake.launches) == len(launches)
        assert torch.equal(got_cls, ref_cls)


def test_a_stream_computes_the_same_in_any_batch():
    """4 streams per chain on the blocks of one stream per chain: bit-equal to each alone."""
    model = agf.build("tiny-wavernn", seed=15)
    cfg = model.config
    B, T = 4, 10
    cond = _cond(model, B, T, 16)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).float()
    one = WaveRNNPersistentLoop(model, emulate=True, threads=64, min_blocks=3)
    four = WaveRNNPersistentLoop(model, emulate=True, threads=64, min_blocks=3, streams_per_chain=4)
    assert four.plan(B, 4)["nblk"] == one.plan(1, 1)["nblk"] == 3
    got, _, got_c = rt.run_cuda(model, cond, noise=nz, loop=four)
    for b in range(B):
        alone, _, alone_c = rt.run_cuda(model, [c[b:b + 1] for c in cond], noise=nz[b:b + 1], loop=one)
        assert torch.equal(alone[0], got[b]) and torch.equal(alone_c[0], got_c[b])
