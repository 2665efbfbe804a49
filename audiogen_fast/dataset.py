"""A reproducible speech dataset: espeak-ng (Debian package espeak-ng) reading the sentences in
audiogen_fast/data/sentences.txt with several voices, pitches and speeds.

    audiogen-fast dataset OUT_DIR [--sample-rate 16000]

writes OUT_DIR/train/*.wav, OUT_DIR/test/*.wav and OUT_DIR/manifest.json. The held-out split has
sentences never seen in training (every 8th sentence) read by the training voices, plus every
sentence of one held-out voice. Everything is deterministic: voices, pitches and speeds are picked
by a seeded generator per (sentence, take), so the same command rebuilds the same files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

SENTENCES = os.path.join(os.path.dirname(__file__), "data", "sentences.txt")
TRAIN_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us+f2", "en-us+m3",
                "en-gb+f3", "en-us+f4", "en-gb+m5"]
HELD_OUT_VOICE = "en-us+m7"
PITCHES = (35, 45, 55, 65)
SPEEDS = (135, 150, 165, 180)


class DatasetError(RuntimeError):
    pass


@dataclass
class Utterance:
    name: str
    split: str
    text: str
    voice: str
    pitch: int
    speed: int


def plan(sentences, takes: int = 3, seed: int = 0) -> list[Utterance]:
    """The utterances to synthesise: `takes` readings per training sentence (seeded voice, pitch
    and speed), held-out sentences with training voices, and every sentence with the held-out voice."""
    rng = np.random.default_rng(seed)
    out = []
    for i, text in enumerate(sentences):
        held = i % 8 == 7
        for k in range(takes if not held else 2):
            v = TRAIN_VOICES[int(rng.integers(len(TRAIN_VOICES)))]
            p = int(PITCHES[int(rng.integers(len(PITCHES)))])
            s = int(SPEEDS[int(rng.integers(len(SPEEDS)))])
            out.append(Utterance(f"s{i:03d}_{k}", "test" if held else "train", text, v, p, s))
        out.append(Utterance(f"s{i:03d}_heldvoice", "test", text, HELD_OUT_VOICE, 50, 155))
    return out


def synthesize(u: Utterance, path: str, sample_rate: int, espeak: str = "espeak-ng") -> int:
    """espeak-ng -> wav at sample_rate (soxr), peak-normalised to 0.9. Returns the sample count."""
    import soundfile as sf

    from .audio import resample

    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "raw.wav")
        r = subprocess.run([espeak, "-v", u.voice, "-p", str(u.pitch), "-s", str(u.speed), "-w", raw, u.text],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise DatasetError(f"espeak-ng failed for {u.name} ({u.voice}): {r.stderr.strip()}")
        x, sr = sf.read(raw, dtype="float32")
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = resample(x, sr, sample_rate)
    x = 0.9 * x / max(1e-6, float(np.abs(x).max()))
    sf.write(path, x, sample_rate, subtype="PCM_16")
    return len(x)


def build(out_dir: str, sample_rate: int = 16000, takes: int = 3, limit: int | None = None, seed: int = 0,
          log=print) -> dict:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise DatasetError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with open(SENTENCES) as f:
        sentences = [s.strip() for s in f if s.strip()]
    if limit:
        sentences = sentences[:limit]
    utts = plan(sentences, takes=takes, seed=seed)
    manifest = {"sample_rate": sample_rate, "seed": seed, "takes": takes, "held_out_voice": HELD_OUT_VOICE,
                "utterances": []}
    for split in ("train", "test"):
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    total = {"train": 0, "test": 0}
    for u in utts:
        path = os.path.join(out_dir, u.split, u.name + ".wav")
        n = synthesize(u, path, sample_rate, espeak)
        total[u.split] += n
        manifest["utterances"].append(dict(u.__dict__, path=os.path.relpath(path, out_dir), samples=n))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log(f"{len(utts)} utterances: train {total['train'] / sample_rate / 60:.1f} min, "
        f"test {total['test'] / sample_rate / 60:.1f} min at {sample_rate} Hz -> {out_dir}")
    return manifest
