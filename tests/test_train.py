"""Training entry point and dataset builder (small and fast: a synthetic corpus)."""
import copy
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import audiogen_fast as agf
from audiogen_fast import dataset
from audiogen_fast.train import train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A few seconds of voiced-like signal: harmonics with a gliding pitch and an envelope."""
    d = tmp_path_factory.mktemp("corpus")
    sr = 8000
    rng = np.random.default_rng(0)
    for i in range(4):
        t = np.arange(int(1.5 * sr)) / sr
        f0 = 120 + 60 * np.sin(2 * np.pi * (0.5 + 0.3 * i) * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.3 + 0.2 * np.sin(2 * np.pi * 2 * t)) ** 2
        x = 0.8 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
        sf.write(d / f"u{i}.wav", x.astype(np.float32), sr)
    return d


@pytest.mark.parametrize("family", ["wavenet", "wavernn", "diffwave"])
def test_training_lowers_the_loss_and_resumes(family, corpus, tmp_path):
    out = str(tmp_path / f"{family}.safetensors")
    model = agf.build(f"tiny-{family}", seed=0)
    steps = {"wavenet": 60, "wavernn": 30, "diffwave": 60}[family]
    train(model, str(corpus), out, steps=steps, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=20,
          progress=False, log=lambda *a: None)
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    first, last = logs[0]["loss"], np.mean([r["loss"] for r in logs[-2:]])
    print(family, first, last)
    assert last < first  # it learns something from the corpus
    assert os.path.exists(out + ".state.pt")
    # resuming continues from the saved step with the same weights
    m2 = agf.load_model(out)
    sd_before = {k: v.clone() for k, v in m2.state_dict().items()}
    train(m2, str(corpus), out, steps=steps + 10, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=10,
          progress=False, log=lambda *a: None)
    logs2 = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert logs2[-1]["step"] == steps + 10 and len(logs2) == len(logs) + 1
    assert any(not torch.equal(sd_before[k], v) for k, v in agf.load_model(out).state_dict().items())
    # the trained checkpoint vocodes
    voc = agf.load(out, device="cpu")
    a = voc.generate(mel=np.zeros((16, 3), np.float32) - 5, seed=0)
    assert a.shape == (192,) and np.all(np.isfinite(a))


@pytest.mark.parametrize("mode", ["MOL", "GAUSS"])
def test_continuous_wavernn_trains_on_the_nll_of_its_generation_loop(mode, corpus, tmp_path):
    """MOL / GAUSS WaveRNNs train on the NLL of the float previous sample -> next sample: the loss
    is mol_nll / gaussian_nll of the outputs the step loop gives teacher-forced with those samples,
    and training lowers it."""
    from audiogen_fast.models.wavernn import runtime as rt
    from audiogen_fast.train import Corpus, context_frames, gaussian_nll, loss_wavernn, mol_nll

    model = agf.build("tiny-wavernn", seed=1, mode=mode, n_mix=2, log_scale_min=-7.0)
    cfg = model.config
    ctx = context_frames(cfg)
    # compared in float64: in fp32 nn.GRU and the step loop round differently (~1e-6), and scales
    # down to exp(-7) magnify that to 1e-7..1e-5 of the loss, depending on the batch drawn
    m64 = copy.deepcopy(model).double()
    audio, prev, mel_win = (t.double() for t in Corpus(str(corpus), cfg).batch(np.random.default_rng(2), 2, 4, ctx))
    with torch.no_grad():
        loss = loss_wavernn(m64, audio, prev, mel_win, ctx)
        m, aux = m64.upsample(mel_win[:, :, ctx - cfg.pad: mel_win.shape[-1] - (ctx - cfg.pad)])
        T, A = audio.shape[1], cfg.aux_dims
        cond = [m[:, :T]] + [aux[:, :T, i * A:(i + 1) * A] for i in range(4)]
        x = torch.cat([prev.unsqueeze(1), audio[:, :-1]], 1)
        _, outs, _ = rt.run_torch(m64, cond, teacher=x)
    nll = mol_nll if mode == "MOL" else gaussian_nll
    want = nll(outs, audio, cfg.log_scale_min)
    assert torch.allclose(loss, want.to(loss.dtype), rtol=1e-7)
    out = str(tmp_path / "r.safetensors")
    train(model, str(corpus), out, steps=30, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=30,
          progress=False, log=lambda *a: None)
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert np.mean([r["loss"] for r in logs[-2:]]) < logs[0]["loss"]


def _mixture_nll_exact(params, x, log_scale_min, bins):
    """The discretized logistic mixture's NLL from its definition: each component's CDF difference
    over x's bin (the outer bins reaching to -inf / +inf), float64."""
    M = params.shape[-1] // 3
    p = params.double()
    w = torch.softmax(p[..., :M], -1)
    mean, s = p[..., M:2 * M], torch.exp(p[..., 2 * M:].clamp(min=log_scale_min))
    x = x.double().unsqueeze(-1)
    h = 1.0 / (bins - 1)
    hi = torch.where(x > 0.999, torch.full_like(x, float("inf")), x + h)
    lo = torch.where(x < -0.999, torch.full_like(x, -float("inf")), x - h)
    mass = torch.sigmoid((hi - mean) / s) - torch.sigmoid((lo - mean) / s)
    return -torch.log((w * mass).sum(-1)).mean()


