"""Block-sparse WaveRNN: the pruning (models/wavernn/sparsity.py), the C++ loop's block-sparse
products (csrc/cpu/sparse.h: the same bits as the dense ones) and pruning while training."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import audiogen_fast as agf
from audiogen_fast.models.wavernn import sparsity as sp

cpp = pytest.mark.skipif(not agf.backends()["cpp"][0], reason="C++ extension not built")


def _cond(model, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, model.config.n_mels, -(-T // model.config.hop_length), generator=g)
    with torch.no_grad():
        return [c[:, :T].contiguous() for c in model.conditioning(mel)]


# ---- pruning ---------------------------------------------------------------------------------

def test_block_mask_keeps_the_largest_blocks_of_every_row_of_blocks():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3 * 40, 24, generator=g)          # a GRU matrix: 3 gates of 40 units (2.5 blocks each)
    m = sp.block_mask(w, 0.75, gates=3)
    assert m.shape == w.shape and set(m.unique().tolist()) <= {0.0, 1.0}
    blocks = m.reshape(3, 40, 24)
    for gate in range(3):
        for b0 in range(0, 40, 16):
            rows = blocks[gate, b0:b0 + 16]
            assert torch.equal(rows, rows[:1].expand_as(rows))     # whole 16 x 1 blocks (within the gate)
            kept = rows[0].nonzero().flatten()
            assert len(kept) == 6                                    # round(0.25 * 24) in every row of blocks
            norms = w.reshape(3, 40, 24)[gate, b0:b0 + 16].pow(2).sum(0)
            assert norms[kept].min() >= norms[rows[0] == 0].max()    # the largest ones
    with pytest.raises(ValueError, match="sparsity"):
        sp.block_mask(w, 1.0)


def test_block_mask_in_16_x_4_blocks():
    """cols=4: whole 16-row x 4-input blocks, the inputs aligned at multiples of 4 (the int8 loop's
    quads), the last partial run of inputs (here 2 of 4) a block of its own; balanced per row of blocks."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3 * 32, 22, generator=g)
    m = sp.block_mask(w, 0.5, gates=3, cols=4)
    assert m.shape == w.shape
    kept = m.reshape(3, 2, 16, 22)[:, :, 0, ::4]                                    # [gate, row block, quad]
    expect = kept.repeat_interleave(4, 2)[:, :, :22].repeat_interleave(16, 1).reshape(3 * 32, 22)
    assert torch.equal(m, expect)                                                  # whole blocks
    assert (kept.sum(2) == 3).all()                                                # round(0.5 * 6) in every row of blocks
    norms = torch.nn.functional.pad(w, (0, 2)).reshape(3, 2, 16, 6, 4).pow(2).sum((2, 4))
    for gate in range(3):
        for rb in range(2):
            k = kept[gate, rb].bool()
            assert norms[gate, rb][k].min() >= norms[gate, rb][~k].max()
    model = agf.build("tiny-wavernn", rnn_dims=48, fc_dims=32)
    sp.prune(model, 0.75, cols=4)
    assert sp.block_density(model, cols=4) == pytest.approx(0.25, abs=0.02)
    assert sp.block_density(model) == pytest.approx(0.25, abs=0.02)                # its 16 x 1 blocks: as many zero
    with pytest.raises(ValueError, match="cols"):
        sp.block_mask(w, 0.5, cols=2)


def test_cli_prune_targets_are_the_sparsity_modules():
    from audiogen_fast.cli import PRUNE_TARGETS

    assert PRUNE_TARGETS == list(sp.TARGETS)


