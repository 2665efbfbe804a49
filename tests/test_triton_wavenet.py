"""Triton WaveNet loop (audiogen_fast/ops/wavenet_loop.py) against the eager reference loop.

Without a GPU these run in the Triton interpreter (tiny shapes, fp32); with one, on the GPU,
and the tests marked gpu add the standard configs and half precision.
"""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import HAS_CUDA, first_mismatch_is_a_boundary_flip, rel_err, round_left_operands, rounded_matrices, triton_device

pytest.importorskip("triton")
from audiogen_fast.models.wavenet import runtime as rt  # noqa: E402

DEV = triton_device()


VARIANTS = {
    "mulaw": dict(),
    "mol-k3": dict(kernel_size=3, output="mol", n_mix=3),
    "gaussian": dict(output="gaussian"),
    "odd": dict(residual_channels=7, gate_channels=10, skip_channels=5, out_hidden=9, quantize_channels=33),
    "speaker": dict(gin_channels=3, n_speakers=2),
}


@pytest.mark.parametrize("kind", ["one-stream", "multi-stream"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_teacher_forced_outputs_match_eager(variant, kind):
    """3 streams: one program each (wavenet_loop), or all in one program of 16 (wavenet_loop_mm,
    13 padding rows, fp32 "ieee" dots); every model variant (odd sizes pad every channel count)."""
    if kind == "multi-stream" and DEV == "cuda" and variant != "mulaw":
        pytest.skip("on a GPU one variant: exact fp32 dots compile slowly (the 16-bit paths are the GPU's)")
    model = agf.build("tiny-wavenet", seed=4, **VARIANTS[variant]).to(DEV)
    cfg = model.config
    B, T = 3, 19
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g).to(DEV)
    x = (torch.randint(0, cfg.quantize_channels, (B, T), generator=g) if cfg.output == "mulaw"
         else torch.rand(B, T, generator=g) * 2 - 1).to(DEV)
    spk = torch.tensor([1, 0, 1], device=DEV) if cfg.gin_channels else None
    _, ref = rt.run_torch(model, T, mel=mel, speaker=spk, teacher=x)
    loop = None
    if kind == "multi-stream":
        from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM

        loop = WaveNetLoopMM(model, dtype=torch.float32)
    _, out = rt.run_triton(model, T, mel=mel, speaker=spk, teacher=x.float(), loop=loop)
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("variant", ["mulaw", "mol-k3", "gaussian"])
def test_sampled_generation_matches_eager(variant):
    """mu-law over two blocks of the Session (600 samples, blocks of 8 frames x hop 64): the ring
    buffers and the input carry from one launch to the next."""
    model = agf.build("tiny-wavenet", seed=5, **VARIANTS[variant]).to(DEV)
    cfg = model.config
    B, T = 2, 600 if variant == "mulaw" else 23  # the interpreter's time: one long case
    mel = torch.randn(B, cfg.n_mels, 10, generator=torch.Generator().manual_seed(2)).to(DEV)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (3, 4)])).to(DEV)
    ref, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    got, _ = rt.run_triton(model, T, mel=mel, noise=nz)
    if cfg.output == "mulaw":
        first_mismatch_is_a_boundary_flip(model, mel, ref, got, nz.cpu())
    else:
        # continuous samples: fp32 in-kernel sampling vs the float64 reference rule
        assert rel_err(got, ref) <= 1e-5


