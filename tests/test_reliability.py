"""Files and inputs from elsewhere: only the documented errors, never a crash or silent garbage."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audiogen_fast as agf
from conftest import random_mel

_GOOD = {}


def _good_bytes(tmp_path_factory=None):
    if "wn" not in _GOOD:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.safetensors")
            agf.save(agf.build("tiny-wavenet", layers=2), p)
            _GOOD["wn"] = open(p, "rb").read()
    return _GOOD["wn"]


def _load_bytes(tmp_path, data, name="f.safetensors"):
    p = tmp_path / name
    p.write_bytes(data)
    try:
        return agf.load_model(p)
    except agf.CheckpointError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=600))
def test_fuzz_random_bytes(tmp_path, data):
    for name in ("f.safetensors", "f.pt"):
        _load_bytes(tmp_path, data, name)  # anything but CheckpointError propagates and fails


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10 ** 6), pos=st.integers(min_value=0, max_value=10 ** 6),
       byte=st.integers(min_value=0, max_value=255), mode=st.sampled_from(["truncate", "flip", "header"]))
def test_fuzz_mutated_checkpoint(tmp_path, cut, pos, byte, mode):
    good = bytearray(_good_bytes())
    (n,) = struct.unpack("<Q", bytes(good[:8]))
    if mode == "truncate":
        data = bytes(good[: cut % len(good)])
    elif mode == "flip":
        good[pos % len(good)] = byte
        data = bytes(good)
    else:  # damage inside the JSON header (names, shapes, offsets, metadata)
        good[8 + pos % n] = byte
        data = bytes(good)
    model = _load_bytes(tmp_path, data)
    if model is not None:  # a mutation in tensor data may load: then the model must be usable
        voc = agf.Vocoder(model, device="cpu", backend="torch")
        a = voc.generate(mel=np.zeros((16, 1), np.float32), seed=0)
        assert np.all(np.isfinite(a))


def test_mutated_config_values(tmp_path):
    from safetensors.torch import save_file

    m = agf.build("tiny-wavenet")
    t = {k: v.contiguous() for k, v in m.state_dict().items()}
    bad_values = [("layers", -1), ("layers", "four"), ("kernel_size", 4), ("output", "wav"), ("hop_length", 0),
                  ("upsample_scales", [3, 3]), ("sample_rate", True), ("quantize_channels", 1)]
    for k, v in bad_values:
        cfg = m.config.to_dict()
        cfg[k] = v
        p = tmp_path / "c.safetensors"
        save_file(t, str(p), metadata={"format": "audiogen_fast", "format_version": "1", "config": json.dumps(cfg)})
        with pytest.raises(agf.CheckpointError, match="invalid config"):
            agf.load_model(p)


def test_wrong_family_weights(tmp_path):
    """A WaveRNN state dict under a WaveNet config: every key is named as missing/unexpected."""
    from safetensors.torch import save_file

    rnn = agf.build("tiny-wavernn")
    wn = agf.build("tiny-wavenet")
    p = tmp_path / "x.safetensors"
    save_file({k: v.contiguous() for k, v in rnn.state_dict().items()}, str(p),
              metadata={"format": "audiogen_fast", "format_version": "1", "config": wn.config.to_json()})
    with pytest.raises(agf.CheckpointError, match="missing keys .*unexpected keys"):
        agf.load_model(p)


def test_memory_budget(monkeypatch):
    voc = agf.load("preset:tiny-diffwave", device="cpu")
    mel = random_mel(voc.config, 2000)
    monkeypatch.setenv("AGF_MAX_MEMORY_GB", "0.01")
    with pytest.raises(agf.InputError, match="memory budget"):
        voc.generate(mel=mel, seed=0)
    assert voc.generate(mel=mel[:, :2], seed=0).shape == (128,)  # small requests still run
    monkeypatch.setenv("AGF_MAX_MEMORY_GB", "lots")
    with pytest.raises(agf.InputError, match="AGF_MAX_MEMORY_GB"):
        voc.generate(mel=mel[:, :2], seed=0)


def test_same_seed_same_audio_across_processes(tmp_path):
    ck = tmp_path / "m.safetensors"
    agf.save(agf.build("tiny-wavernn", seed=3), ck)
    mel = random_mel(agf.load(ck).config, 4)
    np.save(tmp_path / "mel.npy", mel)
    code = ("import sys, numpy as np, audiogen_fast as agf; v = agf.load(sys.argv[1], device='cpu', backend=sys.argv[3]); "
            "np.save(sys.argv[2], v.generate(mel=np.load(sys.argv[4]), seed=11))")
    outs = []
    for i, backend in enumerate(["torch", "torch", "cpp"]):
        out = tmp_path / f"o{i}.npy"
        subprocess.run([sys.executable, "-c", code, str(ck), str(out), backend, str(tmp_path / "mel.npy")], check=True)
        outs.append(np.load(out))
    here = agf.load(ck, device="cpu", backend="torch").generate(mel=mel, seed=11)
    for o in outs:
        assert np.array_equal(o, here)


def test_long_generation_hoists_in_bounded_blocks():
    """WaveRNN's eager loop hoists its projections per block: their size does not grow with T."""
    from audiogen_fast.models.wavernn import runtime as rt

    model = agf.build("tiny-wavernn")
    sizes = []
    for frames in (40, 160):
        mel = torch.from_numpy(random_mel(model.config, frames))[None]
        with torch.no_grad():
            cond = model.conditioning(mel)
        nz = torch.rand(1, frames * 64)
        hoist = rt.HOIST_BLOCK
        peak = []
        orig = rt._Step.hoist

        def spy(self, m, c, _orig=orig):
            out = _orig(self, m, c)
            peak.append(max(o.shape[1] for o in out))
            return out

        rt._Step.hoist = spy
        try:
            rt.run_torch(model, cond, noise=nz)
        finally:
            rt._Step.hoist = orig
        sizes.append(max(peak))
    assert sizes[0] == sizes[1] == hoist  # the hoisted block, not the utterance, sets the size


@pytest.mark.parametrize("preset,dtype", [("tiny-wavenet", "float32"), ("tiny-wavenet", "int8"),
                                          ("tiny-wavernn", "bfloat16"), ("tiny-diffwave", "float32")])
def test_one_vocoder_shared_by_threads(preset, dtype):
    """A server's worker threads sharing one Vocoder: the C++ loops run without the GIL, so calls
    overlap; each must give the audio it gives alone. The loops keep their state per call; what they
    share is built on first use (the weight packs per thread count, behind a mutex), so the shared
    Vocoder is a fresh one whose first calls are the concurrent ones."""
    import threading

    ref = agf.load(f"preset:{preset}", dtype=dtype)
    rng = np.random.default_rng(0)
    mels = [rng.standard_normal((ref.n_mels, 12 + 3 * i)).astype(np.float32) for i in range(4)]
    alone = [ref.generate(mel=m, seed=i) for i, m in enumerate(mels)]
    voc = agf.load(f"preset:{preset}", dtype=dtype)
    bad = []

    def work(i):
        try:
            for _ in range(3):
                if not np.array_equal(voc.generate(mel=mels[i], seed=i), alone[i]):
                    bad.append(i)
        except Exception as e:  # noqa: BLE001 - report any failure of a worker
            bad.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not bad and not any(t.is_alive() for t in threads), bad
