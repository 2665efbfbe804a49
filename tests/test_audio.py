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


@pytest.mark.parametrize("preset", ["tiny-diffwave", "speech-diffwave-16k"])
def test_mel_stream_equals_the_whole_signal_mel(preset):
    """MelStream (vocode --stream) gives mel_spectrogram()'s frames for any chunking, short
    signals included (shorter than the STFT's reflection pad: zero-padded as the one-shot mel is)."""
    from audiogen_fast.audio import MelStream

    cfg = agf.build(preset).config
    pad, hop = cfg.n_fft // 2, cfg.hop_length
    rng = np.random.default_rng(0)
    for n in (1, pad - 1, pad, pad + 1, hop, 3 * hop + 5, 2 * cfg.n_fft + 17):
        x = (0.3 * rng.standard_normal(n)).astype(np.float32)
        whole = mel_spectrogram(x, cfg)
        for sizes in ([n], [1] * min(n, 300) + [n], list(rng.integers(1, 3 * hop, 50)) + [n]):
            ms, parts, i = MelStream(cfg), [], 0
            for s in sizes:
                parts.append(ms.push(x[i:i + s]))
                i += s
                if i >= n:
                    break
            parts.append(ms.finish())
            got = np.concatenate(parts, axis=1)
            assert got.shape == whole.shape, (n, got.shape, whole.shape)
            err = np.abs(got - whole).max()
            print(preset, n, err)
            assert err <= 1e-5, n  # float rounding of the STFT of a segment vs the whole (measured 5e-7)
