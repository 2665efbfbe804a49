"""Pre-emphasis (AudioConfig.preemphasis): the filters, and the engine's de-emphasis of what every
backend samples, in generate(), stream() and open_streams()."""
import builtins

import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast.emphasis import Deemphasis, deemphasize, preemphasize
from audiogen_fast.models.base import ConfigError


def test_deemphasis_inverts_preemphasis_and_is_chunking_invariant():
    rng = np.random.default_rng(0)
    x = 0.5 * rng.standard_normal((3, 5000))
    e = preemphasize(x, 0.85)
    assert np.allclose(e[:, 1:], x[:, 1:] - 0.85 * x[:, :-1]) and np.array_equal(e[:, 0], x[:, 0])
    assert torch.allclose(preemphasize(torch.from_numpy(x), 0.85), torch.from_numpy(e))
    y = deemphasize(e, 0.85)
    assert y.dtype == np.float32 and np.abs(y - np.clip(x, -1, 1)).max() < 1e-6
    # chunks of any size give bit-identical audio: streaming equals one-shot
    d = Deemphasis(0.85, 3)
    cuts = [0, 1, 7, 7, 300, 2048, 5000]
    parts = [d(e[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    assert np.array_equal(np.concatenate(parts, axis=1), y)
    with pytest.raises(ValueError, match="3 row"):
        d(e[:2])


def test_deemphasis_without_scipy_is_bit_identical(monkeypatch):
    e = preemphasize(0.4 * np.random.default_rng(1).standard_normal((2, 3000)), 0.9)
    with_scipy = Deemphasis(0.9, 2)
    ref = np.concatenate([with_scipy(e[:, :1000]), with_scipy(e[:, 1000:])], axis=1)
    real_import = builtins.__import__

    def no_scipy(name, *a, **k):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    d = Deemphasis(0.9, 2)
    assert np.array_equal(np.concatenate([d(e[:, :1000]), d(e[:, 1000:])], axis=1), ref)


def test_preemphasis_is_validated_and_defaults_off():
    assert agf.build("tiny-wavenet").config.preemphasis == 0.0
    for bad in (-0.1, 1.0, "0.8"):
        with pytest.raises(ConfigError, match="preemphasis"):
            agf.build("tiny-wavenet", preemphasis=bad)


def _pair(family, tmp_path):
    """The same weights with and without pre-emphasis, through a checkpoint."""
    m0 = agf.build(f"tiny-{family}", seed=3)
    m1 = agf.build(f"tiny-{family}", seed=3, preemphasis=0.85)
    m1.load_state_dict(m0.state_dict())
    p = tmp_path / f"{family}-pe.safetensors"
    agf.save(m1, p)
    assert agf.load_model(p).config.preemphasis == 0.85
    return m0, agf.load_model(p)


@pytest.mark.parametrize("family", ["wavenet", "wavernn", "diffwave"])
def test_generate_de_emphasises_what_the_network_samples(family, tmp_path):
    m0, m1 = _pair(family, tmp_path)
    mel = np.random.default_rng(0).standard_normal((2, 16, 6)).astype(np.float32) - 2
    for be in [b for b in ("torch", "cpp") if agf.backends()[b][0]]:
        raw = agf.Vocoder(m0, device="cpu", backend=be).generate(mel=mel, seed=[1, 2])
        out = agf.Vocoder(m1, device="cpu", backend=be).generate(mel=mel, seed=[1, 2])
        assert np.array_equal(out, deemphasize(raw, 0.85)), be
        assert not np.allclose(out, raw, atol=1e-3)


@pytest.mark.parametrize("family", ["wavenet", "wavernn"])
def test_streams_equal_generate_with_preemphasis(family, tmp_path):
    _, m1 = _pair(family, tmp_path)
    mel = np.random.default_rng(1).standard_normal((16, 12)).astype(np.float32) - 2
    for be in [b for b in ("torch", "cpp") if agf.backends()[b][0]]:
        voc = agf.Vocoder(m1, device="cpu", backend=be)
        ref = voc.generate(mel=mel, seed=4)
        chunks = list(voc.stream([mel[:, :5], mel[:, 5:6], mel[:, 6:]], seed=4))
        assert np.array_equal(np.concatenate(chunks), ref), be
        ms = voc.open_streams()
        a, b = ms.add(seed=4), ms.add(seed=5)
        ms.push(a, mel)
        ms.push(b, mel[:, :7])
        ms.end(a)
        got = {a: [], b: []}
        for _ in range(200):
            res = ms.step()
            if not res:
                break
            for sid, audio in res.items():
                got[sid].append(audio)
        assert np.array_equal(np.concatenate(got[a])[: len(ref)], ref), be
