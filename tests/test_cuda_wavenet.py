"""CUDA persistent WaveNet kernel (csrc/cuda/wavenet_persistent.cuh) against the eager loop.

Without a GPU the kernel source runs on the CPU through the fiber emulator
(audiogen_fast._C_cuda_emu: every CUDA thread a fiber, barriers, shuffles and flag waits as yield
points, the run order shuffled between them); with a GPU the same tests also run the real kernel,
and the tests marked gpu add the standard configs.
"""
import os

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.models.wavenet import runtime as rt
from audiogen_fast.ops.wavenet_persistent import WaveNetPersistentLoop
from conftest import HAS_CUDA, first_mismatch_is_a_boundary_flip, rel_err, round_left_operands, rounded_matrices

emu = pytest.importorskip("audiogen_fast._C_cuda_emu")
CUDA_EXT = HAS_CUDA and agf.backends()["cuda"][0]
WHERE = ["emu"] + (["gpu"] if CUDA_EXT else [])

VARIANTS = {
    "mulaw": dict(),
    "mol-k3": dict(kernel_size=3, output="mol", n_mix=3),
    "gaussian": dict(output="gaussian"),
    "odd": dict(residual_channels=7, gate_channels=10, skip_channels=5, out_hidden=9, quantize_channels=33),
    "speaker": dict(gin_channels=3, n_speakers=2),
}
# shared-memory budgets: everything in one layer block ("one-block"), one layer per block
# ("chain": the longest hand-off ring), no weights in shared memory at all ("global": every
# matrix read from global memory)
BUDGETS = ("one-block", "chain", "critical", "global")  # critical: only current tap + residual rows in shared memory


def budget_bytes(loop, kind, B=1, M=1):
    if kind == "one-block":
        return 227 * 1024
    if kind == "global":
        return 64
    for b in range(256, 1 << 20, 64):  # the largest budget that still gives one layer per block
        loop.smem_budget = b
        if loop.plan(B, M)["nblk"] < loop.cfg.layers:
            return b - 64
    raise AssertionError("no budget gives one layer per block")


def critical_loop(model, where, transport):
    """A loop whose budget holds one whole layer per block but several layers' critical matrices
    (current tap, residual rows), planned with pack="critical"."""
    full = make(model, where, transport=transport, pack="full")
    crit = make(model, where, transport=transport, pack="critical")
    L = model.config.layers
    for b in range(256, 1 << 20, 32):
        full.smem_budget = crit.smem_budget = b
        if full.plan(2, 1)["nblk"] == L and crit.plan(2, 1)["nblk"] < L:
            return crit
    raise AssertionError("no budget separates the packings")


def make(model, where, **kw):
    if where == "gpu":
        return WaveNetPersistentLoop(model.cuda(), **kw)
    kw.setdefault("threads", 64)  # fewer fibers: the emulator's cost is per thread
    return WaveNetPersistentLoop(model, emulate=True, **kw)