def test_continuous_likelihoods_match_their_definitions():
    from audiogen_fast.train import gaussian_nll, mol_nll

    g = torch.Generator().manual_seed(0)
    p = torch.randn(6, 50, 2, generator=g, dtype=torch.float64)
    p[..., 1] -= 2.0
    x = torch.rand(6, 50, generator=g, dtype=torch.float64) * 2 - 1
    ref = -torch.distributions.Normal(p[..., 0], p[..., 1].clamp(min=-1.5).exp()).log_prob(x).mean()
    assert torch.allclose(gaussian_nll(p, x, -1.5), ref, rtol=1e-12)   # clamped like the sampler
    M = 4
    q = torch.randn(6, 50, 3 * M, generator=g, dtype=torch.float64) * 0.4
    q[..., 2 * M:] -= 1.5
    x[:, :3], x[:, 3:6] = -1.0, 1.0                                     # the tail bins
    for bins in (256, 65536):  # (components whose bin mass is < 1e-5 use density x width: ~1e-8 off)
        assert torch.allclose(mol_nll(q, x, -7.0, bins), _mixture_nll_exact(q, x, -7.0, bins), rtol=1e-7)
    # far from every component the bin mass underflows: the density x width stands in for it
    far = torch.zeros(1, 1, 3 * M, dtype=torch.float64)
    far[..., 2 * M:] = -7.0
    xf = torch.tensor([[0.5]], dtype=torch.float64)
    s = torch.exp(torch.tensor(-7.0, dtype=torch.float64))
    dens = torch.exp(-0.5 / s) / (s * (1 + torch.exp(-0.5 / s)) ** 2)  # logistic pdf at 0.5 from 0
    assert torch.allclose(mol_nll(far, xf, -7.0, 65536), -torch.log(dens * 2 / 65535), rtol=1e-9)


@pytest.mark.parametrize("output", ["mulaw", "gaussian", "mol"])
def test_wavenet_training_loss_is_the_models_likelihood(output):
    """The training graph (loss_wavenet) scores the teacher-forced sequence exactly as the model's
    parallel forward does: the same previous-sample inputs, conditioning and output parameters."""
    from audiogen_fast.sampling import mulaw_encode
    from audiogen_fast.train import loss_wavenet

    extra = {"mol": dict(n_mix=3)}.get(output, {})
    model = agf.build("tiny-wavenet", seed=1, output=output, **extra).double().eval()
    cfg = model.config
    g = torch.Generator().manual_seed(2)
    frames, T = 3, 3 * cfg.hop_length
    audio = (torch.rand(2, T, generator=g, dtype=torch.float64) * 1.6 - 0.8)
    prev = torch.tensor([0.25, -0.5], dtype=torch.float64)
    mel = torch.randn(2, cfg.n_mels, frames, generator=g, dtype=torch.float64)
    Q = cfg.quantize_channels

    def reference(past):  # the NLL of the clean targets from the model's parallel forward on `past`
        if output == "mulaw":
            return torch.nn.functional.cross_entropy(model(torch.as_tensor(mulaw_encode(past, Q)), mel),
                                                     torch.as_tensor(mulaw_encode(audio, Q)))
        out = model(past, mel).transpose(1, 2)
        if output == "gaussian":
            return -torch.distributions.Normal(out[..., 0], out[..., 1].clamp(min=cfg.log_scale_min).exp()).log_prob(audio).mean()
        return _mixture_nll_exact(out, audio, cfg.log_scale_min, 65536)

    true_past = torch.cat([prev.unsqueeze(1), audio[:, :-1]], 1)
    with torch.no_grad():
        got, ref = loss_wavenet(model, audio, prev, mel, 0), reference(true_past)
    assert torch.allclose(got, ref, rtol=1e-6), (got, ref)
    # with quiet spans: the inputs are quiet_spans' output (same RNG draws), the targets clean
    from audiogen_fast.train import quiet_spans

    with torch.no_grad():
        torch.manual_seed(5)
        quiet = loss_wavenet(model, audio, prev, mel, 0, quiet_prob=1.0)
        torch.manual_seed(5)
        ref = reference(quiet_spans(true_past, 1.0))
    assert torch.allclose(quiet, ref, rtol=1e-6) and not torch.equal(quiet, got)
    # with gain spans on top: quiet spans first, then the +-gain_db ones (same RNG draws)
    with torch.no_grad():
        torch.manual_seed(6)
        both = loss_wavenet(model, audio, prev, mel, 0, quiet_prob=1.0, gain_prob=1.0, gain_db=6.0)
        torch.manual_seed(6)
        ref = reference(quiet_spans(quiet_spans(true_past, 1.0), 1.0, 6.0))
    assert torch.allclose(both, ref, rtol=1e-6) and not torch.equal(both, quiet)
    # with input noise last (same RNG draws)
    from audiogen_fast.train import past_noise

    with torch.no_grad():
        torch.manual_seed(7)
        noisy = loss_wavenet(model, audio, prev, mel, 0, quiet_prob=1.0, noise_std=2.0)
        torch.manual_seed(7)
        ref = reference(past_noise(quiet_spans(true_past, 1.0), 2.0))
    assert torch.allclose(noisy, ref, rtol=1e-6) and not torch.equal(noisy, quiet)
    if output != "mulaw":
        with pytest.raises(ValueError, match="mu-law"):
            loss_wavenet(model, audio, prev, mel, 0, self_prob=1.0)
        return
    # with the model's own one-step samples as input
    from audiogen_fast.train import _upsampled, self_past

    with torch.no_grad():
        torch.manual_seed(8)
        own = loss_wavenet(model, audio, prev, mel, 0, self_prob=1.0)
        torch.manual_seed(8)
        xs = self_past(model, torch.as_tensor(mulaw_encode(true_past, Q)), _upsampled(model, mel, 0, cfg.hop_length, T), 1.0)
        ref = torch.nn.functional.cross_entropy(model(xs, mel), torch.as_tensor(mulaw_encode(audio, Q)))
    assert torch.allclose(own, ref, rtol=1e-6) and not torch.equal(own, got)


