"""Audio I/O (soundfile) and the mel spectrogram every model family is conditioned on.

The mel settings live in each checkpoint's config (sample_rate, n_fft, hop_length, win_length,
n_mels, fmin, fmax, mel_norm), so ``Vocoder.mel(wav)`` always reproduces the features the model
was trained on. STFT: torch.stft, Hann window, centred with reflection padding, so a wav of N
samples gives 1 + N // hop frames. Filterbank: Slaney mel scale with Slaney area normalisation
(librosa's default).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

MEL_NORMS = ("log", "lmnt")


class AudioError(ValueError):
    """A wav file or waveform that cannot be used (wrong rate, unreadable, not finite...)."""


def load_wav(path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a wav (any format soundfile reads) as mono float32 in [-1, 1].

    If ``sample_rate`` is given and the file's rate differs, it is resampled (soxr) — never
    silently reinterpreted.
    """
    import soundfile as sf  # imported lazily: GPU machines may not have it

    check_input_path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises its own error types
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    wav = data.mean(axis=1).astype(np.float32)
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"audio file {path} contains NaN or inf samples")
    if sample_rate is not None and sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, sr


def check_input_path(path) -> None:
    """An AudioError naming what is wrong with an input path before a reader says "System error"
    (libsndfile's message for a missing file)."""
    if not os.path.exists(path):
        raise AudioError(f"cannot read audio file {path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"cannot read audio file {path}: it is a directory")


def check_output_path(path) -> None:
    """Before any work: the folder exists and the extension names a format soundfile writes as
    16-bit PCM (.wav, .flac, .aiff, ...)."""
    import soundfile as sf

    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise AudioError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise AudioError(f"cannot write {path}: it is a folder")
    ext = os.path.splitext(path)[1][1:].upper()
    if ext not in sf.available_formats() or not sf.check_format(ext, "PCM_16"):
        raise AudioError(f"cannot write {path}: the extension must name a 16-bit PCM audio format "
                         f"(.wav, .flac, .aiff, ...), got {'.' + ext.lower() if ext else 'none'}")


def save_wav(path, wav: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    check_output_path(path)
    wav = np.asarray(wav, dtype=np.float32)
    try:
        sf.write(str(path), np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16")
    except Exception as e:  # soundfile raises its own error types (a full disk, no permission)
        raise AudioError(f"cannot write {path}: {e}") from None


def resample(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling with libsoxr (the soxr package, "HQ" quality)."""
    import soxr

    if int(orig_sr) <= 0 or int(new_sr) <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return np.asarray(wav, dtype=np.float32)
    return soxr.resample(np.asarray(wav, dtype=np.float32), int(orig_sr), int(new_sr), quality="HQ").astype(np.float32)


# ---- mel spectrogram ---------------------------------------------------------------------


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _hz_to_mel_htk(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz_htk(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, scale: str = "slaney",
                   norm: str = "slaney") -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney or HTK mel scale, optionally
    Slaney area-normalised (scale="htk", norm="none" is torchaudio's MelScale default)."""
    to_mel, to_hz = (_hz_to_mel, _mel_to_hz) if scale == "slaney" else (_hz_to_mel_htk, _mel_to_hz_htk)
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        w *= (2.0 / (mel_pts[2:n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return w.astype(np.float32)


def mel_magnitude(x: torch.Tensor, cfg) -> torch.Tensor:
    """x [B, N] float tensor -> mel magnitudes [B, n_mels, 1 + N // hop + ...] (centred frames,
    reflection padding; not cut to 1 + N // hop), in torch ops on x's device: differentiable (the
    training's log-mel loss) and the core of mel_spectrogram."""
    window = torch.hann_window(cfg.win_length, device=x.device)
    spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window=window,
                      center=True, pad_mode="reflect", return_complex=True).abs()
    if getattr(cfg, "stft_normalized", False):
        spec = spec / window.pow(2).sum().sqrt()
    fmax = cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2
    fb = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, float(cfg.fmin), float(fmax),
                                         getattr(cfg, "mel_scale", "slaney"), getattr(cfg, "mel_filter_norm", "slaney")))
    return torch.matmul(fb.to(x.device), spec)


def mel_spectrogram(wav, cfg) -> np.ndarray:
    """wav [N] or [B, N] float -> mel [n_mels, 1 + N // hop] (or [B, ...]) float32.

    cfg: any object with the audio fields of models.base.AudioConfig.
    mel_norm "log": ln(max(mel_magnitude, 1e-5)) (HiFi-GAN style);
    mel_norm "lmnt": lmnt-com/diffwave's 20*log10(max(m, 1e-5)) - 20, mapped to [0, 1].
    """
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32))
    squeeze = x.ndim == 1
    if squeeze:
        x = x.unsqueeze(0)
    if x.ndim != 2:
        raise AudioError(f"wav must be 1-D [samples] or 2-D [batch, samples], got shape {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise AudioError("wav is empty (0 samples)")
    if not torch.isfinite(x).all():
        raise AudioError("wav contains NaN or inf")
    pad = cfg.n_fft // 2
    if x.shape[-1] <= pad:  # reflection padding needs more samples than the pad
        x = torch.nn.functional.pad(x, (0, pad + 1 - x.shape[-1]))
    mel = mel_magnitude(x, cfg)
    n_frames = 1 + int(np.asarray(wav).shape[-1]) // cfg.hop_length
    mel = mel[..., :n_frames]
    if cfg.mel_norm == "log":
        mel = torch.log(torch.clamp(mel, min=1e-5))
    elif cfg.mel_norm == "lmnt":
        mel = 20.0 * torch.log10(torch.clamp(mel, min=1e-5)) - 20.0
        mel = torch.clamp((mel + 100.0) / 100.0, 0.0, 1.0)
    else:
        raise AudioError(f"unknown mel_norm {cfg.mel_norm!r} (expected one of {MEL_NORMS})")
    out = mel.numpy().astype(np.float32)
    return out[0] if squeeze else out


class MelStream:
    """Mel frames of a signal that arrives in pieces: push(samples) returns the frames whose STFT
    windows are complete, finish() the rest. The frames are those of mel_spectrogram() on the whole
    signal (centred frames, reflection padding at both ends): 1 + N // hop frames in all. Memory
    holds one window of samples."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.pad = cfg.n_fft // 2
        self.buf = np.zeros(0, np.float32)
        self.buf_lo = 0       # absolute index of buf[0]
        self.N = 0            # samples received
        self.t = 0            # next frame

    def push(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(x)):
            raise AudioError("audio contains NaN or inf")
        self.buf = np.concatenate([self.buf, x])
        self.N += len(x)
        # frame t needs the original samples [t*hop - pad, t*hop + n_fft - pad) (reflected below 0,
        # which needs pad + 1 samples)
        right = self.cfg.n_fft - self.pad
        if self.N < max(self.pad + 1, right):
            return np.zeros((self.cfg.n_mels, 0), np.float32)
        return self._frames(self.t, (self.N - right) // self.cfg.hop_length + 1, final=False)

    def finish(self) -> np.ndarray:
        if self.N == 0:
            raise AudioError("audio is empty (0 samples)")
        total = 1 + self.N // self.cfg.hop_length
        if self.N <= self.pad:  # as mel_spectrogram: zeros up to pad + 1 samples give the reflection room
            self.buf = np.concatenate([self.buf, np.zeros(self.pad + 1 - self.N, np.float32)])
            self.N = self.pad + 1
        return self._frames(self.t, total, final=True)

    def _frames(self, t0, t1, final) -> np.ndarray:
        hop, pad, n_fft = self.cfg.hop_length, self.pad, self.cfg.n_fft
        if t1 <= t0:
            return np.zeros((self.cfg.n_mels, 0), np.float32)
        a, b = t0 * hop - pad, (t1 - 1) * hop + pad + (n_fft - 2 * pad)  # original range [a, b)
        idx = np.arange(a, b)
        if final or self.N <= pad:
            n = self.N
            # reflection at the right end: index N-1+k -> N-1-k
            idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
        idx = np.where(idx < 0, -idx, idx)  # reflection at the left end
        if np.any(idx < self.buf_lo) or np.any(idx >= self.N):
            raise AudioError("audio too short for its STFT window")
        seg = self.buf[idx - self.buf_lo]
        x = torch.from_numpy(seg)
        window = torch.hann_window(self.cfg.win_length)
        spec = torch.stft(x, n_fft, hop_length=hop, win_length=self.cfg.win_length, window=window, center=False,
                          return_complex=True).abs()[..., : t1 - t0]
        if getattr(self.cfg, "stft_normalized", False):
            spec = spec / window.pow(2).sum().sqrt()
        fmax = self.cfg.fmax if self.cfg.fmax is not None else self.cfg.sample_rate / 2
        fb = torch.from_numpy(mel_filterbank(self.cfg.sample_rate, n_fft, self.cfg.n_mels, float(self.cfg.fmin),
                                             float(fmax), getattr(self.cfg, "mel_scale", "slaney"),
                                             getattr(self.cfg, "mel_filter_norm", "slaney")))
        mel = _normalise(torch.matmul(fb, spec), self.cfg).numpy().astype(np.float32)
        self.t = t1
        keep = max(0, t1 * hop - pad)
        if keep > self.buf_lo and keep - self.buf_lo <= len(self.buf):
            self.buf = self.buf[keep - self.buf_lo:]
            self.buf_lo = keep
        return mel


def _normalise(mel: torch.Tensor, cfg) -> torch.Tensor:
    if cfg.mel_norm == "log":
        return torch.log(torch.clamp(mel, min=1e-5))
    if cfg.mel_norm == "lmnt":
        m = 20.0 * torch.log10(torch.clamp(mel, min=1e-5)) - 20.0
        return torch.clamp((m + 100.0) / 100.0, 0.0, 1.0)
    raise AudioError(f"unknown mel_norm {cfg.mel_norm!r} (expected one of {MEL_NORMS})")
