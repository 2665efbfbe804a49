"""DiffWave: lmnt's schedule alignment, the denoise loop, the step embedding."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.models.diffwave import runtime as rt
from audiogen_fast.models.diffwave.reference import DiffusionEmbedding, Schedule
from conftest import random_mel, rel_err


def test_fast_schedule_alignment_values():
    cfg = agf.build("tiny-diffwave").config
    s = Schedule.from_config(cfg, "fast")
    # lmnt-com/diffwave's fast schedule aligned to fractional training steps (PRIOR_ART.md)
    assert np.allclose(s.steps, [0.0, 0.894, 4.087, 10.452, 22.993, 42.919], atol=1.5e-3)
    assert s.steps.dtype == np.float32
    full = Schedule.from_config(cfg, "full")
    assert len(full) == 50 and np.allclose(full.steps, np.arange(50), atol=1e-4)
    assert s.sigma[0] == 0 and np.all(s.sigma[1:] > 0)


def test_custom_schedule_and_errors():
    cfg = agf.build("tiny-diffwave").config
    s = Schedule.from_config(cfg, [1e-4, 1e-2, 0.3])
    assert len(s) == 3 and np.all(np.diff(s.steps) > 0)
    with pytest.raises(ValueError, match="outside"):
        Schedule.from_config(cfg, [0.5, 0.9, 0.9, 0.9])  # noisier than anything it was trained on
    with pytest.raises(ValueError):
        Schedule.from_config(cfg, "slow")
    with pytest.raises(ValueError):
        Schedule.from_config(cfg, [0.1, float("nan")])


def test_lerp_embedding_interpolates():
    emb = DiffusionEmbedding(50)
    t = torch.tensor([3.25])
    e = emb._lerp_embedding(t)
    want = 0.75 * emb.embedding[3] + 0.25 * emb.embedding[4]
    assert torch.allclose(e[0], want, atol=1e-6)
    assert torch.equal(emb._lerp_embedding(torch.tensor([7.0]))[0], emb.embedding[7])
    # integer and float steps give the same network output
    assert torch.allclose(emb(torch.tensor([7])), emb(torch.tensor([7.0])))


def lmnt_style_loop(model, mel, noise, schedule):
    """A direct transcription of lmnt-com/diffwave's fast sampling arithmetic (float64 betas)."""
    tb = np.array(model.config.noise_schedule)
    beta = np.array(schedule)
    alpha = 1 - beta
    alpha_cum = np.cumprod(alpha)
    talpha_cum = np.cumprod(1 - tb)
    T = []
    for s in range(len(beta)):
        for t in range(len(tb) - 1):
            if talpha_cum[t + 1] <= alpha_cum[s] <= talpha_cum[t]:
                tw = (talpha_cum[t] ** 0.5 - alpha_cum[s] ** 0.5) / (talpha_cum[t] ** 0.5 - talpha_cum[t + 1] ** 0.5)
                T.append(t + tw)
                break
    T = np.array(T, dtype=np.float32)
    audio = noise[0]
    i = 0
    for n in range(len(alpha) - 1, -1, -1):
        c1 = 1 / alpha[n] ** 0.5
        c2 = beta[n] / (1 - alpha_cum[n]) ** 0.5
        audio = c1 * (audio - c2 * model(audio, torch.tensor([T[n]]), mel).squeeze(1))
        if n > 0:
            i += 1
            sigma = ((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * beta[n]) ** 0.5
            audio = audio + sigma * noise[i]
        audio = torch.clamp(audio, -1.0, 1.0)
    return audio


@pytest.mark.parametrize("frames", [1, 3])
def test_denoise_loop_equals_lmnt_loop(frames):
    model = agf.build("tiny-diffwave", seed=frames)
    cfg = model.config
    mel = torch.from_numpy(random_mel(cfg, frames, batch=2))
    n = frames * cfg.hop_length
    sched = Schedule.from_config(cfg, "fast")
    noise = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, n, sched) for s in (0, 1)])).transpose(0, 1)
    with torch.no_grad():
        ref = lmnt_style_loop(model, mel, noise, cfg.inference_schedule)
    out = rt.run_torch(model, sched, noise, mel=mel)
    assert rel_err(out, ref) <= 1e-5


def test_upsampler_length_and_training_forward():
    model = agf.build("tiny-diffwave")
    cfg = model.config
    mel = torch.from_numpy(random_mel(cfg, 5, batch=1))
    with torch.no_grad():
        up = model.spectrogram_upsampler(mel)
        assert up.shape == (1, cfg.n_mels, 5 * cfg.hop_length)
        eps = model(torch.randn(1, 5 * cfg.hop_length), torch.tensor([3]), mel)
    assert eps.shape == (1, 1, 5 * cfg.hop_length) and torch.isfinite(eps).all()


def test_lmnt_hop_256_upsampler():
    model = agf.build("D1")
    mel = torch.randn(1, 80, 3)
    with torch.no_grad():
        assert model.spectrogram_upsampler(mel).shape == (1, 80, 768)


def test_schedules_via_vocoder():
    model = agf.build("tiny-diffwave")
    voc = agf.Vocoder(model, device="cpu")
    mel = random_mel(model.config, 2)
    fast = voc.generate(mel=mel, seed=0)
    assert voc.noise_shape(128) == (6, 128)
    full = voc.generate(mel=mel, seed=0, schedule="full")
    assert fast.shape == full.shape == (128,) and not np.array_equal(fast, full)
    assert np.array_equal(fast, voc.generate(mel=mel, seed=0, schedule=model.config.inference_schedule))
    with pytest.raises(agf.InputError, match="schedule"):
        voc.generate(mel=mel, seed=0, schedule="sometimes")


def test_unconditional_diffwave():
    model = agf.build("tiny-diffwave", conditional=False)
    voc = agf.Vocoder(model, device="cpu")
    a = voc.generate(num_samples=50, seed=[1, 2])
    assert a.shape == (2, 50) and not np.array_equal(a[0], a[1])
