"""Streaming: chunked vocoding equals one-shot generation with the same seed (AR models), on every
backend here; DiffWave's overlap-window streaming stays within a measured boundary error."""
import numpy as np
import pytest

import audiogen_fast as agf
from conftest import random_mel

AR = ["tiny-wavenet", "tiny-wavernn"]


def _backends(voc_model):
    fam = agf.Vocoder(voc_model, device="cpu").family
    return [b for b in fam.runtime.BACKENDS if b in ("torch", "cpp") and agf.backends()[b][0]]


def _chunks(mel, sizes):
    i = 0
    for s in sizes:
        if i >= mel.shape[-1]:
            break
        yield mel[..., i:i + s]
        i += s
    if i < mel.shape[-1]:
        yield mel[..., i:]


@pytest.mark.parametrize("preset", AR)
@pytest.mark.parametrize("sizes", [[1] * 50, [3, 7, 1, 20, 2, 30], [50], [13, 13, 13, 13]])
def test_stream_equals_generate(preset, sizes):
    model = agf.build(preset, seed=2)
    mel = random_mel(model.config, 41)
    for backend in _backends(model):
        voc = agf.Vocoder(model, device="cpu", backend=backend)
        whole = voc.generate(mel=mel, seed=5)
        parts = list(voc.stream(_chunks(mel, sizes), seed=5))
        assert all(p.ndim == 1 and p.dtype == np.float32 for p in parts)
        assert np.array_equal(np.concatenate(parts), whole), backend


@pytest.mark.parametrize("pad", [0, 1])
def test_wavernn_stream_equals_generate_where_smoothing_reaches_the_ends(pad):
    """pad < 2: the first and last frames' smoothing reads past the padded mel's ends, where the
    stages' zero padding applies (UpsampleNetwork.smooth_frames computes those frames by the stages)."""
    model = agf.build("tiny-wavernn", seed=4, pad=pad)
    assert -model.upsample.span[0] > pad
    mel = random_mel(model.config, 29)
    for backend in _backends(model):
        voc = agf.Vocoder(model, device="cpu", backend=backend)
        whole = voc.generate(mel=mel, seed=3)
        for sizes in ([1] * 29, [5, 11, 13]):
            assert np.array_equal(np.concatenate(list(voc.stream(_chunks(mel, sizes), seed=3))), whole), (backend, sizes)


@pytest.mark.parametrize("preset", AR)
def test_stream_variants_and_batches(preset):
    kw = dict(output="mol", n_mix=3, kernel_size=3, cin_pad=2) if preset == "tiny-wavenet" else dict(mode="MOL", n_mix=3)
    model = agf.build(preset, seed=3, **kw)
    mels = np.stack([random_mel(model.config, 30, rng=np.random.default_rng(i)) for i in range(3)])
    voc = agf.Vocoder(model, device="cpu")
    whole = voc.generate(mel=mels, seed=[1, 2, 3])
    parts = list(voc.stream(_chunks(mels, [4, 9, 17]), seed=[1, 2, 3]))
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    # each stream of the batch equals streaming it alone (continuous MoL samples: up to fp32
    # rounding, since a batched convolution sums in another order)
    alone = np.concatenate(list(voc.stream(_chunks(mels[1], [5, 25]), seed=2)))
    assert np.abs(alone - whole[1]).max() <= 1e-5


def test_stream_emits_audio_before_the_end():
    model = agf.build("tiny-wavenet")
    voc = agf.Vocoder(model, device="cpu")
    mel = random_mel(model.config, 60)
    got = []
    gen = voc.stream(_chunks(mel, [5] * 12), seed=0)
    first = next(gen)  # available long before the 60 frames are in
    got.append(first)
    assert 0 < first.shape[0] < 60 * voc.hop_length


def test_stream_errors():
    voc = agf.load("preset:tiny-wavenet", device="cpu")
    with pytest.raises(agf.InputError, match="n_mels"):
        list(voc.stream([np.zeros((5, 3), np.float32)]))
    with pytest.raises(agf.InputError, match="layout"):
        list(voc.stream([np.zeros((16, 3), np.float32), np.zeros((2, 16, 3), np.float32)]))
    with pytest.raises(agf.InputError, match="NaN"):
        list(voc.stream([np.full((16, 3), np.nan, np.float32)]))
    assert list(voc.stream([])) == []
    unc = agf.Vocoder(agf.build("tiny-wavenet", conditional=False), device="cpu")
    with pytest.raises(agf.InputError, match="unconditional"):
        list(unc.stream([np.zeros((16, 3), np.float32)]))