def test_unfolded_upsampler_is_the_same_function_with_the_same_gradients():
    """Training upsamples with UpsampleNet.time_stage_unfolded (a faster backward on the CPU): it
    must give time_stage's output and the same gradients for the smoothing taps and the mel."""
    model = agf.build("tiny-wavenet", seed=3, upsample_scales=[2, 4, 8]).double()
    net = model.upsample_net
    with torch.no_grad():   # taps that are not all equal, so a flipped or shifted kernel shows
        for conv in net.convs:
            conv.weight.uniform_(-1.0, 1.0)
    g = torch.Generator().manual_seed(4)
    mel = torch.randn(2, model.config.n_mels, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, model.config.n_mels, 5 * 64, generator=g, dtype=torch.float64)
    grads = []
    for fn in (net.time_stage, net.time_stage_unfolded):
        out = fn(mel)
        (out * w).sum().backward()
        grads.append((out.detach(), mel.grad.clone(), [c.weight.grad.clone() for c in net.convs]))
        mel.grad = None
        net.zero_grad()
    (o1, m1, c1), (o2, m2, c2) = grads
    print("max abs diff", (o1 - o2).abs().max().item())
    assert o1.shape == o2.shape == (2, model.config.n_mels, 320)
    assert torch.allclose(o1, o2, rtol=1e-12, atol=1e-12) and torch.allclose(m1, m2, rtol=1e-12, atol=1e-12)
    assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-12) for a, b in zip(c1, c2))
    with pytest.raises(ValueError, match="frequency kernel 1"):
        agf.build("tiny-wavenet", upsample_mode="convt").upsample_net.time_stage_unfolded(mel)


@pytest.mark.parametrize("output", ["gaussian", "mol"])
def test_continuous_output_wavenet_trains_and_vocodes(output, corpus, tmp_path):
    out = str(tmp_path / f"{output}.safetensors")
    extra = {"mol": dict(n_mix=3)}.get(output, {})
    model = agf.build("tiny-wavenet", seed=0, output=output, **extra)
    train(model, str(corpus), out, steps=60, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=60,
          progress=False, log=lambda *a: None)
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert np.mean([r["loss"] for r in logs[-2:]]) < logs[0]["loss"]
    voc = agf.load(out, device="cpu")
    assert voc.config.output == output
    a = voc.generate(mel=np.zeros((16, 3), np.float32) - 5, seed=0)
    assert a.shape == (192,) and np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0


def test_dither_is_a_white_floor_on_inputs_and_targets():
    from audiogen_fast.train import add_dither

    x = torch.zeros(8, 20000)
    x[:, :100] = 0.9995
    torch.manual_seed(0)
    y = add_dither(x, 1e-3)
    d = (y - x)[:, 100:]
    assert abs(d.std().item() - 1e-3) < 2e-5 and abs(d.mean().item()) < 2e-5
    assert abs(torch.corrcoef(torch.stack([d[:, 1:].flatten(), d[:, :-1].flatten()]))[0, 1].item()) < 0.01  # white
    assert y.max() <= 1.0                                                 # clamped to the audio range


def test_quiet_spans_scale_one_span_per_chosen_segment():
    from audiogen_fast.train import quiet_spans

    torch.manual_seed(0)
    x = torch.rand(64, 800) * 1.6 - 0.8
    assert quiet_spans(x, 0.0) is x
    y = quiet_spans(x, 1.0)
    for b in range(64):
        changed = torch.nonzero(y[b] != x[b]).flatten()
        n = int(changed.max() - changed.min() + 1)
        assert 100 - 2 <= n <= 400 and n - len(changed) < 3           # one contiguous span, T/8..T/2
        ratio = y[b, changed] / x[b, changed]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and 0 <= ratio[0] <= 0.1
    picked = sum(bool((quiet_spans(x, 0.3)[b] != x[b]).any()) for b in range(64))
    assert 8 <= picked <= 32                                          # about 30 % of segments


