"""The bundled default model (audiogen_fast/data/default.safetensors): it ships, loads without a
path, computes the same samples on every CPU backend, and still vocodes speech (a quality floor
on the bundled example, a sentence that is not in the training text)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import audiogen_fast as agf
from audiogen_fast.audio import load_wav, mel_spectrogram

EXAMPLE = os.path.join(os.path.dirname(agf.__file__), "data", "example.wav")
DEFAULT_FAMILY = "diffwave"   # what the README's main job says it bundles


def test_default_model_ships_and_loads():
    p = agf.default_model_path()
    assert p is not None and os.path.getsize(p) <= 20 * 1024 * 1024
    voc = agf.load(device="cpu")
    assert voc.config.family == DEFAULT_FAMILY and voc.sample_rate == 16000


@pytest.fixture(scope="module")
def example():
    voc = agf.load(device="cpu", backend="torch")
    wav, _ = load_wav(EXAMPLE, sample_rate=voc.sample_rate)
    return voc, wav


def test_backends_agree_on_the_default_model(example):
    voc, wav = example
    if not agf.backends()["cpp"][0]:
        pytest.skip("C++ extension not built")
    mel = voc.mel(wav[: voc.sample_rate // 4])
    a = voc.generate(mel=mel, seed=3)
    b = agf.load(device="cpu", backend="cpp").generate(mel=mel, seed=3)
    assert a.shape == b.shape
    if voc.config.family == "diffwave":   # no sampling: fp32 rounding only (tests/test_cpp_diffwave.py)
        assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(a))
    else:   # exact sample parity, up to rare boundary flips that tests/test_cpp_wavenet.py bounds
        assert np.mean(a == b) > 0.99


def test_default_model_still_vocodes_speech(example):
    """Copy-synthesis of the bundled example: the log-mel distance to the input is far below what
    the same network with random weights gives, and the frame energies follow the input's. A
    broken default (random or mismatched weights, a changed mel) fails both."""
    voc, wav = example
    wav = wav[: int(1.5 * voc.sample_rate)]
    mel = voc.mel(wav)
    out = agf.load(device="cpu").generate(mel=mel, seed=0)[: len(wav)]
    from audiogen_fast.presets import build_from_config

    rand = agf.Vocoder(build_from_config(voc.config, seed=1), device="cpu").generate(mel=mel, seed=0)[: len(wav)]
    cfg = voc.config

    def l1(x):
        m_ref, m = mel_spectrogram(wav, cfg), mel_spectrogram(x, cfg)
        k = min(m_ref.shape[1], m.shape[1])
        return float(np.abs(m_ref[:, :k] - m[:, :k]).mean())

    def env(x, hop=cfg.hop_length):
        n = len(x) // hop
        return np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(1))

    assert l1(out) < 0.6 * l1(rand)
    assert np.corrcoef(env(wav), env(out))[0, 1] > 0.5


def test_cli_vocode_without_checkpoint_uses_the_default(tmp_path):
    import soundfile as sf

    wav, sr = load_wav(EXAMPLE)
    src = tmp_path / "in.wav"
    sf.write(src, wav[: sr // 5], sr)
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "vocode", str(src), "-o", str(tmp_path / "o.wav"),
                        "--all-backends"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # the main job's report: one real-time factor per available backend, a reason for the others
    avail = agf.backends()
    for name, (ok, _) in avail.items():
        line = [ln for ln in r.stdout.splitlines() if ln.strip().startswith(name + " ")]
        assert len(line) == 1, r.stdout
        assert ("RTF" in line[0] or "n/a" in line[0]) if ok else ("unavailable" in line[0]), line[0]
    if avail["cpp"][0] and not avail["triton"][0]:   # a CPU machine: both CPU backends were timed
        assert all("RTF" in ln for ln in r.stdout.splitlines() if ln.strip().startswith(("torch ", "cpp ")))
        # and the cpp backend's reduced-precision options for the default's family (bf16 / int8
        # where they are native: emulations are not timed)
        from audiogen_fast.engine import fast_cpu_dtypes

        short = {"float16": "fp16", "bfloat16": "bf16", "int8": "int8"}
        wanted = [f"cpp/{short[dt]}" for dt in fast_cpu_dtypes(DEFAULT_FAMILY)]
        for label in wanted:
            assert [ln for ln in r.stdout.splitlines() if ln.strip().startswith(label + " ") and "RTF" in ln], r.stdout
    out, out_sr = sf.read(tmp_path / "o.wav")
    assert out_sr == 16000 and abs(len(out) - 16000 // 5) <= 256 and np.isfinite(out).all()