@pytest.mark.parametrize("preset", AR + ["tiny-diffwave"])
def test_empty_chunks_are_skipped(preset):
    """A chunk with no frames (a read that brought none) changes nothing, first chunk included; the
    same for MultiStream.push. A zero-frame generate() is still an error."""
    model = agf.build(preset, seed=2)
    mel = random_mel(model.config, 30)
    voc = agf.Vocoder(model, device="cpu")
    plain = np.concatenate(list(voc.stream(_chunks(mel, [4, 9, 17]), seed=5)))
    gappy = np.concatenate(list(voc.stream(_chunks(mel, [0, 4, 0, 0, 9, 0, 17, 0]), seed=5)))
    assert np.array_equal(gappy, plain)
    assert list(voc.stream([mel[:, :0]] * 3, seed=5)) == []
    with pytest.raises(agf.InputError, match="zero frames"):
        voc.generate(mel=mel[:, :0], seed=5)
    if preset == "tiny-diffwave":
        return  # open_streams() runs the autoregressive models
    assert np.array_equal(plain, voc.generate(mel=mel, seed=5))
    ms = voc.open_streams()
    sid = ms.add(seed=5)
    for a, b in ((0, 0), (0, 4), (4, 4), (4, 30), (30, 30)):
        ms.push(sid, mel[:, a:b])
    ms.end(sid)
    got = []
    for _ in range(100):
        out = ms.step()
        if not out:
            break
        got.append(out[sid])
    assert np.array_equal(np.concatenate(got), plain)


def test_diffwave_stream_boundary_error_is_small():
    model = agf.build("tiny-diffwave", seed=1)
    voc = agf.Vocoder(model, device="cpu")
    mel = random_mel(model.config, 100)
    whole = voc.generate(mel=mel, seed=4)
    got = np.concatenate(list(voc.stream(_chunks(mel, [7, 30, 1, 40, 22]), seed=4)))
    assert got.shape == whole.shape
    err = np.abs(got - whole).max()
    print(f"tiny-diffwave stream vs one-shot: max abs error {err:.2e}")
    # the tiny model's receptive field (4 layers, 6 steps: ~70 samples) is inside the 16-frame
    # (1024-sample) context, so only float rounding remains
    assert err <= 1e-4


@pytest.mark.parametrize("preset", AR)
def test_many_streams_each_equals_running_alone(preset):
    model = agf.build(preset, seed=4)
    cfg = model.config
    mels = [random_mel(cfg, f, rng=np.random.default_rng(f)) for f in (37, 20, 45)]
    seeds = [3, 9, 1]
    from audiogen_fast.engine import CPU_DTYPES

    runs = [(backend, dt) for backend in _backends(model)
            for dt in ["float32"] + (list(CPU_DTYPES[cfg.family]) if backend == "cpp" else [])]
    for backend, dtype in runs:   # the cpp backend's reduced-precision options too
        voc = agf.Vocoder(model, device="cpu", backend=backend, dtype=dtype)
        ms = voc.open_streams()
        ids, pos, got = {}, {}, {}
        chunk = {0: 5, 1: 3, 2: 11}
        for step in range(200):
            if step in (0, 2, 5):  # streams start at different times
                k = (0, 2, 5).index(step)
                ids[k] = ms.add(seed=seeds[k])
                pos[k], got[k] = 0, []
            for k, sid in ids.items():
                if pos[k] < mels[k].shape[1]:
                    ms.push(sid, mels[k][:, pos[k]:pos[k] + chunk[k]])
                    pos[k] += chunk[k]
                    if pos[k] >= mels[k].shape[1]:
                        ms.end(sid)
            for sid, audio in ms.step().items():
                got[[k for k, v in ids.items() if v == sid][0]].append(audio)
        for k in range(3):
            alone = voc.generate(mel=mels[k], seed=seeds[k])
            assert np.array_equal(np.concatenate(got[k]), alone), (backend, dtype, k)
    with pytest.raises(agf.InputError, match="unknown stream"):
        ms.push(99, mels[0])


@pytest.mark.parametrize("preset", AR)
def test_the_batched_step_runs_its_torch_work_on_one_thread(preset):
    """open_streams().step(): the batch's concatenations, noise and decoding run on one torch
    thread around the loop call (base.one_torch_thread: libgomp's workers would spin after each
    parallel region and take cores from the C++ loop), and the caller's count is back afterwards."""
    import torch

    model = agf.build(preset, seed=0)
    voc = agf.Vocoder(model, device="cpu", backend=_backends(model)[-1])
    ms = voc.open_streams()
    seen = []
    run_chunk = ms.loop.run_chunk

    def recording(*a, **kw):
        seen.append(torch.get_num_threads())
        return run_chunk(*a, **kw)
    ms.loop.run_chunk = recording
    for s in (1, 2):
        sid = ms.add(seed=s)
        ms.push(sid, random_mel(model.config, 30, rng=np.random.default_rng(s)))
        ms.end(sid)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        n = 0
        while ms.step():
            n += 1
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert n > 1 and seen and set(seen) == {1}, (n, seen)