def test_past_noise_is_mu_law_domain_noise_of_at_most_the_given_std():
    """past_noise(x, s): in the companded (mu-law 255) domain, x plus Gaussian noise whose std is
    drawn per segment in [0, s] levels (one level = 2/255), clamped to [-1, 1]; 0 returns x."""
    from audiogen_fast.train import past_noise

    torch.manual_seed(2)
    x = (torch.rand(32, 20000, dtype=torch.float64) * 1.6 - 0.8)
    assert past_noise(x, 0.0) is x
    y = past_noise(x, 3.0)
    comp = lambda v: torch.sign(v) * torch.log1p(255.0 * v.abs()) / np.log1p(255.0)   # noqa: E731
    levels = (comp(y) - comp(x)) * 255.0 / 2.0                            # noise in mu-law levels
    stds = levels.std(dim=1)
    print("per-segment stds (levels):", stds.min().item(), stds.max().item())
    assert stds.max() <= 3.0 * 1.03 and stds.min() < 0.5 and stds.max() > 2.5   # uniform in [0, 3]
    assert abs(levels.mean().item()) < 0.02 and y.abs().max() <= 1.0
    assert abs(torch.corrcoef(torch.stack([levels[:, 1:].flatten(), levels[:, :-1].flatten()]))[0, 1].item()) < 0.01


def test_self_past_is_the_models_own_one_step_samples():
    """self_past(model, x, c, 1): input 0 kept, input t+1 = the generation rule's draw from the
    model's teacher-forced logits at t (on the uniforms it draws); prob 0 returns x; the chosen
    share of segments is about prob."""
    from audiogen_fast.sampling import sample_softmax
    from audiogen_fast.train import _teacher_forced, self_past

    model = agf.build("tiny-wavenet", seed=2)
    cfg = model.config
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (3, 5 * cfg.hop_length), generator=g)
    c = model.upsample(torch.randn(3, cfg.n_mels, 5, generator=g))
    assert self_past(model, x, c, 0.0) is x
    torch.manual_seed(4)
    y = self_past(model, x, c, 1.0)
    torch.manual_seed(4)
    torch.rand(3)                                                         # the segment draw
    with torch.no_grad():
        logits = _teacher_forced(model, x, c).transpose(1, 2)
    want = sample_softmax(logits, torch.rand(logits.shape[:2], dtype=torch.float64))
    assert torch.equal(y[:, 0], x[:, 0]) and torch.equal(y[:, 1:], want[:, :-1])
    assert (y != x).float().mean() > 0.5                                  # random weights: far from x
    torch.manual_seed(5)
    xs = torch.randint(0, 256, (64, cfg.hop_length))
    picked = (self_past(model, xs, model.upsample(torch.zeros(64, cfg.n_mels, 1)), 0.25)[:, 1:] != xs[:, 1:]).any(1).sum()
    assert 6 <= int(picked) <= 28                                         # about a quarter of 64


def test_gain_spans_scale_one_span_by_at_most_the_gain_in_db():
    """quiet_spans(..., gain_db=D): one contiguous span per chosen segment scaled by one gain in
    [-D, +D] dB (both directions seen), clipped to [-1, 1]."""
    from audiogen_fast.train import quiet_spans

    torch.manual_seed(1)
    x = torch.rand(64, 800) * 1.6 - 0.8
    x[:, ::7] = 0.95                                                    # loud samples: some clip when scaled up
    y = quiet_spans(x, 1.0, gain_db=6.0)
    gains = []
    for b in range(64):
        changed = torch.nonzero(y[b] != x[b]).flatten()
        n = int(changed.max() - changed.min() + 1)
        assert 100 - 2 <= n <= 400                                      # one span, T/8..T/2 (a few samples may map to themselves)
        span = slice(int(changed.min()), int(changed.max()) + 1)
        inside = x[b, span].abs() < 0.4                                 # never clipped for gains <= 6 dB
        ratio = y[b, span][inside] / x[b, span][inside]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)
        gains.append(20 * np.log10(float(ratio[0])))
        assert torch.equal(y[b, span].clamp(-1, 1), y[b, span]) and torch.equal(y[b, :span.start], x[b, :span.start])
    assert max(abs(g) for g in gains) <= 6.0 + 1e-4 and min(gains) < -3 and max(gains) > 3
    assert (y.abs() >= 1.0).any()                                       # scaled-up 0.95s were clipped to 1