def dev(where):
    return "cuda" if where == "gpu" else "cpu"


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("transport", ["l2", "dsmem"])
@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_teacher_forced_outputs_match_eager(variant, budget, transport, where):
    model = agf.build("tiny-wavenet", seed=4, **VARIANTS[variant])
    cfg = model.config
    B, T = 2, 19
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g)
    x = (torch.randint(0, cfg.quantize_channels, (B, T), generator=g) if cfg.output == "mulaw"
         else torch.rand(B, T, generator=g) * 2 - 1)
    spk = torch.tensor([1, 0]) if cfg.gin_channels else None
    _, ref = rt.run_torch(model, T, mel=mel, speaker=spk, teacher=x)
    if budget == "critical":
        loop = critical_loop(model, where, transport)
    else:
        loop = make(model, where, transport=transport)
        loop.smem_budget = budget_bytes(loop, budget)
    plan = loop.plan(B, 1)
    assert plan["dsmem"] == (transport == "dsmem")
    if budget == "one-block":
        assert plan["nblk"] == 1 and all(plan["blk_wsmem"])
    elif budget == "critical":
        assert plan["nblk"] < cfg.layers and 2 in plan["blk_wsmem"]
    else:
        assert plan["nblk"] == cfg.layers
        assert all(plan["blk_wsmem"][:-1]) if budget == "chain" else not any(plan["blk_wsmem"])
    d = dev(where)
    _, out = rt.run_cuda(model.to(d), T, mel=mel.to(d), speaker=None if spk is None else spk.to(d),
                         teacher=x.float().to(d), loop=loop)
    assert rel_err(out.cpu(), ref) <= 1e-5


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("transport", ["l2", "dsmem"])
@pytest.mark.parametrize("variant", ["mulaw", "mol-k3", "gaussian"])
def test_sampled_generation_matches_eager_across_chunks_and_chains(variant, transport, where):
    """3 streams, 2 per chain (the second chain half full), 600 samples = two chunks of the
    Session (8 frames of hop 64 each), so the ring buffers and the input carry across launches."""
    model = agf.build("tiny-wavenet", seed=5, **VARIANTS[variant])
    cfg = model.config
    B, T = 3, 600
    mel = torch.randn(B, cfg.n_mels, 10, generator=torch.Generator().manual_seed(2))
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (3, 4, 5)]))
    ref, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    loop = make(model, where, streams_per_chain=2, transport=transport)
    loop.smem_budget = budget_bytes(loop, "chain", B, 2)
    assert loop.plan(B, 2)["nchains"] == 2 and loop.plan(B, 2)["nblk"] == cfg.layers
    d = dev(where)
    got, _ = rt.run_cuda(model.to(d), T, mel=mel.to(d), noise=nz.to(d), loop=loop)
    got = got.cpu()
    if cfg.output == "mulaw":
        # the kernel samples with the reference's float64 rule: only a uniform within rounding of a
        # CDF boundary may flip a class
        first_mismatch_is_a_boundary_flip(model.cpu(), mel, ref, got, nz)
        assert (got == ref).float().mean() > 0.99
    else:
        assert rel_err(got, ref) <= 1e-5


