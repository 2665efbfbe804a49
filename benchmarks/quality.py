"""Copy-synthesis quality on held-out utterances: PESQ (wide band, 16 kHz), STOI, log-mel L1,
next to Griffin-Lim from the same mel as a reference row.

    python3 benchmarks/quality.py --data runs/speech16k/test [--ckpt CKPT] [--n 24] [--out results.json] [--one-step] [--yardsticks]

Needs `pip install pesq pystoi`. Every utterance: mel = voc.mel(wav) (the model's own features),
audio = voc.generate(mel), trimmed to the input length; Griffin-Lim inverts the same mel
(non-negative least-squares mel -> linear magnitude, 60 iterations). Metrics at 16 kHz; log-mel L1
over all frames and over speech frames (within 40 dB of the loudest frame: a noise floor where the
input is digitally silent shows only in the first); level offset / spread: the median and robust
spread (IQR / 1.349) of the output's minus the input's frame energy in dB over speech frames.
--one-step adds a row for teacher-forced one-step sampling (each sample drawn given the true past:
the gap to the model's row is what compounding errors cost); --yardsticks adds rows for known
distortions of the clean input (white noise, a noise floor, level jitter, the mu-law round trip)
to read the metrics by.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import audiogen_fast as agf  # noqa: E402
from audiogen_fast.audio import load_wav, mel_filterbank, mel_spectrogram, resample  # noqa: E402


def griffin_lim_from_mel(mel: np.ndarray, cfg, n_samples: int, iters: int = 60) -> np.ndarray:
    """log-mel (cfg.mel_norm == "log") -> waveform: mel magnitudes, least-squares inverse of the
    filterbank (clamped >= 0), then Griffin-Lim phase reconstruction with torch.stft / istft."""
    if cfg.mel_norm != "log":
        raise ValueError("Griffin-Lim reference implemented for mel_norm='log'")
    fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2
    fb = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), float(fmax),
                                         cfg.mel_scale, cfg.mel_filter_norm)).double()
    m = torch.exp(torch.from_numpy(mel).double())
    # min-norm least squares (gelsd: SVD). The default driver, gelsy, returned zeros or a
    # different answer on each call for this under-determined system on our 2-core AMD VM.
    mag = torch.linalg.lstsq(fb, m, driver="gelsd").solution.clamp(min=0).float()   # [F, frames]
    win = torch.hann_window(cfg.win_length)
    rng = torch.Generator().manual_seed(0)
    phase = torch.exp(2j * np.pi * torch.rand(mag.shape, generator=rng))
    spec = mag * phase
    for _ in range(iters):
        x = torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, win, length=n_samples)
        s = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, win, return_complex=True)
        spec = mag * torch.exp(1j * torch.angle(s))
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, win, length=n_samples).numpy()


def metrics(ref: np.ndarray, deg: np.ndarray, sr: int, cfg) -> dict:
    from pesq import pesq
    from pystoi import stoi

    r16, d16 = (resample(ref, sr, 16000), resample(deg, sr, 16000)) if sr != 16000 else (ref, deg)
    n = min(len(r16), len(d16))
    r16, d16 = r16[:n].astype(np.float64), d16[:n].astype(np.float64)  # pesq fails on some float32 input
    m_ref, m_deg = mel_spectrogram(ref, cfg), mel_spectrogram(deg[: len(ref)], cfg)
    k = min(m_ref.shape[1], m_deg.shape[1])
    err = np.abs(m_ref[:, :k] - m_deg[:, :k])                      # [n_mels, frames]
    # speech frames: mean log-mel within ln(100) of the loudest frame (40 dB in magnitude), so that a
    # noise floor in the input's digital silences (log-mel at its clamp) does not dominate the mean
    level = m_ref[:, :k].mean(0)
    speech = level > level.max() - np.log(100.0)
    # level tracking: per frame (the config's STFT), output minus input energy in dB over the frames
    # within 40 dB of the input's loudest; its median (offset) and robust spread (IQR / 1.349)
    win = torch.hann_window(cfg.win_length, dtype=torch.float64)

    def frame_db(x):
        X = torch.stft(torch.from_numpy(x), cfg.n_fft, cfg.hop_length, cfg.win_length, win, return_complex=True)
        return 10.0 * np.log10((X.abs() ** 2).sum(0).numpy() + 1e-10)

    lr_, ld_ = frame_db(ref.astype(np.float64)), frame_db(deg[: len(ref)].astype(np.float64))
    j = min(len(lr_), len(ld_))
    diff = (ld_[:j] - lr_[:j])[lr_[:j] > lr_[:j].max() - 40.0]
    q25, q50, q75 = np.percentile(diff, [25, 50, 75])
    return {"pesq_wb": float(pesq(16000, r16, d16, "wb")), "stoi": float(stoi(r16, d16, 16000, extended=False)),
            "logmel_l1": float(err.mean()), "logmel_l1_speech": float(err[:, speech].mean()),
            "level_offset_db": float(q50), "level_spread_db": float((q75 - q25) / 1.349)}


def yardsticks(wav: np.ndarray, sr: int, rng: np.random.Generator) -> dict:
    """Known distortions of the clean input, scored like a model's output, to read the metrics by:
    white noise at a given SNR (over the whole file), a white floor of fixed std (what a model
    trained with --dither 1e-3 leaves in digital silence), a random per-frame gain (a model whose
    level wanders around the mel's: std in dB, interpolated between hop-spaced points), and the
    8-bit mu-law round trip (the ceiling of the default's output layer)."""
    from audiogen_fast.sampling import mulaw_decode, mulaw_encode

    w = wav.astype(np.float64)
    p = float(np.mean(w ** 2))
    hop = 256
    n = len(w) // hop + 2

    def gain(std_db):
        g = 10.0 ** (rng.normal(0.0, std_db, n) / 20.0)
        return w * np.interp(np.arange(len(w)) / hop, np.arange(n), g)

    return {**{f"white noise, SNR {snr} dB": w + rng.normal(0, np.sqrt(p / 10 ** (snr / 10)), len(w)) for snr in (20, 10)},
            **{f"white floor, std {std:g}": w + rng.normal(0, std, len(w)) for std in (1e-3, 3e-3)},
            **{f"frame gain jitter, std {s} dB": gain(s) for s in (3, 6)},
            "mu-law 256 round trip": mulaw_decode(mulaw_encode(w.astype(np.float32), 256), 256).astype(np.float64)}


def one_step(voc, wav: np.ndarray, mel: np.ndarray, seed: int = 0) -> np.ndarray:
    """Teacher-forced one-step sampling of a mu-law WaveNet: every sample drawn given the TRUE past
    (the model's parallel forward on the clean input), with the inverse-CDF rule and the noise that
    generation draws from the same seed. Its score next to the free-running output's is the
    exposure gap: what the errors that compound through the model's own past cost."""
    from audiogen_fast.models.wavenet.runtime import draw_noise, initial_input
    from audiogen_fast.sampling import mulaw_decode, mulaw_encode, sample_softmax
    from audiogen_fast.emphasis import preemphasize

    cfg, model = voc.config, voc.model
    if cfg.family != "wavenet" or cfg.output != "mulaw":
        raise ValueError("--one-step is implemented for mu-law WaveNets")
    a = cfg.preemphasis
    x = torch.as_tensor(mulaw_encode(preemphasize(wav, a), cfg.quantize_channels))          # [T] true classes
    inp = torch.cat([torch.tensor([initial_input(cfg)]), x[:-1]])[None]
    p = next(model.parameters())
    with torch.no_grad():
        logits = model(inp.to(p.device), torch.from_numpy(mel)[None].to(p.device, p.dtype))[0].T.float().cpu()
    u = torch.from_numpy(draw_noise(cfg, seed, len(x)))
    e = mulaw_decode(sample_softmax(logits, u).numpy(), cfg.quantize_channels).astype(np.float64)
    if a:   # de-emphasis through the true past: x^[n] = e^[n] + a x[n-1]
        e[1:] += a * wav[:-1].astype(np.float64)
    return e.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--ckpt", default=None, help="default: the bundled model")
    ap.add_argument("--n", type=int, default=24, help="held-out utterances to score")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", default=None)
    ap.add_argument("--schedule", default=None, help="DiffWave: the denoising schedule (fast, full; default: the config's)")
    ap.add_argument("--one-step", action="store_true",
                    help="also score teacher-forced one-step sampling (each sample given the true past): the exposure gap")
    ap.add_argument("--yardsticks", action="store_true",
                    help="also score known distortions of the clean input (white noise, a noise floor, level jitter, mu-law)")
    args = ap.parse_args()
    voc = agf.load(args.ckpt, device="cpu", backend=args.backend)
    cfg = voc.config
    files = sorted(glob.glob(os.path.join(args.data, "*.wav")))
    step = max(1, len(files) // args.n)
    files = files[::step][: args.n]
    rows = {"model": [], "griffin_lim": []}
    rng = np.random.default_rng(0)
    kw = {"schedule": args.schedule} if args.schedule else {}   # DiffWave only
    for f in files:
        wav, _ = load_wav(f, sample_rate=cfg.sample_rate)
        mel = voc.mel(wav)
        out = voc.generate(mel=mel, seed=0, **kw)[: len(wav)]
        gl = griffin_lim_from_mel(mel, cfg, len(wav))
        rows["model"].append(metrics(wav, out, cfg.sample_rate, cfg))
        rows["griffin_lim"].append(metrics(wav, gl, cfg.sample_rate, cfg))
        if args.one_step:
            rows.setdefault("one-step (true past)", []).append(metrics(wav, one_step(voc, wav, mel), cfg.sample_rate, cfg))
        if args.yardsticks:
            for name, deg in yardsticks(wav, cfg.sample_rate, rng).items():
                rows.setdefault(name, []).append(metrics(wav, deg, cfg.sample_rate, cfg))
        print(os.path.basename(f), {k: round(v, 3) for k, v in rows["model"][-1].items()},
              "GL", {k: round(v, 3) for k, v in rows["griffin_lim"][-1].items()}, flush=True)
    summary = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
    print("\n| system | PESQ (wb) | STOI | log-mel L1 | log-mel L1, speech frames | level offset / spread (dB) |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['pesq_wb']:.2f} | {s['stoi']:.3f} | {s['logmel_l1']:.3f} | {s['logmel_l1_speech']:.3f} | "
              f"{s['level_offset_db']:+.1f} / {s['level_spread_db']:.1f} |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"ckpt": args.ckpt or "default", "schedule": args.schedule, "n": len(files), "summary": summary, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
