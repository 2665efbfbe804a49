"""Native checkpoints: round trip, strict loading, and files that are not checkpoints."""
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

import audiogen_fast as agf
from audiogen_fast.checkpoint import FORMAT, FORMAT_VERSION


def _write_native(path, model, tensors=None, config=None):
    t = tensors if tensors is not None else {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "config": config if config is not None else model.config.to_json()}
    save_file(t, str(path), metadata=meta)


@pytest.mark.parametrize("preset", ["tiny-wavenet", "tiny-wavernn", "tiny-diffwave", "W4"])
def test_round_trip(preset, tmp_path):
    m = agf.build(preset, seed=7)
    p = tmp_path / "m.safetensors"
    agf.save(m, p)
    m2 = agf.load_model(p)
    assert m2.config == m.config
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)


def test_strict_load_names_keys(tmp_path):
    m = agf.build("tiny-wavenet")
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    bad = dict(sd)
    del bad["first_conv.bias"]
    bad["extra.weight"] = torch.zeros(3)
    bad["last_conv2.bias"] = torch.zeros(7)
    p = tmp_path / "bad.safetensors"
    _write_native(p, m, bad)
    with pytest.raises(agf.CheckpointError) as e:
        agf.load_model(p)
    msg = str(e.value)
    assert "missing keys (1): first_conv.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "last_conv2.bias: file (7,) vs model (256,)" in msg


def test_bad_config_and_values(tmp_path):
    m = agf.build("tiny-wavenet")
    p = tmp_path / "c.safetensors"
    cfg = m.config.to_dict()
    cfg["layers"] = 5  # not a multiple of stacks
    _write_native(p, m, config=json.dumps(cfg))
    with pytest.raises(agf.CheckpointError, match="multiple of stacks"):
        agf.load_model(p)
    cfg = m.config.to_dict()
    cfg["colour"] = "blue"
    _write_native(p, m, config=json.dumps(cfg))
    with pytest.raises(agf.CheckpointError, match="unknown wavenet config field"):
        agf.load_model(p)
    cfg = m.config.to_dict()
    cfg["family"] = "wavernn"
    _write_native(p, m, config=json.dumps(cfg))
    with pytest.raises(agf.CheckpointError, match="invalid config"):
        agf.load_model(p)
    _write_native(p, m, config="{not json")
    with pytest.raises(agf.CheckpointError, match="not valid JSON"):
        agf.load_model(p)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["first_conv.weight"][0, 0, 0] = float("nan")
    _write_native(p, m, sd)
    with pytest.raises(agf.CheckpointError, match="NaN or inf in: first_conv.weight"):
        agf.load_model(p)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(p))  # no metadata
    with pytest.raises(agf.CheckpointError, match="without an audiogen_fast config"):
        agf.load_model(p)


def test_not_checkpoints(tmp_path):
    m = agf.build("tiny-wavenet")
    good = tmp_path / "good.safetensors"
    agf.save(m, good)
    data = good.read_bytes()
    cases = {
        "missing.safetensors": None,
        "empty.safetensors": b"",
        "trunc.safetensors": data[: len(data) // 2],
        "config.json": b'{"family": "wavenet"}',
        "page.safetensors": b"<!DOCTYPE html><html><body>Not found</body></html>",
        "lfs.safetensors": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n",
        "random.bin": bytes(range(256)) * 4,
    }
    expect = {"missing": "not found", "empty": "empty", "trunc": "truncated", "config": "JSON",
              "page": "HTML", "lfs": "Git LFS", "random": "not a checkpoint"}
    for name, content in cases.items():
        p = tmp_path / name
        if content is not None:
            p.write_bytes(content)
        with pytest.raises(agf.CheckpointError, match=expect[name.split(".")[0]]):
            agf.load_model(p)
    with pytest.raises(agf.CheckpointError, match="directory"):
        agf.load_model(tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('AGF_PWNED', '/tmp/agf_pwned')}",))


def test_pickle_never_executes(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("AGF_PWNED", str(marker))
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil()}, p)  # zip-format torch file with a code-running pickle
    with pytest.raises(agf.CheckpointError, match="weights_only"):
        agf.load_model(p)
    legacy = tmp_path / "evil_legacy.pt"
    with open(legacy, "wb") as f:
        pickle.dump({"model": _Evil()}, f, protocol=2)
    with pytest.raises(agf.CheckpointError):
        agf.load_model(legacy)
    assert not marker.exists()


def test_unknown_torch_layout(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"foo": torch.zeros(3)}, p)
    with pytest.raises(agf.CheckpointError, match="unrecognised PyTorch checkpoint layout"):
        agf.load_model(p)


def test_load_no_path_is_clear(monkeypatch):
    # no path: the bundled default (tests/test_default_model.py); without one, a clear error
    monkeypatch.setattr(agf, "default_model_path", lambda: None)
    with pytest.raises(agf.CheckpointError, match="no checkpoint given|no default model"):
        agf.load()
    with pytest.raises(agf.ConfigError, match="unknown preset or family"):
        agf.load("preset:W9")