W1_SHAPED = dict(layers=3, stacks=1, residual_channels=64, gate_channels=128, skip_channels=128, out_hidden=128)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_w1_shapes_run_the_fixed_shape_instance_with_the_same_bits(dtype, where):
    """W1's sizes with one stream per chain and 256 threads run the kernel instance whose products
    have compile-time shapes (matvec_fixed): teacher-forced outputs match eager, and sampled and
    teacher-forced outputs are bit-equal to the generic instance's (fixed_shapes=False)."""
    model = agf.build("tiny-wavenet", seed=8, **W1_SHAPED)
    cfg, T = model.config, 24
    g = torch.Generator().manual_seed(3)
    mel = torch.randn(1, cfg.n_mels, 1, generator=g)
    x = torch.randint(0, cfg.quantize_channels, (1, T), generator=g).float()
    nz = torch.from_numpy(rt.draw_noise(cfg, 9, T)[None])
    fixed = make(model, where, dtype=dtype, threads=256, smem_budget=40 * 1024)
    generic = make(model, where, dtype=dtype, threads=256, smem_budget=40 * 1024, fixed_shapes=False)
    assert fixed.shape_variant(1) == 1 and generic.shape_variant(1) == 0 and fixed.shape_variant(2, 2) == 0
    assert fixed.plan(1, 1)["nblk"] >= 2  # a ring, not one block
    d = dev(where)
    m = model.to(d)
    _, tf_fixed = rt.run_cuda(m, T, mel=mel.to(d), teacher=x.to(d), loop=fixed)
    _, tf_generic = rt.run_cuda(m, T, mel=mel.to(d), teacher=x.to(d), loop=generic)
    assert torch.equal(tf_fixed.cpu(), tf_generic.cpu())
    if dtype == torch.float32:
        _, ref = rt.run_torch(model.cpu(), T, mel=mel, teacher=x.long())
        assert rel_err(tf_fixed.cpu(), ref) <= 1e-5
    s_fixed, _ = rt.run_cuda(m, T, mel=mel.to(d), noise=nz.to(d), loop=fixed)
    s_generic, _ = rt.run_cuda(m, T, mel=mel.to(d), noise=nz.to(d), loop=generic)
    assert torch.equal(s_fixed.cpu(), s_generic.cpu())


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("transport", ["l2", "dsmem"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_register_weights_give_the_same_bits(dtype, transport, where):
    """register_weights: the fixed-shape instance with each thread's share of its block's critical
    matrices held in registers (RegSlice) gives the bits of the shared-memory instance, with every
    register slot in use (4 W1-sized layers: fp16 / bf16 blocks of 3 + 1, fp32 2 + 2; fp32 in a
    cluster, whose inboxes take room, 1 a block)."""
    model = agf.build("tiny-wavenet", seed=5, **dict(W1_SHAPED, layers=4))
    cfg, T = model.config, 20
    g = torch.Generator().manual_seed(4)
    mel = torch.randn(1, cfg.n_mels, 1, generator=g)
    x = torch.randint(0, cfg.quantize_channels, (1, T), generator=g).float()
    nz = torch.from_numpy(rt.draw_noise(cfg, 2, T)[None])
    regs = make(model, where, dtype=dtype, threads=256, transport=transport, register_weights=True)
    smem = make(model, where, dtype=dtype, threads=256, transport=transport)
    assert regs.shape_variant(1) == 2 and smem.shape_variant(1) == 1
    lo = regs.plan(1, 1)["blk_lo"]
    per_block = [b - a for a, b in zip(lo, lo[1:])]
    full = 3 if dtype != torch.float32 else 2 if transport == "l2" else 1
    assert max(per_block) == full and len(per_block) >= 2, per_block
    d = dev(where)
    m = model.to(d)
    _, tf_regs = rt.run_cuda(m, T, mel=mel.to(d), teacher=x.to(d), loop=regs)
    _, tf_smem = rt.run_cuda(m, T, mel=mel.to(d), teacher=x.to(d), loop=smem)
    assert torch.equal(tf_regs.cpu(), tf_smem.cpu())
    s_regs, _ = rt.run_cuda(m, T, mel=mel.to(d), noise=nz.to(d), loop=regs)
    s_smem, _ = rt.run_cuda(m, T, mel=mel.to(d), noise=nz.to(d), loop=smem)
    assert torch.equal(s_regs.cpu(), s_smem.cpu())
    with pytest.raises(ValueError, match="register_weights needs fixed_shapes"):
        make(model, where, dtype=dtype, threads=256, register_weights=True, fixed_shapes=False)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_weights_equal_fp32_math_on_rounded_weights(dtype, where):  # "auto": dsmem on the emulator
    """fp16 / bf16 storage, fp32 arithmetic: the outputs equal the eager fp32 loop run with the
    matrices rounded to that dtype (biases, embedding and conditioning stay fp32)."""
    model = agf.build("tiny-wavenet", seed=7)
    rounded = rounded_matrices(model, dtype)
    cfg = model.config
    B, T = 2, 17
    g = torch.Generator().manual_seed(3)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g)
    x = torch.randint(0, 256, (B, T), generator=g)
    _, ref = rt.run_torch(rounded, T, mel=mel, teacher=x)
    _, ref32 = rt.run_torch(model, T, mel=mel, teacher=x)
    d = dev(where)
    loop = make(model, where, dtype=dtype)
    _, out = rt.run_cuda(model.to(d), T, mel=mel.to(d), teacher=x.float().to(d), loop=loop)
    assert rel_err(out.cpu(), ref) <= 1e-5
    assert rel_err(out.cpu(), ref32) > 1e-5  # the rounding is really there


def test_plan_packs_layers_by_shared_memory():
    model = agf.build("W1", seed=0)
    big = WaveNetPersistentLoop(model, emulate=True)                  # an H100's 227 KB per block
    p32 = big.plan(1, 1)
    half = WaveNetPersistentLoop(model, emulate=True, dtype=torch.float16)
    p16 = half.plan(1, 1)
    # W1 layer: 115 KB of weights in fp32 -> two layers per block (229 KB + vectors); fp16 -> three
    assert p32["nblk"] == 10 and p32["blk_lo"] == list(range(0, 21, 2))
    assert p16["nblk"] == 7 and p16["blk_lo"][:3] == [0, 3, 6]
    assert all(p16["blk_wsmem"]) and p32["blk_wsmem"][-1] == 0   # fp32 output stack (393 KB) stays in L2
    # W4's layers do not fit a block whole (262 KB fp16): their critical matrices do (mode 2)
    w4 = WaveNetPersistentLoop(agf.build("W4", seed=0), emulate=True, dtype=torch.float16).plan(1, 1)
    assert w4["blk_wsmem"][:-1] == [2] * w4["nblk"] and w4["nblk"] == 12
    # pack="critical": W2 fp32 in 5 layer blocks instead of 20
    w2 = agf.build("W2", seed=0)
    assert WaveNetPersistentLoop(w2, emulate=True).plan(1, 1)["nblk"] == 20
    assert WaveNetPersistentLoop(w2, emulate=True, pack="critical").plan(1, 1)["nblk"] == 5
    assert max(p16["smem"], p32["smem"]) <= 227 * 1024
    eight = big.plan(20, 8)
    n = eight["nblk"]
    assert eight["nchains"] == 3 and eight["mail_floats"] == 3 * ((n + 1) * 8 * 64 + n * 8 * 128)
    assert eight["n_flags"] == 3 * (2 * n + 1)


def test_launch_inputs_must_be_on_the_weights_device():
    """check_tensor (the CUDA and Triton loops' wrappers): a device type other than the weights' is
    named; a device named with an index must match it, one named without (plain "cuda") takes any."""
    from audiogen_fast.ops._persistent import check_tensor

    check_tensor(torch.zeros(2, 3), "x", (2, 3), "cpu")
    with pytest.raises(ValueError, match="x is on meta, the weights on cpu"):
        check_tensor(torch.zeros(2, 3, device="meta"), "x", (2, 3), "cpu", finite=False)
    meta = torch.zeros(2, 3, device="meta")   # no index, like a tensor on another GPU than cuda:0
    check_tensor(meta, "x", (2, 3), "meta", finite=False)
    with pytest.raises(ValueError, match="x is on meta, the weights on meta:0"):
        check_tensor(meta, "x", (2, 3), torch.device("meta", 0), finite=False)
    with pytest.raises(ValueError, match="NaN or infinity"):
        check_tensor(torch.tensor([[0.0, float("nan")]]), "x", (1, 2), "cpu")
    check_tensor(torch.tensor([[0.0, float("nan")]]), "x", (1, 2), "cpu", finite=False)   # the Triton loops' form


def test_wrapper_rejects_bad_input():
    model = agf.build("tiny-wavenet")
    loop = WaveNetPersistentLoop(model, emulate=True, threads=64)
    hist, x = loop.new_state(1, 128)
    cond = torch.zeros(1, 4, 4, 16)
    nz = torch.full((1, 4, 1), 0.5)
    with pytest.raises(ValueError, match="cond"):
        loop.run_chunk(torch.zeros(1, 4, 4, 15), hist, x, 0, noise=nz)
    with pytest.raises(ValueError, match="noise"):
        loop.run_chunk(cond, hist, x, 0, noise=torch.zeros(1, 3, 1))
    with pytest.raises(ValueError, match="hist"):
        loop.run_chunk(cond, hist[:, 1:], x, 0, noise=nz)
    with pytest.raises(ValueError, match="float32"):
        loop.run_chunk(cond.double(), hist, x, 0, noise=nz)
    with pytest.raises(ValueError, match="NaN"):
        loop.run_chunk(torch.full((1, 4, 4, 16), float("nan")), hist, x, 0, noise=nz)
    with pytest.raises(ValueError, match="class indices"):
        loop.run_chunk(cond, hist, x, 0, teacher=torch.tensor([[1.0, 2.0, 256.0, 3.0]]))
    with pytest.raises(ValueError, match="class indices"):
        loop.run_chunk(cond, hist, x, 0, teacher=torch.tensor([[1.0, 2.5, 3.0, 3.0]]))
    with pytest.raises(ValueError, match="streams_per_chain"):
        WaveNetPersistentLoop(model, emulate=True, streams_per_chain=17)
    with pytest.raises(ValueError, match="dtype"):
        WaveNetPersistentLoop(model, emulate=True, dtype=torch.float64)
    # the binding checks what the kernel relies on even when called directly
    d = dict(loop.base, B=1, M=1, Tc=4, t0=0, teacher=0, tag=1 << 32, dil=[1, 2, 1])
    for k in ("cond", "hist", "x", "noise", "teacher_in", "out", "logits", "mail", "flags"):
        d[k] = 0
    with pytest.raises(ValueError, match="one entry per layer"):
        emu.wavenet_persistent_plan(d, 227 * 1024, 0)
    d.update(dil=[1, 2, 1, 2], Rp=7)
    with pytest.raises(ValueError, match="multiples of 8"):
        emu.wavenet_persistent_plan(d, 227 * 1024, 0)


def test_emulator_reports_deadlock_and_races():
    """The emulator's own claims: a wait nobody satisfies raises instead of hanging, a read of
    another thread's shared-memory write without a barrier is caught by the shuffled order, and a
    vector load that is not aligned to its width fails the launch."""
    with pytest.raises(RuntimeError, match="deadlock"):
        emu.selftest("deadlock", 0)
    assert emu.selftest("barrier", 0) == 0                         # with the barrier: always right
    assert max(emu.selftest("race", s) for s in range(4)) > 0      # without: wrong for some order
    assert emu.selftest("shuffle", 0) == 0                         # xor / up / idx shuffles as on a GPU
    emu.selftest("aligned", 0)                                     # aligned: no fault (raises otherwise)
    with pytest.raises(RuntimeError, match="misaligned activation vector"):  # a GPU faults on it
        emu.selftest("misaligned", 0)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_EXT, reason="needs the CUDA extension and a GPU")