def test_training_with_dither(corpus, tmp_path):
    """--dither, --quiet-past, --past-gain, --past-noise and --self-past from the CLI train (the
    loss falls); the input augmentations are WaveNet's."""
    out = str(tmp_path / "n.safetensors")
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavenet", "--data", str(corpus), "--out", out,
                        "--preset", "tiny-wavenet", "--steps", "40", "--batch", "4", "--segment-frames", "4",
                        "--lr", "3e-3", "--save-every", "40", "--dither", "1e-3", "--quiet-past", "0.5", "--past-gain", "6",
                        "--past-noise", "2", "--self-past", "0.5", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert logs[-1]["loss"] < logs[0]["loss"]
    for kw in (dict(quiet_prob=0.5), dict(past_gain_db=6.0), dict(past_noise_std=2.0), dict(self_past_prob=0.5)):
        with pytest.raises(ValueError, match="WaveNet training only"):
            train(agf.build("tiny-wavernn"), str(corpus), str(tmp_path / "r.safetensors"), steps=1, progress=False,
                  log=lambda *a: None, **kw)
    for kw in (dict(past_gain_db=-1.0), dict(past_noise_std=-1.0), dict(self_past_prob=1.5)):
        with pytest.raises(ValueError, match="must be >= 0"):
            train(agf.build("tiny-wavenet"), str(corpus), str(tmp_path / "w.safetensors"), steps=1, progress=False,
                  log=lambda *a: None, **kw)


def test_stop_at_keeps_the_schedule_of_all_steps(corpus, tmp_path):
    out = str(tmp_path / "s.safetensors")
    kw = dict(batch=2, seg_frames=4, lr=1e-2, lr_final=1e-4, save_every=100, progress=False, log=lambda *a: None)
    train(agf.build("tiny-wavenet", seed=0), str(corpus), out, steps=40, stop_at=20, **kw)
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert logs[-1]["step"] == 20 and torch.load(out + ".state.pt", weights_only=True)["step"] == 20   # saved there
    assert logs[-1]["lr"] == pytest.approx(1e-2 * (1e-4 / 1e-2) ** (19 / 39))    # lr of step 20 of 40
    train(agf.load_model(out), str(corpus), out, steps=40, **kw)                   # the next stage resumes
    assert [json.loads(line) for line in open(out + ".log.jsonl")][-1]["step"] == 40


def test_train_cli_errors(corpus, tmp_path):
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavenet", "--data", str(tmp_path / "none"),
                        "--out", str(tmp_path / "x.safetensors"), "--preset", "tiny-wavenet", "--steps", "1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no .wav files" in (r.stderr + r.stdout)
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavernn", "--data", str(corpus),
                        "--out", str(tmp_path / "y.safetensors"), "--preset", "tiny-wavenet", "--steps", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not wavernn" in r.stderr
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavenet", "--data", str(corpus),
                        "--out", str(tmp_path / "z.safetensors"), "--preset", "tiny-wavenet", "--steps", "1",
                        "--objective", "sampler"], capture_output=True, text=True)
    assert r.returncode == 2 and "error: objective 'sampler' is not one of wavenet's: none to choose" in r.stderr
    assert "Traceback" not in r.stderr


def test_train_init_fine_tunes_from_a_checkpoint(corpus, tmp_path):
    """--init: the source's config and weights, a fresh step count; resuming ignores it."""
    def cli(out, *extra):
        return subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavenet", "--data", str(corpus),
                               "--out", str(out), "--batch", "2", "--segment-frames", "4", "--quiet", *extra],
                              capture_output=True, text=True)

    src = tmp_path / "src.safetensors"
    agf.save(agf.build("tiny-wavenet", seed=5, layers=6), src)      # a config no preset has
    out = tmp_path / "ft.safetensors"
    r = cli(out, "--init", str(src), "--steps", "3", "--lr", "1e-9", "--lr-final", "1e-9")
    assert r.returncode == 0, r.stderr
    ft, base = agf.load_model(out), agf.load_model(src)
    assert ft.config == base.config
    fresh = agf.build("tiny-wavenet", seed=0, layers=6).state_dict()
    for k, v in ft.state_dict().items():   # 3 Adam steps of 1e-9 from the source's weights
        assert torch.allclose(v, base.state_dict()[k], atol=1e-7), k
    assert any(not torch.allclose(v, fresh[k], atol=1e-3) for k, v in ft.state_dict().items())
    assert torch.load(str(out) + ".state.pt", weights_only=True)["step"] == 3
    # the next stage resumes the fine-tuned run, not the source
    r = cli(out, "--init", str(src), "--steps", "4")
    assert r.returncode == 0 and "not used" in r.stderr
    assert torch.load(str(out) + ".state.pt", weights_only=True)["step"] == 4
    # errors: a preset beside --init, a checkpoint of another family
    r = cli(tmp_path / "x.safetensors", "--init", str(src), "--preset", "tiny-wavenet", "--steps", "1")
    assert r.returncode == 2 and "drop --preset" in r.stderr
    rnn = tmp_path / "rnn.safetensors"
    agf.save(agf.build("tiny-wavernn", seed=0), rnn)
    r = cli(tmp_path / "y.safetensors", "--init", str(rnn), "--steps", "1")
    assert r.returncode == 2 and "is a wavernn model, not wavenet" in r.stderr
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "y.safetensors").exists()
    # --overrides beside --init: settings that keep the weights (pre-emphasis) are applied ...
    pe = tmp_path / "pe.safetensors"
    r = cli(pe, "--init", str(src), "--overrides", '{"preemphasis": 0.85}', "--steps", "1", "--lr", "1e-9")
    assert r.returncode == 0, r.stderr
    m = agf.load_model(pe)
    assert m.config == base.config.replace(preemphasis=0.85)
    assert torch.allclose(m.state_dict()["last_conv2.weight"], base.state_dict()["last_conv2.weight"], atol=1e-7)
    # ... a shape change is refused, naming the mismatch
    r = cli(tmp_path / "z.safetensors", "--init", str(src), "--overrides", '{"residual_channels": 4}', "--steps", "1")
    assert r.returncode == 2 and "change the shapes" in r.stderr and "size mismatch" in r.stderr
    assert not (tmp_path / "z.safetensors").exists()