def test_vocoder_triton_backend_through_engine():
    if not HAS_CUDA:
        pytest.skip("the engine picks the triton backend only on a CUDA device")
    model = agf.build("tiny-wavenet", seed=6)
    mel = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    a = agf.Vocoder(model, device="cuda", backend="triton").generate(mel=mel, seed=1)
    b = agf.Vocoder(agf.build("tiny-wavenet", seed=6), device="cuda", backend="torch").generate(mel=mel, seed=1)
    assert a.shape == b.shape == (256,)
    assert np.mean(a == b) > 0.9  # equal up to (rare) boundary flips, which the tests above bound


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("preset", ["W1", "W4"])
def test_standard_configs_on_gpu(preset):
    model = agf.build(preset, seed=0).cuda()
    cfg = model.config
    B, T = 2, 300
    mel = torch.randn(B, cfg.n_mels, 2, device="cuda")
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 256, (B, T), generator=g) if cfg.output == "mulaw" else torch.rand(B, T, generator=g) * 2 - 1).cuda()
    _, ref = rt.run_torch(model, T, mel=mel, teacher=x)
    _, out = rt.run_triton(model, T, mel=mel, teacher=x.float())
    assert rel_err(out, ref) <= 1e-5
    if cfg.output == "mulaw":
        nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (0, 1)])).cuda()
        ref_s, _ = rt.run_torch(model, T, mel=mel, noise=nz)
        got_s, _ = rt.run_triton(model, T, mel=mel, noise=nz)
        first_mismatch_is_a_boundary_flip(model, mel, ref_s, got_s, nz.cpu())


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_weights_error_within_2x_of_torch(dtype):
    """fp16/bf16 weights: error vs an fp64 reference no more than 2x that of torch at that precision."""
    model = agf.build("W1", seed=0).cuda()
    cfg = model.config
    B, T = 1, 200
    mel = torch.randn(B, cfg.n_mels, 1, device="cuda")
    x = torch.randint(0, 256, (B, T), generator=torch.Generator().manual_seed(0)).cuda()
    _, ref64 = rt.run_torch(model.double(), T, mel=mel.double(), teacher=x)
    model = model.float()
    half = agf.build("W1", seed=0).cuda().to(dtype)
    _, torch_half = rt.run_torch(half, T, mel=mel.to(dtype), teacher=x)
    loop = rt.triton_loop(model, weight_dtype=dtype)
    _, ours = rt.run_triton(model, T, mel=mel, teacher=x.float(), loop=loop)
    e_torch = rel_err(torch_half, ref64)
    e_ours = rel_err(ours, ref64)
    assert e_ours <= 2 * e_torch


@pytest.mark.parametrize("kind", ["one-stream", "multi-stream"])
def test_launch_wrapper_rejects_wrong_sizes(kind):
    model = agf.build("tiny-wavenet").to(DEV)
    if kind == "one-stream":
        loop = rt.triton_loop(model)
    else:
        from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM

        with pytest.raises(ValueError, match="streams_per_program"):
            WaveNetLoopMM(model, dtype=torch.float32, streams_per_program=8)
        loop = WaveNetLoopMM(model, dtype=torch.float32)
    hist, x = loop.new_state(1, 128)
    cond = torch.zeros(1, 4, 4, 16, device=DEV)
    with pytest.raises(ValueError, match="cond"):
        loop.run_chunk(torch.zeros(1, 4, 4, 15, device=DEV), hist, x, 0, noise=torch.zeros(1, 4, 1, device=DEV))
    with pytest.raises(ValueError, match="noise"):
        loop.run_chunk(cond, hist, x, 0, noise=torch.zeros(1, 3, 1, device=DEV))
    with pytest.raises(ValueError, match="hist"):
        loop.run_chunk(cond, hist[:, 1:], x, 0, noise=torch.zeros(1, 4, 1, device=DEV))
    with pytest.raises(ValueError, match="float32"):
        loop.run_chunk(cond.double(), hist, x, 0, noise=torch.zeros(1, 4, 1, device=DEV))
    with pytest.raises(ValueError, match="noise or teacher"):
        loop.run_chunk(cond, hist, x, 0)


# ---- BM streams per program on tensor cores (audiogen_fast/ops/wavenet_loop_mm.py) -------------

