"""Importing lmnt-com/diffwave checkpoints (audiogen_fast/models/diffwave/convert.py).

The fixtures are built from lmnt's published layout: parameter names and shapes of model.py
(which our reference shares), the training checkpoint dict of learner.py
{'step', 'model', 'optimizer', 'params', 'scaler'} and params.py's hyper-parameter names.
"""
import subprocess
import sys

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.audio import mel_filterbank, mel_spectrogram
from audiogen_fast.models.diffwave import convert as lmnt
from audiogen_fast.models.diffwave import runtime as rt
from audiogen_fast.models.diffwave.reference import DiffusionEmbedding, Schedule
from test_diffwave import lmnt_style_loop

SMALL = dict(residual_layers=4, residual_channels=8, dilation_cycle_length=2)


def lmnt_checkpoint(path, params=SMALL, persistent_table=False, bare=False, unconditional=False, seed=0):
    p = dict(lmnt.LMNT_DEFAULTS)
    p.update(params)
    p["unconditional"] = unconditional
    cfg = lmnt.config_from_params(p, {} if unconditional else {"x.conditioner_projection.weight": 0})
    torch.manual_seed(seed)
    src = agf.presets.build_from_config(cfg, seed=seed)
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    if persistent_table:  # older releases stored the step-embedding table
        sd["diffusion_embedding.embedding"] = DiffusionEmbedding._build_embedding(len(p["noise_schedule"]))
    opt = torch.optim.Adam(src.parameters(), lr=2e-4)
    obj = sd if bare else {"step": 1234, "model": sd, "optimizer": opt.state_dict(), "params": params, "scaler": {}}
    torch.save(obj, path)
    return src


@pytest.mark.parametrize("variant", ["training", "bare", "old-table", "unconditional"])
def test_import_computes_the_source_function(variant, tmp_path):
    path = tmp_path / "weights.pt"
    src = lmnt_checkpoint(path, bare=variant == "bare", persistent_table=variant == "old-table",
                          unconditional=variant == "unconditional", seed=3)
    # a bare state dict carries no params: the sizes come from the shapes, the dilation cycle
    # (not visible in any weight) from the user
    voc = agf.load(path, device="cpu", hparams={"dilation_cycle_length": 2} if variant == "bare" else None)
    cfg = voc.config
    assert cfg.family == "diffwave" and cfg.residual_layers == 4 and cfg.residual_channels == 8
    assert cfg.mel_norm == "lmnt" and cfg.mel_scale == "htk" and cfg.win_length == 1024
    assert cfg.conditional == (variant != "unconditional")
    # same weights, same function: generation with the same noise equals lmnt's own sampling loop
    n = 2 * 256
    sched = Schedule.from_config(cfg, "fast")
    noise = np.stack([rt.draw_noise(cfg, 5, n, sched)])
    mel = torch.rand(1, 80, 2) if cfg.conditional else None
    with torch.no_grad():
        ref = lmnt_style_loop(src, mel, torch.from_numpy(noise).transpose(0, 1), cfg.inference_schedule)
    if cfg.conditional:
        out = voc.generate(mel=mel[0].numpy(), noise=noise[0])
    else:
        out = voc.generate(num_samples=n, noise=noise[0])
    assert np.abs(out - ref[0].numpy()).max() <= 1e-5


def test_default_params_when_missing(tmp_path):
    path = tmp_path / "w.pt"
    p = dict(lmnt.LMNT_DEFAULTS)
    src = agf.presets.build_from_config(lmnt.config_from_params(p, {"conditioner_projection": 0}))
    torch.save({"step": 1, "model": src.state_dict(), "optimizer": {}, "scaler": {}}, path)  # no params
    m = agf.load_model(path)
    assert m.config.residual_layers == 30 and len(m.config.noise_schedule) == 50 and m.config.dilation_cycle == 10
    assert m.config.inference_schedule == [0.0001, 0.001, 0.01, 0.05, 0.2, 0.5]


def test_bad_lmnt_checkpoints(tmp_path):
    path = tmp_path / "w.pt"
    lmnt_checkpoint(path)
    obj = torch.load(path, weights_only=True)
    obj["params"] = dict(obj["params"], residual_channels=16)  # params disagree with the weights
    torch.save(obj, path)
    with pytest.raises(agf.CheckpointError, match="mis-shaped"):
        agf.load_model(path)
    obj["params"] = dict(SMALL, hop_samples=300)
    torch.save(obj, path)
    with pytest.raises(agf.CheckpointError, match="hop_samples=300"):
        agf.load_model(path)
    obj["params"] = dict(SMALL)
    obj["model"]["diffusion_embedding.embedding"] = torch.zeros(50, 128)
    torch.save(obj, path)
    with pytest.raises(agf.CheckpointError, match="embedding table"):
        agf.load_model(path)


def test_convert_cli(tmp_path):
    src = tmp_path / "w.pt"
    lmnt_checkpoint(src, seed=4)
    dst = tmp_path / "n.safetensors"
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "convert", str(src), str(dst)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    a, b = agf.load_model(src), agf.load_model(dst)
    assert a.config == b.config
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_lmnt_mel_preprocessing():
    cfg = lmnt.config_from_params({}, {"conditioner_projection": 0})
    sr = cfg.sample_rate
    t = np.arange(sr) / sr
    wav = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = mel_spectrogram(wav, cfg)
    assert mel.shape == (80, 1 + sr // 256) and mel.min() >= 0 and mel.max() <= 1
    # HTK filters, unnormalised: peak 1 at their centres, centres on the HTK mel scale
    fb = mel_filterbank(sr, 1024, 80, 20.0, sr / 2, "htk", "none")
    assert abs(fb.max() - 1.0) < 0.05
    mels = np.linspace(2595 * np.log10(1 + 20 / 700), 2595 * np.log10(1 + (sr / 2) / 700), 82)
    centres = 700 * (10 ** (mels[1:-1] / 2595) - 1)
    peak_bins = fb.argmax(axis=1) * sr / 1024
    assert np.all(np.abs(peak_bins - centres) <= sr / 1024)
    # the 1 kHz tone lands in the filter whose centre is nearest 1 kHz
    assert abs(np.argmax(mel[:, mel.shape[1] // 2]) - np.argmin(np.abs(centres - 1000))) <= 1
    # normalized STFT divides magnitudes by sqrt(sum(hann^2)) = sqrt(1024 * 3/8): in lmnt's mapped
    # domain that is 20 log10(sqrt(384)) / 100 lower wherever neither version is clamped
    quiet = (0.01 * wav).astype(np.float32)
    a = mel_spectrogram(quiet, cfg)
    b = mel_spectrogram(quiet, cfg.replace(stft_normalized=False))
    inside = (a > 0.01) & (a < 0.99) & (b > 0.01) & (b < 0.99)
    assert inside.sum() > 100
    assert np.allclose((b - a)[inside], 20 * np.log10(np.sqrt(384.0)) / 100, atol=1e-4)