@pytest.mark.parametrize("transport", ["l2", "dsmem"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_w1_on_gpu(dtype, transport):
    model = agf.build("W1", seed=0).cuda()
    cfg = model.config
    B, T = 2, 300
    mel = torch.randn(B, cfg.n_mels, 2, device="cuda")
    x = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(0)).cuda()
    _, ref = rt.run_torch(model, T, mel=mel, teacher=x)
    loop = WaveNetPersistentLoop(model, dtype=dtype, transport=transport)
    if transport == "dsmem" and dtype == torch.float32:
        # W1's fp32 weights (2.7 MB) need more layer blocks than a 16-block cluster holds: asking
        # for the cluster transport must say so (the "l2" case runs this model)
        with pytest.raises(ValueError, match="16-block cluster"):
            rt.run_cuda(model, T, mel=mel, teacher=x.float(), loop=loop)
        return
    _, out = rt.run_cuda(model, T, mel=mel, teacher=x.float(), loop=loop)
    assert rel_err(out, ref) <= (1e-5 if dtype == torch.float32 else 2e-2)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (0, 1)])).cuda()
    ref_s, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    got_s, _ = rt.run_cuda(model, T, mel=mel, noise=nz, loop=loop)
    if dtype == torch.float32:
        first_mismatch_is_a_boundary_flip(model, mel, ref_s, got_s, nz.cpu())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_EXT, reason="needs the CUDA extension and a GPU")
