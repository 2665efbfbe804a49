import numpy as np
import pytest

import audiogen_fast as agf
from audiogen_fast.audio import AudioError, mel_filterbank, mel_spectrogram, resample


def test_mel_shape_and_peak():
    cfg = agf.build("tiny-wavenet").config
    sr = cfg.sample_rate
    t = np.arange(sr) / sr
    mel = mel_spectrogram((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), cfg)
    assert mel.shape == (cfg.n_mels, 1 + sr // cfg.hop_length) and mel.dtype == np.float32
    fb = mel_filterbank(sr, cfg.n_fft, cfg.n_mels, 0.0, 4000.0)
    bin_1k = int(round(1000 / (sr / cfg.n_fft)))
    assert np.argmax(mel[:, mel.shape[1] // 2]) == np.argmax(fb[:, bin_1k])
    assert np.allclose(mel_spectrogram(np.zeros(1000, np.float32), cfg), np.log(1e-5))


def test_mel_bad_input():
    cfg = agf.build("tiny-wavenet").config
    with pytest.raises(AudioError, match="empty"):
        mel_spectrogram(np.zeros(0, np.float32), cfg)
    with pytest.raises(AudioError, match="NaN"):
        mel_spectrogram(np.array([0.0, np.nan] * 100, np.float32), cfg)
    # very short wavs still give 1 + N // hop frames
    assert mel_spectrogram(np.zeros(10, np.float32), cfg).shape == (16, 1)


def test_resample_keeps_a_tone():
    sr, f = 16000, 440.0
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * f * t).astype(np.float32)
    y = resample(x, sr, 22050)
    assert len(y) == 22050
    t2 = np.arange(len(y)) / 22050
    ref = np.sin(2 * np.pi * f * t2)
    assert np.abs(y[500:-500] - ref[500:-500]).max() < 2e-3