@pytest.mark.parametrize("variant", ["mulaw", "mol-k3", "gaussian"])
def test_multi_stream_loop_sampled_matches_eager_and_each_stream_alone(variant):
    """Sampled generation over two programs (17 streams, 16 per program), for mu-law across two
    chunks (600 samples: the ring buffers and inputs carry over); a stream's samples do not depend
    on which streams share its program (fp32: bit-equal to the stream run alone)."""
    from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM

    if DEV == "cuda" and variant != "mulaw":
        pytest.skip("on a GPU one variant: exact fp32 dots compile slowly (the 16-bit paths are the GPU's)")
    model = agf.build("tiny-wavenet", seed=5, **VARIANTS[variant]).to(DEV)
    cfg = model.config
    B, T = 17, 600 if variant == "mulaw" else 120  # the interpreter's time: one long case
    mel = torch.randn(B, cfg.n_mels, 10, generator=torch.Generator().manual_seed(2)).to(DEV)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in range(B)])).to(DEV)
    ref, _ = rt.run_torch(model, T, mel=mel, noise=nz)
    loop = WaveNetLoopMM(model, dtype=torch.float32)
    got, _ = rt.run_triton(model, T, mel=mel, noise=nz, loop=loop)
    if cfg.output == "mulaw":
        first_mismatch_is_a_boundary_flip(model, mel, ref, got, nz.cpu())
        assert (got == ref).float().mean() > 0.99
    else:
        assert rel_err(got, ref) <= 1e-5
    # the kernel alone, same conditioning bits (the Session's batched matmul need not give them):
    # the last stream run in a program of its own
    Tc = 40
    cond = torch.randn(B, Tc, cfg.layers, cfg.gate_channels, generator=torch.Generator().manual_seed(3)).to(DEV)
    hist, x0 = loop.new_state(B, 128 if cfg.output == "mulaw" else 0.0)
    u = nz.reshape(B, T, -1)[:, :Tc].float().contiguous()
    batched = loop.run_chunk(cond, hist, x0, 0, noise=u)
    hist1, x1 = loop.new_state(1, 128 if cfg.output == "mulaw" else 0.0)
    alone = loop.run_chunk(cond[16:].contiguous(), hist1, x1, 0, noise=u[16:].contiguous())
    assert torch.equal(alone[0], batched[16]) and torch.equal(hist1[0], hist[16])


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_multi_stream_loop_half_weights_on_gpu(dtype, monkeypatch):
    """16-bit weights on tensor cores: the activations enter each dot rounded to the weights' type,
    fp32 accumulation. Reference: the eager loop with the matrices rounded and every product's left
    operand rounded the same way (as the CUDA kernel's tensor-core test); also W1 in fp16 within 2x
    of torch fp16's error against fp64."""
    from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM

    model = agf.build("tiny-wavenet", seed=11, residual_channels=16, gate_channels=32, skip_channels=24).cuda()
    rounded = rounded_matrices(model, dtype)
    round_left_operands(monkeypatch, dtype)
    cfg = model.config
    B, T = 20, 24
    g = torch.Generator().manual_seed(12)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g).cuda()
    x = torch.randint(0, 256, (B, T), generator=g).cuda()
    _, ref = rt.run_torch(rounded, T, mel=mel, teacher=x)
    loop = WaveNetLoopMM(model, dtype=dtype)
    _, out = rt.run_triton(model, T, mel=mel, teacher=x.float(), loop=loop)
    monkeypatch.undo()
    ulp = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}[dtype]
    scale = ref.abs().max().item()
    print(dtype, "max rel", rel_err(out, ref), "mean rel", (out - ref).abs().mean().item() / scale)
    assert rel_err(out, ref) <= 4 * ulp and (out - ref).abs().mean().item() / scale <= 1e-4
    if dtype == torch.float16:  # W1: within 2x of torch fp16's own error against fp64
        w1 = agf.build("W1", seed=0).cuda()
        melw = torch.randn(2, w1.config.n_mels, 1, device="cuda")
        xw = torch.randint(0, 256, (2, 200), generator=torch.Generator().manual_seed(0)).cuda()
        _, ref64 = rt.run_torch(w1.double(), 200, mel=melw.double(), teacher=xw)
        w1 = w1.float()
        _, torch_half = rt.run_torch(agf.build("W1", seed=0).cuda().half(), 200, mel=melw.half(), teacher=xw)
        _, ours = rt.run_triton(w1, 200, mel=melw, teacher=xw.float(), loop=WaveNetLoopMM(w1, dtype=dtype))
        assert rel_err(ours, ref64) <= 2 * rel_err(torch_half, ref64)


def test_the_kernel_weights_follow_the_model():
    """triton_loop's kernel-layout weights are rebuilt when the weights change in place
    (load_state_dict copies into the existing tensors) or their dtype is asked differently."""
    model = agf.build("tiny-wavenet", seed=0).to(DEV)
    loop = rt.triton_loop(model)
    assert rt.triton_loop(model) is loop
    model.load_state_dict(agf.build("tiny-wavenet", seed=1).state_dict())
    fresh = rt.triton_loop(model)
    assert fresh is not loop and rt.triton_loop(model) is fresh
    assert rt.triton_loop(model, weight_dtype=torch.float16) is not fresh