def test_dataset_plan_is_reproducible_and_splits_held_out():
    sents = [f"sentence {i}" for i in range(24)]
    p1, p2 = dataset.plan(sents, takes=3, seed=0), dataset.plan(sents, takes=3, seed=0)
    assert [u.__dict__ for u in p1] == [u.__dict__ for u in p2]
    train_texts = {u.text for u in p1 if u.split == "train"}
    test_texts = {u.text for u in p1 if u.split == "test" and u.voice != dataset.HELD_OUT_VOICE}
    assert train_texts and test_texts and not (train_texts & test_texts)   # unseen sentences
    assert all(u.voice != dataset.HELD_OUT_VOICE for u in p1 if u.split == "train")  # unseen voice
    assert len({(u.voice, u.pitch, u.speed) for u in p1 if u.split == "train"}) > 10   # varied readings


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_dataset_build_with_espeak(tmp_path):
    man = dataset.build(str(tmp_path), sample_rate=16000, takes=1, limit=8, log=lambda *a: None)
    assert len(os.listdir(tmp_path / "train")) == 7 and len(os.listdir(tmp_path / "test")) == 8 + 2
    x, sr = sf.read(tmp_path / "train" / "s000_0.wav")
    assert sr == 16000 and 0.5 < len(x) / sr < 10 and 0.8 < np.abs(x).max() <= 0.91
    assert man["utterances"][0]["samples"] == len(x)


def test_load_without_path_uses_the_default(monkeypatch, tmp_path):
    p = tmp_path / "default.safetensors"
    agf.save(agf.build("tiny-wavenet", seed=9), p)
    monkeypatch.setattr(agf, "default_model_path", lambda: str(p))
    voc = agf.load()
    assert voc.config == agf.build("tiny-wavenet").config
    monkeypatch.setattr(agf, "default_model_path", lambda: None)
    with pytest.raises(agf.CheckpointError, match="no default model"):
        agf.load()


def test_corpus_file_trains_exactly_like_the_folder(corpus, tmp_path):
    """`audiogen-fast corpus` output (for GPU machines without soundfile) gives the same batches,
    hence the same losses, as the wav folder; other audio settings are refused."""
    from audiogen_fast.train import Corpus

    pt = str(tmp_path / "c.pt")
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "corpus", str(corpus), pt, "--preset", "tiny-wavenet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    logs = []
    for data, name in ((str(corpus), "a"), (pt, "b")):
        out = str(tmp_path / f"{name}.safetensors")
        train(agf.build("tiny-wavenet", seed=0), data, out, steps=20, batch=2, seg_frames=4, save_every=20,
              progress=False, log=lambda *a: None)
        logs.append([json.loads(line)["loss"] for line in open(out + ".log.jsonl")])
    assert logs[0] == logs[1]
    with pytest.raises(ValueError, match="audio settings"):
        Corpus(pt, agf.build("speech-wavenet-16k").config)


