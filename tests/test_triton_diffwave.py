"""Triton DiffWave kernels (audiogen_fast/ops/diffwave_layer.py) against the eager reference."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import HAS_CUDA, rel_err, triton_device

pytest.importorskip("triton")
from audiogen_fast.models.diffwave import runtime as rt  # noqa: E402
from audiogen_fast.models.diffwave.reference import Schedule  # noqa: E402

DEV = triton_device()


def _noise(cfg, sched, n, seeds):
    return torch.from_numpy(np.stack([rt.draw_noise(cfg, s, n, sched) for s in seeds])).transpose(0, 1).contiguous()


@pytest.mark.parametrize("kw,frames", [(dict(residual_channels=16, residual_layers=3), 3),
                                       (dict(residual_channels=16, residual_layers=2, conditional=False), 0),
                                       (dict(residual_channels=32, residual_layers=2, n_mels=20), 1)])
def test_denoise_loop_matches_eager(kw, frames):
    model = agf.build("tiny-diffwave", seed=2, **kw).to(DEV)
    cfg = model.config
    B = 2
    T = frames * cfg.hop_length if cfg.conditional else 77  # odd length: partial tiles
    mel = torch.randn(B, cfg.n_mels, frames, device=DEV) if cfg.conditional else None
    sched = Schedule.from_config(cfg, "fast")
    nz = _noise(cfg, sched, T, (0, 1)).to(DEV)
    ref = rt.run_torch(model, sched, nz, mel=mel)
    out = rt.run_triton(model, sched, nz, mel=mel, kernels=rt.triton_kernels(model, block_t=32))
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.gpu
@pytest.mark.timeout(200)  # ptxas takes over a minute on the fp32 ("ieee") kernel at C = 64
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_d1_on_gpu_fp32_and_graph_replay():
    model = agf.build("D1", seed=0).cuda()
    cfg = model.config
    mel = torch.randn(1, 80, 40, device="cuda")
    T = 40 * 256
    sched = Schedule.from_config(cfg, "fast")
    for seeds in ((0,), (1,)):  # the second call replays the captured graph with new inputs
        nz = _noise(cfg, sched, T, seeds).cuda()
        ref = rt.run_torch(model, sched, nz, mel=mel)
        out = rt.run_triton(model, sched, nz, mel=mel)
        assert rel_err(out, ref) <= 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_d1_half_error_within_2x_of_torch(dtype):
    model = agf.build("D1", seed=0).cuda()
    cfg = model.config
    mel = torch.randn(1, 80, 20, device="cuda")
    T = 20 * 256
    sched = Schedule.from_config(cfg, "fast")
    nz = _noise(cfg, sched, T, (3,)).cuda()
    # one denoiser evaluation (the loop's clamp hides errors): eps vs an fp64 reference
    x = nz[0]
    step = torch.tensor([float(sched.steps[5])], device="cuda")
    with torch.no_grad():
        ref64 = model.double().denoise(x.double(), step, model.spectrogram_upsampler(mel.double())).squeeze(1)
        model.float()
        half = agf.build("D1", seed=0).cuda().to(dtype)
        torch_half = half.denoise(x.to(dtype), step, half.spectrogram_upsampler(mel.to(dtype))).squeeze(1).float()
    k = rt.triton_kernels(model, dtype=dtype)
    tables = k.step_tables(sched)
    # eps from the fused kernels: run one step with c1 = 1, c2 = -1, no noise: audio = x + eps
    with torch.inference_mode():
        audio = x.clone().float()
        buf = k.buffers(1, T)
        mel_up = model.spectrogram_upsampler(mel).to(dtype).contiguous()
        # clamp in the head bounds audio to [-1, 1]: scale so x + eps stays inside
        k.denoise_step(audio, mel_up, tables[5], buf, 1.0, -1.0, 0.0, None)
    # where x + eps stays inside the clamp, audio - x is the kernels' eps
    inside = (x.double() + ref64).abs() < 0.95
    assert inside.float().mean() > 0.2
    e_torch = rel_err(torch_half[inside], ref64[inside])
    e_ours = rel_err((audio.double() - x.double())[inside], ref64[inside])
    assert e_ours <= 2 * e_torch


def test_the_kernel_weights_follow_the_model():
    """triton_kernels' layout is rebuilt when the weights change in place, and per options."""
    kw = dict(residual_channels=16, residual_layers=2)
    model = agf.build("tiny-diffwave", seed=0, **kw).to(DEV)
    k = rt.triton_kernels(model, block_t=32)
    assert rt.triton_kernels(model, block_t=32) is k
    model.load_state_dict(agf.build("tiny-diffwave", seed=1, **kw).state_dict())
    fresh = rt.triton_kernels(model, block_t=32)
    assert fresh is not k and rt.triton_kernels(model, block_t=32) is fresh
    assert rt.triton_kernels(model, block_t=16) is not fresh