def test_prune_and_density():
    m = agf.build("tiny-wavernn", rnn_dims=48, fc_dims=32)
    assert sp.block_density(m) == 1.0
    masks = sp.prune(m, 0.75)
    assert set(masks) == set(sp.TARGETS["gru"])
    assert sp.block_density(m) == pytest.approx(0.25, abs=0.02)
    assert sp.block_density(m, "gru+fc") > 0.25                     # fc1 / fc2 untouched
    masks = sp.prune(m, 0.75, "gru+fc+out")
    assert set(masks) == set(sp.TARGETS["gru"]) | {"fc1.weight", "fc2.weight", "fc3.weight"}
    fc3 = sp._blocks(m.fc3.weight, 1)
    assert (fc3 != 0).any(4).any(2).float().mean() == pytest.approx(0.25, abs=0.02)  # the output layer too
    assert sp.schedule(0, 0.9, 10, 20) == 0.0 and sp.schedule(20, 0.9, 10, 20) == 0.9
    assert 0.0 < sp.schedule(15, 0.9, 10, 20) < 0.9
    assert sp.schedule(12, 0.9, 10, 20) < sp.schedule(14, 0.9, 10, 20)  # a ramp


# ---- the C++ block-sparse products -----------------------------------------------------------

def _teacher_forced(model, B, T, monkeypatch, sparse, **opts):
    from audiogen_fast.models.wavernn import runtime as rt

    monkeypatch.setenv("AGF_SPARSE", sparse)
    cond = _cond(model, B, T, B)
    x = torch.rand(B, T, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return rt.run_cpp(model, cond, teacher=x, **opts)[1]


@cpp
@pytest.mark.parametrize("kw", [dict(rnn_dims=64, fc_dims=48), dict(rnn_dims=13, fc_dims=11, bits=5, pad=0),
                                dict(rnn_dims=40, fc_dims=24, mode="MOL", n_mix=3)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("B", [1, 2, 3, 6])
@pytest.mark.parametrize("half", [False, True])
def test_sparse_products_give_the_dense_bits(kw, sparsity, B, half, monkeypatch):
    """A pruned model's logits are the same bits whether its zero blocks are skipped or multiplied;
    "force" runs every slice through the sparse kernel, dense weights included."""
    from audiogen_fast.models.wavernn.runtime import cpp_loop

    model = agf.build("tiny-wavernn", seed=B, **kw)
    if sparsity:
        sp.prune(model, sparsity, "gru+fc")
    for threads in (1, 2):
        dense = _teacher_forced(model, B, 67, monkeypatch, "0", threads=threads, half=half)
        info = cpp_loop(model).sparse_info(threads=threads, half=half)
        assert info["sparse"] == 0
        for mode in ("auto", "force"):
            got = _teacher_forced(model, B, 67, monkeypatch, mode, threads=threads, half=half)
            assert torch.equal(got, dense), (mode, threads)
        info = cpp_loop(model).sparse_info(threads=threads, half=half)
        assert info["sparse"] == info["slices"]                        # "force": every slice
    monkeypatch.setenv("AGF_SPARSE", "auto")
    info = cpp_loop(model).sparse_info(threads=1, half=half)
    if sparsity >= 0.5 and kw["rnn_dims"] >= 16:
        assert info["sparse"] >= 4                                     # the GRU matrices ran sparse
        aligned = kw["rnn_dims"] % 16 == 0 and kw["fc_dims"] % 16 == 0  # else strips straddle gates
        assert info["blocks_kept"] <= ((1.0 - sparsity) * 1.1 if aligned else 0.8) * info["blocks_total"]
    if sparsity == 0.0:
        assert info["sparse"] == 0                                     # dense weights stay dense


@cpp
@pytest.mark.parametrize("kw", [dict(rnn_dims=64, fc_dims=48), dict(rnn_dims=40, fc_dims=24, mode="MOL", n_mix=3)])
@pytest.mark.parametrize("B", [1, 2, 3])
def test_int8_sparse_products_give_the_dense_bits(kw, B, monkeypatch):
    """int8 products of a model pruned in 16 x 4 blocks: the same logits whether the loop skips its
    zero quads or not (exact integer sums); "force" makes every slice sparse, even where no kernel
    skips faster than the emulation (AGF_SPARSE=force runs the sparse emulation then)."""
    from audiogen_fast import _cpp
    from audiogen_fast.models.wavernn.runtime import cpp_loop

    model = agf.build("tiny-wavernn", seed=B, **kw)
    sp.prune(model, 0.9, "gru+fc", cols=4)
    for threads in (1, 2):
        dense = _teacher_forced(model, B, 67, monkeypatch, "0", threads=threads, int8=True)
        assert cpp_loop(model).sparse_info(threads=threads, int8=True)["sparse"] == 0
        for mode in ("auto", "force"):
            got = _teacher_forced(model, B, 67, monkeypatch, mode, threads=threads, int8=True)
            assert torch.equal(got, dense), (mode, threads)
            info = cpp_loop(model).sparse_info(threads=threads, int8=True)
            if mode == "force":
                assert info["sparse"] == info["slices"]
            elif _cpp.int8_sparse_kernel() != "emulated":
                assert info["sparse"] >= 4                                      # the GRU matrices
                assert info["blocks_kept"] <= 0.15 * info["blocks_total"]       # ~10% of their 16 x 4 blocks
            else:
                assert info["sparse"] == 0                                      # no kernel: dense
    # pruned in 16 x 1 blocks, hardly a 16 x 4 block is all zero: int8 stays dense
    model = agf.build("tiny-wavernn", seed=B, **kw)
    sp.prune(model, 0.5, "gru+fc")
    monkeypatch.setenv("AGF_SPARSE", "auto")
    assert cpp_loop(model).sparse_info(threads=1, half=True)["sparse"] >= 4
    assert cpp_loop(model).sparse_info(threads=1, int8=True)["sparse"] == 0


@cpp
@pytest.mark.parametrize("int8", [False, True])
def test_a_pruned_output_layer_runs_sparse_with_the_dense_bits(int8, monkeypatch):
    """prune targets "gru+fc+out": fc3 (the output layer) block-sparse too; its slice then runs
    through the sparse product (one more sparse slice than "gru+fc"), with the dense product's bits."""
    from audiogen_fast import _cpp
    from audiogen_fast.models.wavernn.runtime import cpp_loop

    opts = dict(int8=True) if int8 else dict(half=True)
    model = agf.build("tiny-wavernn", seed=5, rnn_dims=64, fc_dims=48)
    sp.prune(model, 0.9, "gru+fc", cols=4)
    monkeypatch.setenv("AGF_SPARSE", "auto")
    before = cpp_loop(model).sparse_info(threads=1, **opts)["sparse"]
    sp.prune(model, 0.9, "gru+fc+out", cols=4)
    after = cpp_loop(model).sparse_info(threads=1, **opts)
    if int8 and _cpp.int8_sparse_kernel() == "emulated":
        assert after["sparse"] == before == 0                          # no sparse int8 kernel here: dense
    else:
        assert after["sparse"] == before + 1                           # fc3's slice
    for threads in (1, 2):
        dense = _teacher_forced(model, 2, 67, monkeypatch, "0", threads=threads, **opts)
        got = _teacher_forced(model, 2, 67, monkeypatch, "auto", threads=threads, **opts)
        assert torch.equal(got, dense), threads


@cpp
def test_the_engine_follows_weights_pruned_in_place():
    """The C++ loop holds a copy of the weights, cached on the model: pruning (a few matrices changed
    in place, the first parameter untouched) must rebuild it, as a fresh model would be."""
    import copy

    model = agf.build("tiny-wavernn", seed=6, rnn_dims=64, fc_dims=48)
    mel = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    voc = agf.Vocoder(model, device="cpu", backend="cpp")
    dense = voc.generate(mel=mel, seed=1)
    sp.prune(model, 0.9, "gru+fc+out")
    pruned = voc.generate(mel=mel, seed=1)
    fresh = agf.Vocoder(copy.deepcopy(model), device="cpu", backend="cpp").generate(mel=mel, seed=1)
    assert np.array_equal(pruned, fresh)
    assert not np.array_equal(pruned, dense)


@cpp
def test_sparse_generation_equals_dense_through_the_engine(monkeypatch):
    model = agf.build("tiny-wavernn", seed=4, rnn_dims=64, fc_dims=64)
    sp.prune(model, 0.9, "gru+fc")
    mel = np.random.default_rng(0).standard_normal((2, 16, 12)).astype(np.float32)
    out = {}
    for mode in ("0", "auto"):
        monkeypatch.setenv("AGF_SPARSE", mode)
        voc = agf.Vocoder(model, device="cpu", backend="cpp")
        out[mode] = (voc.generate(mel=mel, seed=[3, 4]), voc.generate(mel=mel[1], seed=4),
                     np.concatenate(list(voc.stream((mel[0, :, i:i + 5] for i in range(0, 12, 5)), seed=3))))
    for a, b in zip(out["0"], out["auto"]):
        assert np.array_equal(a, b)
    assert np.array_equal(out["auto"][0][1], out["auto"][1])       # a batch row equals the stream alone
    assert np.array_equal(out["auto"][0][0], out["auto"][2])       # streaming equals generate()


def test_info_reports_the_block_sparsity(tmp_path):
    m = agf.build("tiny-wavernn", rnn_dims=32, fc_dims=32)
    sp.prune(m, 0.75)
    agf.save(m, tmp_path / "s.safetensors")
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "info", str(tmp_path / "s.safetensors")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "block sparse: 75.0% of the GRUs' 16 x 1 blocks are zero" in r.stdout, r.stdout
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "info", str(tmp_path / "s.safetensors"), "--json"],
                       capture_output=True, text=True)
    info = json.loads(r.stdout)
    assert info["block_density"]["gru"] == pytest.approx(0.25)
    assert info["block_density_16x4"]["gru"] > 0.6                  # 16 x 1 pruning leaves few 16 x 4 blocks empty
    sp.prune(m, 0.75, cols=4)
    agf.save(m, tmp_path / "s4.safetensors")
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "info", str(tmp_path / "s4.safetensors"), "--json"],
                       capture_output=True, text=True)
    # round(0.25 * quads) kept per row of blocks: rnn2's input has 9 quads (2 kept)
    assert json.loads(r.stdout)["block_density_16x4"]["gru"] == pytest.approx(0.25, abs=0.015)