def test_training_on_the_cpu_with_bf16_autocast(corpus, tmp_path):
    """amp on the CPU: the forward pass in bf16 (the losses differ from an fp32 run's from the
    first step), it still learns, and the checkpoint holds fp32 weights of the same config."""
    runs = {}
    for amp in (False, True):
        out = str(tmp_path / f"amp{int(amp)}.safetensors")
        model = agf.build("tiny-diffwave", seed=0)
        train(model, str(corpus), out, steps=40, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=40,
              progress=False, log=lambda *a: None, amp=amp)
        runs[amp] = [json.loads(line)["loss"] for line in open(out + ".log.jsonl")]
        back = agf.load_model(out)
        assert back.config == model.config
        assert all(p.dtype == torch.float32 for p in back.parameters())
    assert runs[True][0] != runs[False][0]
    assert np.mean(runs[True][-2:]) < runs[True][0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_gpu_with_bf16_autocast(corpus, tmp_path):
    out = str(tmp_path / "g.safetensors")
    model = agf.build("tiny-wavenet", seed=0)
    train(model, str(corpus), out, steps=60, batch=4, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=30,
          progress=False, log=lambda *a: None, device="cuda", amp=True)
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert np.mean([r["loss"] for r in logs[-2:]]) < logs[0]["loss"]
    assert agf.load_model(out).config == model.config


def test_corpus_trains_on_the_pre_emphasised_waveform(corpus, tmp_path):
    """preemphasis: the batches hold e[n] = x[n] - a x[n-1] of each whole file (so a segment's
    first sample and `prev` use the true previous samples), the mels those of x; a corpus file
    (waveforms themselves) serves either setting."""
    from audiogen_fast.train import Corpus

    cfg0 = agf.build("tiny-wavenet").config
    cfg = cfg0.replace(preemphasis=0.85)
    plain, pe = Corpus(str(corpus), cfg0), Corpus(str(corpus), cfg)
    b0 = plain.batch(np.random.default_rng(3), 4, 4, 2)
    b1 = pe.batch(np.random.default_rng(3), 4, 4, 2)
    (x, prev, mel), (e, _, emel) = b0, b1
    assert torch.equal(mel, emel)
    assert torch.allclose(e[:, 1:], x[:, 1:] - 0.85 * x[:, :-1], atol=1e-6)
    assert torch.allclose(e[:, 0], x[:, 0] - 0.85 * prev, atol=1e-6)
    assert not torch.allclose(e, x, atol=1e-2)
    pt = str(tmp_path / "c.pt")
    plain.save(pt)
    b2 = Corpus(pt, cfg).batch(np.random.default_rng(3), 4, 4, 2)
    assert all(torch.equal(p, q) for p, q in zip(b1, b2))


def test_corpus_trains_a_companded_wavenet_on_the_companded_waveform(corpus):
    """companding_mu (r9y9's input_type 'mulaw'): the batches hold sign(x) ln(1 + mu|x|) / ln(1 + mu),
    what generate() expands again; the mels stay those of x."""
    from audiogen_fast.train import Corpus

    cfg0 = agf.build("tiny-wavenet", output="mol", n_mix=2).config
    cfg = cfg0.replace(companding_mu=255)
    (x, prev, mel), (y, yprev, ymel) = (Corpus(str(corpus), c).batch(np.random.default_rng(5), 3, 4, 2) for c in (cfg0, cfg))
    assert torch.equal(mel, ymel)
    for a, b in ((x, y), (prev, yprev)):
        want = torch.sign(a.double()) * torch.log1p(255 * a.double().abs()) / math.log(256)
        assert torch.allclose(b.double(), want, atol=1e-6)
    assert not torch.allclose(x, y, atol=1e-2)


def test_stft_magnitude_loss_is_spectral_convergence_plus_log_magnitude_distance():
    """Zero for the target itself; for x = k * y every bin's magnitude ratio is k, so the spectral
    convergence is |k - 1| and the log-magnitude L1 is |log k| at every resolution."""
    from audiogen_fast.train import stft_magnitude_loss

    res = ((128, 32), (256, 64), (64, 16))
    y = torch.randn(2, 2000, generator=torch.Generator().manual_seed(0))
    assert stft_magnitude_loss(y, y, res).item() == 0.0
    for k in (2.0, 0.5):
        assert stft_magnitude_loss(k * y, y, res).item() == pytest.approx(abs(k - 1) + np.log(k) * np.sign(k - 1), rel=1e-5)
    assert stft_magnitude_loss(torch.roll(y, 37, 1), y, res).item() > 0.5   # another waveform, another spectrum
    # a digitally silent target segment in the batch does not blow the loss up (norms over the batch)
    y[1], x = 0.0, y.clone()
    x[1] = 1e-3 * torch.randn(2000, generator=torch.Generator().manual_seed(1))
    assert 0 < stft_magnitude_loss(x, y, res).item() < 5


def test_sampler_objective_runs_the_generation_loop_with_gradients():
    """sample_diffwave, which the sampler objective back-propagates through, gives exactly the
    reference generation loop's audio for the same noise, and every weight gets a gradient."""
    from audiogen_fast.models.diffwave.reference import Schedule
    from audiogen_fast.models.diffwave.runtime import run_torch
    from audiogen_fast.train import sample_diffwave

    model = agf.build("tiny-diffwave", seed=0).eval()
    cfg = model.config
    schedule = Schedule.from_config(cfg)
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(2, cfg.n_mels, 5, generator=g) - 3
    noise = torch.randn(len(schedule), 2, 5 * cfg.hop_length, generator=g)
    out = sample_diffwave(model, model.spectrogram_upsampler(mel), noise, schedule)
    assert torch.equal(out, run_torch(model, schedule, noise, mel))
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_sampler_objective_fine_tunes_a_diffwave(corpus, tmp_path):
    """From a noise-trained checkpoint, the sampler objective lowers the STFT loss of generated
    segments; the result is a plain DiffWave checkpoint with the same config. Bad settings are
    refused with the reason."""
    base = str(tmp_path / "base.safetensors")
    train(agf.build("tiny-diffwave", seed=0), str(corpus), base, steps=40, batch=4, seg_frames=4, lr=3e-3,
          lr_final=1e-3, save_every=40, progress=False, log=lambda *a: None)
    out = str(tmp_path / "ft.safetensors")
    model = agf.load_model(base)
    train(model, str(corpus), out, steps=40, batch=4, seg_frames=8, lr=3e-3, lr_final=1e-3, save_every=40,
          progress=False, log=lambda *a: None, objective="sampler", margin_frames=1, seed=1)
    logs = [json.loads(line)["loss"] for line in open(out + ".log.jsonl")]
    print(logs)
    assert np.mean(logs[-2:]) < 0.8 * logs[0]
    assert agf.load_model(out).config == model.config
    with pytest.raises(ValueError, match="objective 'sampler' is not one of wavenet's"):
        train(agf.build("tiny-wavenet"), str(corpus), str(tmp_path / "x"), steps=1, objective="sampler",
              progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="margin_frames 2 leaves no loss frames"):
        train(agf.load_model(base), str(corpus), str(tmp_path / "y"), steps=1, seg_frames=4, objective="sampler",
              margin_frames=2, progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="needs more than n_fft / 2 = 128 samples"):
        train(agf.load_model(base), str(corpus), str(tmp_path / "z"), steps=1, seg_frames=2, objective="sampler",
              progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="margin_frames is for the DiffWave 'sampler' objective"):
        train(agf.load_model(base), str(corpus), str(tmp_path / "w"), steps=1, margin_frames=1,
              progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="mel_weight is for the DiffWave 'sampler' objective"):
        train(agf.load_model(base), str(corpus), str(tmp_path / "v"), steps=1, mel_weight=1.0,
              progress=False, log=lambda *a: None)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="mel_weight must be a positive number"):
            train(agf.load_model(base), str(corpus), str(tmp_path / "u"), steps=1, seg_frames=8, objective="sampler",
                  mel_weight=bad, progress=False, log=lambda *a: None)