def test_many_streams_on_gpu_equal_each_alone():
    """More chains than fit at once with one stream each: 8 streams per chain, several launches."""
    model = agf.build("W1", seed=1).cuda().half()
    cfg = model.config
    B, T = 40, 200
    mel = torch.randn(B, cfg.n_mels, 1, device="cuda").half()
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).cuda()
    loop = WaveNetPersistentLoop(model)
    got, _ = rt.run_cuda(model, T, mel=mel, noise=nz, loop=loop)
    for b in (0, 17, 39):
        alone, _ = rt.run_cuda(model, T, mel=mel[b:b + 1], noise=nz[b:b + 1], loop=loop)
        assert torch.equal(alone[0], got[b])


@pytest.mark.parametrize("where", WHERE)
def test_handoff_ring_protocol(where):
    """The floor benchmark's ring (the kernels' mailbox protocol): every one of iters * nblk
    messages is received exactly once and in order, the payload arrives intact."""
    from audiogen_fast._cuda import handoff_bench

    r = handoff_bench(nblk=5, iters=7, payload=40, threads=64, emulate=(where == "emu"))
    assert r["token"] == 35 and r["rest_zero"]


def _warp_softmax_margin():
    """kWarpSoftmaxMargin of csrc/cuda/kernel_common.cuh."""
    import re

    src = open(os.path.join(os.path.dirname(__file__), "..", "csrc", "cuda", "kernel_common.cuh")).read()
    return float(re.search(r"kWarpSoftmaxMargin = ([0-9.e-]+)f;", src).group(1))