@cpp
def test_reduced_precision_products_of_a_sparse_model_warn():
    import warnings

    def sparse_warnings(model, dtype):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            agf.Vocoder(model, device="cpu", backend="cpp", dtype=dtype)
        return [str(x.message) for x in w if "block-sparse" in str(x.message)]

    from audiogen_fast import _cpp

    model = agf.build("tiny-wavernn", rnn_dims=32, fc_dims=32)
    assert sparse_warnings(model, "int8") == []                       # dense
    sp.prune(model, 0.75)
    assert "prune with cols=4" in sparse_warnings(model, "int8")[0]  # 16 x 1 blocks: int8 skips 16 x 4 ones
    assert "75% of its GRUs' 16 x 1 blocks are zero" in sparse_warnings(model, "bfloat16")[0]
    assert sparse_warnings(model, "float16") == []                    # the sparse loop
    model = agf.build("tiny-wavernn", rnn_dims=32, fc_dims=32)
    sp.prune(model, 0.75, cols=4)
    w = sparse_warnings(model, "int8")
    assert w == [] if _cpp.int8_sparse_kernel() != "emulated" else "no sparse int8 kernel" in w[0]
    assert len(sparse_warnings(model, "bfloat16")) == 1


@cpp
def test_bench_times_a_pruned_model(tmp_path):
    cli = [sys.executable, "-m", "audiogen_fast.cli", "bench", "--config", "tiny-wavernn", "--backend", "torch,cpp",
           "--seconds", "0.05", "--reps", "1", "--sparsity", "0.75"]
    r = subprocess.run(cli + ["--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "tiny-wavernn (75% sparse gru) cpp" in r.stdout
    res = json.load(open(next(tmp_path.glob("*.json"))))
    assert {(x["backend"], x["sparsity"], x["prune_targets"]) for x in res["records"]} == \
        {("torch", 0.75, "gru"), ("cpp", 0.75, "gru")}
    r = subprocess.run(cli + ["--stream", "--backend", "cpp", "--prune-targets", "gru+fc"], capture_output=True, text=True)
    assert r.returncode == 0 and "tiny-wavernn (75% sparse gru+fc) cpp      first audio after" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(cli + ["--backend", "cpp", "--dtype", "int8", "--out", str(tmp_path / "i8")], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "tiny-wavernn (75% sparse gru 16x4) cpp" in r.stdout, r.stdout + r.stderr
    rec = json.load(open(next((tmp_path / "i8").glob("*.json"))))["records"][-1]
    assert (rec["dtype"], rec["sparse_block"]) == ("int8", "16x4")     # int8: the blocks its loop skips
    r = subprocess.run(cli[:5] + ["tiny-wavenet", "--sparsity", "0.5"], capture_output=True, text=True)
    assert r.returncode != 0 and "--sparsity prunes WaveRNN configs" in r.stderr and "Traceback" not in r.stderr


# ---- pruning while training ------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    sr, rng = 8000, np.random.default_rng(0)
    for i in range(2):
        t = np.arange(sr) / sr
        x = 0.5 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.01 * rng.standard_normal(sr)
        sf.write(d / f"u{i}.wav", x.astype(np.float32), sr)
    return d


@pytest.mark.parametrize("cols", [1, 4])
def test_training_prunes_on_schedule_and_resumes(corpus, tmp_path, cols):
    from audiogen_fast.train import train

    out = str(tmp_path / "r.safetensors")
    kw = dict(batch=2, seg_frames=4, lr=3e-3, lr_final=1e-3, save_every=10, progress=False, log=lambda *a: None,
              sparsity=0.75, prune_start=4, prune_end=12, prune_cols=cols)
    m = agf.build("tiny-wavernn", seed=0, rnn_dims=32, fc_dims=32)
    train(m, str(corpus), out, steps=20, stop_at=8, **kw)
    mid = sp.block_density(agf.load_model(out), cols=cols)
    assert 0.25 < mid < 1.0                                  # on the ramp at step 8
    train(agf.load_model(out), str(corpus), out, steps=20, **kw)   # resumes to the end
    final = agf.load_model(out)
    assert sp.block_density(final, cols=cols) == pytest.approx(0.25, abs=0.01)
    assert sp.block_density(final, "gru+fc") > 0.25          # the default targets: the GRUs only
    logs = [json.loads(line) for line in open(out + ".log.jsonl")]
    assert logs[-1]["step"] == 20 and all(np.isfinite(r["loss"]) for r in logs)


def test_sparsity_is_refused_where_not_implemented(corpus, tmp_path):
    from audiogen_fast.train import train

    with pytest.raises(ValueError, match="WaveRNN"):
        train(agf.build("tiny-wavenet"), str(corpus), str(tmp_path / "w.safetensors"), steps=2, progress=False,
              log=lambda *a: None, sparsity=0.5)
    with pytest.raises(ValueError, match="prune_start"):
        train(agf.build("tiny-wavernn"), str(corpus), str(tmp_path / "r.safetensors"), steps=10, progress=False,
              log=lambda *a: None, sparsity=0.5, prune_start=8, prune_end=4)
    with pytest.raises(ValueError, match="prune_cols"):
        train(agf.build("tiny-wavernn"), str(corpus), str(tmp_path / "r.safetensors"), steps=10, progress=False,
              log=lambda *a: None, sparsity=0.5, prune_cols=2)
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavernn", "--data", str(corpus),
                        "--out", str(tmp_path / "c.safetensors"), "--preset", "tiny-wavernn", "--steps", "2",
                        "--sparsity", "1.5", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 2 and "sparsity must be in (0, 1)" in r.stderr and "Traceback" not in r.stderr


def test_train_cli_prunes(corpus, tmp_path):
    out = tmp_path / "p.safetensors"
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", "train", "wavernn", "--data", str(corpus),
                        "--out", str(out), "--preset", "tiny-wavernn", "--steps", "6", "--batch", "2",
                        "--segment-frames", "4", "--sparsity", "0.75", "--prune-start", "1", "--prune-end", "4",
                        "--prune-targets", "gru+fc", "--sparse-block", "16x4", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = agf.load_model(str(out))
    # each row of blocks keeps round(0.25 * its quads) (rnn2's input and fc1 / fc2 here: 9 quads, 2 kept)
    assert sp.block_density(m, "gru+fc", cols=4) == pytest.approx(0.25, abs=0.015)
