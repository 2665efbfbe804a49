"""Training entry point and dataset builder (small and fast: a synthetic corpus)."""
import json
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


def test_train_cli_errors(corpus, tmp_path):
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavenet", "--data", str(tmp_path / "none"),
                        "--out", str(tmp_path / "x.safetensors"), "--preset", "tiny-wavenet", "--steps", "1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no .wav files" in (r.stderr + r.stdout)
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavernn", "--data", str(corpus),
                        "--out", str(tmp_path / "y.safetensors"), "--preset", "tiny-wavenet", "--steps", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not wavernn" in r.stderr


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
    with pytest.raises(ValueError, match="CUDA"):
        train(agf.build("tiny-wavenet"), pt, str(tmp_path / "c.safetensors"), steps=1, amp=True, progress=False,
              log=lambda *a: None)


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