def test_sampler_fine_tuning_is_reproducible(corpus, tmp_path):
    """The same seed gives the same run, whatever torch's global generator held before: the
    sampler objective's noise comes from it, and train() seeds it."""
    logs = []
    for i in range(2):
        torch.manual_seed(100 + i)  # a different global state before each run
        out = str(tmp_path / f"r{i}.safetensors")
        train(agf.build("tiny-diffwave", seed=0), str(corpus), out, steps=3, batch=2, seg_frames=8, save_every=3,
              progress=False, log=lambda *a: None, objective="sampler", mel_weight=0.5, seed=4)
        logs.append([json.loads(line)["loss"] for line in open(out + ".log.jsonl")])
    assert logs[0] == logs[1]


def test_log_mel_is_the_models_mel_analysis_with_gradients():
    """log_mel (the sampler objective's mel term) equals audio.mel_spectrogram for a "log" model,
    frame for frame, and passes gradients to the waveform."""
    from audiogen_fast.audio import mel_spectrogram
    from audiogen_fast.train import log_mel

    cfg = agf.build("tiny-diffwave").config.replace(mel_norm="log")
    x = (0.1 * torch.randn(2, 3000, generator=torch.Generator().manual_seed(0))).requires_grad_()
    got = log_mel(x, cfg)
    want = torch.from_numpy(mel_spectrogram(x.detach().numpy(), cfg))
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    got.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sampler_loss_mel_term_adds_the_weighted_log_mel_distance():
    """mel_weight w adds w times the log-mel L1 of generated against recorded audio to the STFT loss
    (the same generation noise: torch's generator reseeded for both calls)."""
    from audiogen_fast.train import _diffwave_cond, log_mel, loss_diffwave_sampler, sample_diffwave
    from audiogen_fast.models.diffwave.reference import Schedule

    model = agf.build("tiny-diffwave", seed=0)
    cfg = model.config
    g = torch.Generator().manual_seed(2)
    T, ctx = 8 * cfg.hop_length, 2
    audio = 0.1 * torch.randn(2, T, generator=g)
    mel_win = torch.randn(2, cfg.n_mels, 8 + 2 * ctx, generator=g) - 3
    torch.manual_seed(5)
    plain = loss_diffwave_sampler(model, audio, None, mel_win, ctx)
    torch.manual_seed(5)
    withmel = loss_diffwave_sampler(model, audio, None, mel_win, ctx, mel_weight=2.0)
    torch.manual_seed(5)
    noise = torch.randn((len(Schedule.from_config(cfg)), 2, T))
    out = sample_diffwave(model, _diffwave_cond(model, mel_win, ctx, T), noise, Schedule.from_config(cfg))
    term = torch.nn.functional.l1_loss(log_mel(out, cfg), log_mel(audio, cfg))
    assert term.item() > 0
    assert withmel.item() == pytest.approx(plain.item() + 2.0 * term.item(), rel=1e-5)
