"""benchmarks/gpu_check.py runs on a lent GPU a few times a month, in a 15-minute device session:
a renamed argument or a wrong tensor shape in it costs that run's measurements. `--smoke` runs every
code path of the script on the CPU (tiny models under the configs' names, the CUDA kernels on the
fiber emulator, Triton in the interpreter); this test runs what benchmarks/gpu_run.sh runs (--quick,
torch.compile last) plus W4 (MoL outputs, kernel 3) and checks that each section measured what it
measures on a GPU, without an exception anywhere.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("triton")
pytest.importorskip("audiogen_fast._C_cuda_emu")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = dict(os.environ, TRITON_INTERPRET="1", AGF_COMMIT="smoke")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--quick",
                        "--compile", "last", "--configs", "W1,W4,R2,D1", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=900)
    files = list(out.glob("smoke-*-smoke.json"))
    return p, (json.loads(files[0].read_text()) if len(files) == 1 else None)


def test_runs_without_a_failure(smoke):
    p, res = smoke
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "failed" not in p.stdout
    assert res is not None and res["device"].startswith("smoke-")


def backends(res, config):
    return {(r["backend"], r["dtype"], r["batch"]) for r in res["records"] if r["config"] == config}


def test_every_wavenet_variant_measured(smoke):
    _, res = smoke
    got = backends(res, "W1")
    want = {("torch", "float32", 1), ("compile", "float32", 1), ("cuda-kernel-only", "float16", 1),
            ("triton-nopipe-g32", "float16", 1), ("triton-nopipe-g64", "float16", 1),
            ("cuda-l2-generic", "float16", 1), ("cuda-dsmem-generic", "float16", 1),
            ("cuda-l2-regs", "float16", 1), ("cuda-dsmem-regs", "float16", 1),
            ("cuda", "float16", 3), ("cuda", "float16", 17), ("cuda-mma16", "float16", 17),
            ("triton", "float16", 3), ("triton-mm16", "float16", 17)}
    for dt in ("float32", "float16", "bfloat16"):
        want |= {("triton", dt, 1), ("cuda-l2", dt, 1), ("cuda-dsmem", dt, 1)}
    assert want <= got, want - got
    # W4 (MoL: two uniforms per sample, a float input) through the same sections, without W1's variants
    w4 = backends(res, "W4")
    assert {("cuda-kernel-only", "float16", 1), ("cuda-mma16", "float16", 17), ("triton", "bfloat16", 1),
            ("compile", "float32", 1)} <= w4
    assert not any(b.startswith(("triton-nopipe", "triton-mm")) for b, _, _ in w4)
    for r in res["records"]:
        assert r["samples_per_sec"] > 0 and math.isfinite(r["samples_per_sec"])
        if r["backend"] not in ("torch", "compile"):
            assert r["vs_torch"] is not None, r
    # vs_compile filled in afterwards for W1's fast backends (torch.compile ran last)
    assert all(r["vs_compile"] for r in res["records"] if r["config"] == "W1" and r["backend"] not in ("torch", "compile"))


def test_floors_and_profiles(smoke):
    _, res = smoke
    fl = res["floors"]
    assert fl["handoff"] and all(h["token"] == h["iters"] * h["nblk"] for h in fl["handoff"])
    assert {(m["fixed"], m["regs"], m["gate"]) for m in fl["matvec"]} == {
        (f, r, g) for g in (True, False) for f, r in ((False, False), (True, False), (True, True))}
    prof = fl["profile"]  # W1: l2, dsmem, l2 generic, l2 with register weights
    assert [(p["transport"], p["shapes"]) for p in prof] == [("l2", "fixed"), ("dsmem", "fixed"), ("l2", "generic"),
                                                              ("l2", "regs")]
    for p in prof:
        assert len(p["layers_per_block"]) == len(p["layer_us"]) >= 1
        assert {"gate", "res", "taps", "wait"} <= set(p["layer_us"][0])
        assert {"sample", "logits", "wait"} <= set(p["output_us"])
    assert [p["dtype"] for p in fl["profile_wavernn"]] == ["float32", "float16"]


def test_wavernn_and_diffwave_sections(smoke):
    _, res = smoke
    got = backends(res, "R2")
    assert {("torch", "float32", 1), ("cuda", "float32", 1), ("cuda", "float16", 1), ("cuda", "bfloat16", 1),
            ("cuda", "float16", 3), ("triton", "float32", 1), ("triton", "float32", 3), ("compile", "float32", 1)} <= got
    assert all(r["vs_compile"] for r in res["records"] if r["config"] == "R2" and r["backend"] not in ("torch", "compile"))
    # the kernels' teacher-forced outputs against eager, measured in the run (emulator: fp32 exact to
    # rounding; 16-bit weights within their rounding)
    errs = {r["dtype"]: r["teacher_rel_err"] for r in res["records"] if r["config"] == "R2" and "teacher_rel_err" in r}
    assert errs["float32"] < 1e-5 and errs["float16"] < 2e-2 and errs["bfloat16"] < 5e-2
    d1 = [r for r in res["records"] if r["config"] == "D1" and r["backend"] not in ("torch", "compile")]
    assert {r["backend"] for r in d1} == {"triton", "triton-tf32-t64-w8", "triton-tf32x3-t16-w4", "triton-ieee-t16-w4"}
    assert ("compile", "float32", 1) in backends(res, "D1")
    checked = 0
    for r in d1:  # the interpreter runs "tf32" as fp32; fp16 operands round
        if r["dtype"] == "bfloat16":
            continue  # the interpreter's tl.dot multiplies bf16 bit patterns (triton-lang/triton#11584)
        assert r["max_rel_err_vs_eager_fp32"] < (1e-5 if r["dtype"] == "float32" else 1e-3), r
        checked += 1
    assert checked == 4  # tf32, tf32x3, exact fp32, fp16


# ---- benchmarks/gpu_summary.py: the one screen a GPU session reads first -------------------------

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_summary  # noqa: E402


def _rec(config, backend, dtype, batch, sps):
    return {"config": config, "backend": backend, "dtype": dtype, "batch": batch, "samples_per_sec": sps,
            "aggregate_samples_per_sec": sps * batch}


def test_summary_verdicts():
    res = {"device": "GPU", "date": "d", "commit": "c", "records": [
        _rec("W1", "cuda-l2", "float16", 1, 30_000),      # predicted 25-35 k
        _rec("W1", "cuda-l2", "float32", 1, 14_000),      # predicted 15.1-16.6 k
        _rec("W1", "cuda-l2", "bfloat16", 1, 36_000),     # ratio to fp16 1.2: predicted 0.9-1.1
        _rec("W1", "cuda", "float16", 256, 3_000)]}       # aggregate 768 k: predicted 680-810 k
    rows = {r[0]: r for r in gpu_summary.predictions(res)}
    assert rows["W1 cuda-l2 float16 B=1"][4] == "as predicted"
    assert rows["W1 cuda-l2 float32 B=1"][4] == "below"
    assert rows["W1 cuda-l2 bfloat16 B=1 (x cuda-l2 float16)"][3] == pytest.approx(1.2)
    assert rows["W1 cuda-l2 bfloat16 B=1 (x cuda-l2 float16)"][4] == "above"
    assert rows["W1 cuda float16 B=256 aggregate"][4] == "as predicted"
    assert len(rows) == 4  # unmeasured predictions are left out (and counted)
    assert f"({len(gpu_summary.PREDICTIONS) - 4} predictions not measured" in gpu_summary.summary(res)


def test_summary_reads_the_last_gpu_run_and_the_smoke_run(smoke):
    """The committed H200 results (the 'before' figures came from it: every prediction of a change
    made since must read 'below' there, or the table is wrong), and a run with floors and profiles."""
    with open(ROOT / "benchmarks" / "results" / "NVIDIA-H200-2026-11-30-3b0e448.json") as f:
        h200 = json.load(f)
    rows = gpu_summary.predictions(h200)
    assert len(rows) >= 8
    for name, before, _, got, verdict, _ in rows:
        if "dsmem" not in name:  # the one "prediction" that holds the old figure
            assert verdict == "below" and got == pytest.approx(before, rel=0.01), name
    _, res = smoke
    text = gpu_summary.summary(res)
    assert "== floors" in text and "block product 128 x 64 + gate fixed" in text and "64 x 64 regs" in text
    prof = [ln for ln in text.splitlines() if ln.startswith("W1 fp16 ")]
    assert len(prof) == 4 and all("per layer gate" in ln for ln in prof)
    assert text.count("x the block-product floor") == 4
    assert text.count("R2 float") == 2