@pytest.mark.parametrize("where", WHERE)
def test_warp_sampler_is_the_float64_rule(where):
    """The kernels' softmax sampler (fp32 first, the float64 rule within a margin of a CDF boundary)
    picks exactly the class of audiogen_fast.sampling.sample_softmax, on random logits of several
    widths and scales (with masked classes, a row with none left, u on a boundary); the fp32 pass
    decides every draw whose u lies well away from a boundary, the float64 rule every draw close to one."""
    from audiogen_fast._cuda import warp_sampler
    from audiogen_fast.sampling import sample_softmax

    margin = _warp_softmax_margin()
    g = torch.Generator().manual_seed(5)
    emulate = where == "emu"
    for n, scale, rows in ((256, 3.0, 160), (512, 1.0, 96), (33, 8.0, 96), (10, 0.5, 64), (1, 1.0, 8), (1100, 2.0, 8)):
        logits = torch.randn(rows, n, generator=g) * scale
        logits[1: rows // 8, : n // 2] = -float("inf")  # masked classes
        logits[0] = -float("inf")                       # nothing left: the float64 rule's answer (class 0)
        e = torch.exp(logits.double() - logits.double().max(1, keepdim=True).values)
        c = torch.cumsum(e, 1)
        u = torch.rand(rows, generator=g)
        u[-4:] = (c[-4:, n // 3] / c[-4:, -1]).float()  # on (within fp32 rounding of) a boundary
        got, fell = warp_sampler(logits, u, emulate=emulate)
        ref = sample_softmax(logits, u)
        assert torch.equal(got, ref)
        # distance of u * sum from the chosen class's edges, in units of the sum (float64)
        t = u.double() * c[:, -1]
        hi = c.gather(1, ref[:, None])[:, 0]
        lo = torch.where(ref > 0, c.gather(1, (ref - 1).clamp(min=0)[:, None])[:, 0], torch.zeros_like(hi))
        gap = torch.minimum(hi - t, t - lo) / c[:, -1]
        print(n, "fell back", int(fell.sum()), "of", rows)
        assert fell[0] and fell[-4:].all()
        if n <= 1024:
            assert not fell[1:][gap[1:] > 2 * margin].any()
        assert fell[gap < margin / 2].all()


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matvec_bench_computes_the_product(where, dtype):
    """The product floor's kernel (block_bench.cuh) runs the kernels' block_matvec: its result is
    W x (the weights rounded to their storage type), and with gate=True the gate of each row pair;
    the compile-time-shaped matvec_fixed gives the same bits at W1's shapes, and with its weights in
    registers (matvec_fixed_regs) at a layer's two."""
    from audiogen_fast._cuda import matvec_bench

    g = torch.Generator().manual_seed(6)
    for rows, cols, gate in ((128, 64, True), (64, 64, False), (24, 40, False), (10, 16, True)):
        w = torch.randn(rows, cols, generator=g) / cols ** 0.5
        x = torch.randn(cols, generator=g)
        r = matvec_bench(rows, cols, gate=gate, dtype=dtype, iters=3, threads=64 if where == "emu" else 256,
                         weights=w, x=x, emulate=where == "emu")
        a = w.to(dtype).double() @ x.double()
        ref = torch.zeros(rows, dtype=torch.float64)
        if gate:
            ref[0::2] = torch.tanh(a[0::2]) * torch.sigmoid(a[1::2])
        else:
            ref = a
        err = (r["y"].double() - ref).abs().max().item()
        print(rows, cols, gate, dtype, "max abs err", err)
        assert err <= 2e-6 * max(1.0, ref.abs().max().item())
        assert r["ticks_per_product"] > 0
    # the compile-time-shaped product: the same units, lanes and order, so the same bits
    for rows, cols, gate in ((128, 64, True), (64, 64, False), (128, 64, False), (128, 128, False), (256, 128, False)):
        w = torch.randn(rows, cols, generator=g) / cols ** 0.5
        x = torch.randn(cols, generator=g)
        kw = dict(gate=gate, dtype=dtype, iters=2, weights=w, x=x, emulate=where == "emu")
        generic = matvec_bench(rows, cols, **kw)["y"]
        assert torch.equal(matvec_bench(rows, cols, fixed=True, **kw)["y"], generic)
        if (rows, cols) in ((128, 64), (64, 64)) and gate == (rows == 128):  # a layer's two products
            assert torch.equal(matvec_bench(rows, cols, fixed=True, regs=True, **kw)["y"], generic)
    with pytest.raises(ValueError, match="multiple of 8"):
        matvec_bench(16, 12, dtype=dtype, emulate=where == "emu")
    with pytest.raises(ValueError, match="no fixed-shape instance"):
        matvec_bench(64, 32, fixed=True, dtype=dtype, emulate=where == "emu")
    with pytest.raises(ValueError, match="register weights for a layer's two shapes only"):
        matvec_bench(128, 128, fixed=True, regs=True, dtype=dtype, emulate=where == "emu")
    with pytest.raises(ValueError, match="pass fixed=True too"):
        matvec_bench(64, 64, regs=True, dtype=dtype, emulate=where == "emu")


class SmallGPU:
    """The emulator dressed as a GPU that holds `blocks` resident blocks: drives the wrappers'
    GPU-only path (stream grouping into several launches, streams per chain chosen by occupancy)."""

    def __init__(self, blocks):
        self.blocks, self.launches = blocks, []

    def __getattr__(self, name):
        return getattr(emu, name)

    def wavenet_persistent_max_blocks(self, wtype, M, threads, smem):
        return self.blocks

    def wavernn_persistent_max_blocks(self, wtype, M, threads, smem):
        return self.blocks

    def wavenet_persistent_max_clusters(self, d, budget, wtype, threads):
        return self.blocks // (emu.wavenet_persistent_plan(d, budget, wtype)["nblk"] + 1)

    def wavenet_persistent(self, d, budget, wtype, threads, stream):
        self.launches.append((d["B"], d["M"]))
        emu.wavenet_persistent(d, budget, wtype, threads, 0)

    def wavernn_persistent(self, d, budget, wtype, lo, hi, threads, stream):
        self.launches.append((d["B"], d["M"]))
        emu.wavernn_persistent(d, budget, wtype, lo, hi, threads, 0)


def test_streams_beyond_the_gpu_run_in_groups_of_launches():
    """7 streams on a 'GPU' that holds 2 chains. Global-memory transport: 8 streams per chain are
    chosen, and with a fixed 1 stream per chain, 4 launches of 2, 2, 2, 1 streams. Clusters: one
    launch (the hardware runs clusters as SMs free up). Every stream equals the reference."""
    model = agf.build("tiny-wavenet", seed=8)
    cfg = model.config
    B, T = 7, 40
    mel = torch.randn(B, cfg.n_mels, 1, generator=torch.Generator().manual_seed(9))
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
    ref, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    for tr, M, launches in (("l2", None, [(7, 7)]), ("l2", 1, [(2, 1), (2, 1), (2, 1), (1, 1)]),
                            ("dsmem", 1, [(7, 1)]), ("dsmem", None, [(7, 7)])):
        loop = WaveNetPersistentLoop(model, emulate=True, threads=64, streams_per_chain=M, transport=tr)
        fake = SmallGPU(2 * (loop.plan(B, 1)["nblk"] + 1))
        loop.emulate, loop.ext = False, fake
        got, _ = rt.run_cuda(model, T, mel=mel, noise=nz, loop=loop)
        assert fake.launches == launches
        first_mismatch_is_a_boundary_flip(model, mel, ref, got, nz)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("transport", ["l2", "dsmem"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tensor_core_variant_for_16_streams(dtype, transport, where, monkeypatch):
    """9-16 streams per chain with 16-bit weights run on tensor cores (mma m16n8k16): the
    activations enter each product rounded to the weights' type, with fp32 accumulation. The
    reference is the eager loop with the matrices rounded and every product's left operand
    rounded the same way (torch.addmm / F.linear patched for both runs, so the conditioning the
    Session computes is the same too)."""
    model = agf.build("tiny-wavenet", seed=11, residual_channels=16, gate_channels=32, skip_channels=24)
    rounded = rounded_matrices(model, dtype)
    round_left_operands(monkeypatch, dtype)
    cfg = model.config
    B, T = 13, 24
    g = torch.Generator().manual_seed(12)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g)
    x = torch.randint(0, 256, (B, T), generator=g)
    _, ref = rt.run_torch(rounded, T, mel=mel, teacher=x)
    loop = make(model, where, dtype=dtype, streams_per_chain=16, transport=transport)
    d = dev(where)
    _, out = rt.run_cuda(model.to(d), T, mel=mel.to(d), teacher=x.float().to(d), loop=loop)
    out = out.cpu()
    # fp32 sums in another order can move an activation across a rounding boundary of the 16-bit
    # type: a one-ulp difference (2^-11 fp16, 2^-8 bf16) at a few outputs, exact elsewhere
    ulp = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}[dtype]
    scale = ref.abs().max().item()
    mean_ref = (out - ref).abs().mean().item() / scale
    assert rel_err(out, ref) <= ulp and mean_ref <= 1e-5
    monkeypatch.undo()
    _, plain = rt.run_torch(rounded, T, mel=mel, teacher=x)
    mean_plain = (out - plain).abs().mean().item() / scale
    # the activations' rounding is really there, and modelled: the kernel is far closer to the
    # model with rounded activations than to the one without (without the rounding the two means
    # would be about equal). Measured: emulator fp16 140x, bf16 exact; H200 fp16 8.6x (its fast-math
    # exp and tensor-core accumulation add ~4e-6 of their own), bf16 passed
    assert mean_plain > 5 * mean_ref


@pytest.mark.parametrize("where", WHERE)
def test_profile_counts_every_phase_and_changes_nothing(where):
    """profile=True sums clock ticks per phase and block (thread 0, between barriers): the samples
    are bit-equal to an unprofiled run, every phase of every block is counted, and the report is
    per sample of a chain, summed over calls until reset_profile()."""
    from audiogen_fast.ops.wavenet_persistent import LAYER_PHASES, OUTPUT_PHASES

    model = agf.build("tiny-wavenet", seed=3)
    cfg, B, T = model.config, 2, 20
    d = dev(where)
    mel = torch.randn(B, cfg.n_mels, 1, generator=torch.Generator().manual_seed(1)).to(d)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).to(d)
    plain = make(model, where, smem_budget=6000)  # two layer blocks: a ring, not one block
    prof = make(model, where, smem_budget=6000, profile=True)
    with pytest.raises(RuntimeError, match="no profile"):
        prof.profile_report()
    ref, _ = rt.run_cuda(model.to(d), T, mel=mel, noise=nz, loop=plain)
    got, _ = rt.run_cuda(model.to(d), T, mel=mel, noise=nz, loop=prof)
    assert torch.equal(got.cpu(), ref.cpu())
    rep = prof.profile_report()
    nblk = prof.plan(B, 1)["nblk"]
    assert nblk == 2 and len(rep["layer"]) == nblk and rep["samples"] == B * T  # one stream per chain
    for blk in rep["layer"]:
        assert set(blk) == set(LAYER_PHASES) and min(blk.values()) >= 1
    assert set(rep["output"]) == set(OUTPUT_PHASES) and min(rep["output"].values()) >= 1
    rt.run_cuda(model.to(d), T, mel=mel, noise=nz, loop=prof)
    assert prof.profile_report()["samples"] == 2 * B * T
    prof.reset_profile()
    with pytest.raises(RuntimeError, match="no profile"):
        prof.profile_report()


@pytest.mark.parametrize("transport", ["l2", "dsmem"])
def test_a_stream_computes_the_same_in_any_batch(transport):
    """Up to 8 streams per chain: every stream's samples are bit-equal to running it alone, even
    where the budget gives several streams per chain less room (same layer partition, weights
    moved to global memory instead)."""
    model = agf.build("tiny-wavenet", seed=13)
    cfg = model.config
    B, T = 6, 60
    mel = torch.randn(B, cfg.n_mels, 1, generator=torch.Generator().manual_seed(14))
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)]))
    loop1 = make(model, "emu", transport=transport)
    loop1.smem_budget = budget_bytes(loop1, "chain")  # one layer per block, tight
    together = make(model, "emu", transport=transport, streams_per_chain=6, smem_budget=loop1.smem_budget)
    p1, p6 = loop1.plan(1, 1), together.plan(B, 6)
    assert p6["blk_lo"] == p1["blk_lo"] and p6["blk_wsmem"] != p1["blk_wsmem"]  # same partition, other homes
    got, _ = rt.run_cuda(model, T, mel=mel, noise=nz, loop=together)
    for b in range(B):
        alone, _ = rt.run_cuda(model, T, mel=mel[b:b + 1], noise=nz[b:b + 1], loop=loop1)
        assert torch.equal(alone[0], got[b])
