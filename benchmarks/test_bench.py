"""pytest-benchmark suite: the standard configs x every backend available here.

    pytest benchmarks --benchmark-enable --benchmark-json=out.json      # real timings
    AGF_BENCH_SECONDS=1 pytest benchmarks --benchmark-enable             # longer utterances

CI runs this file with --benchmark-disable (the default in pyproject.toml): every case runs once,
as a smoke test. extra_info carries samples/s, RTF, x-real-time, device, dtype and batch; on a GPU
each call ends with a synchronize so the timer sees the whole generation. torch.compile cases on
the CPU compile for minutes: they run only with AGF_BENCH_COMPILE=1.
"""
import os

import pytest
import torch

from audiogen_fast import bench

SECONDS = float(os.environ.get("AGF_BENCH_SECONDS", "0.02"))
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("provider", bench.PROVIDERS)
@pytest.mark.parametrize("config", bench.STANDARD)
def test_generate(benchmark, config, provider):
    if provider == "compile" and DEVICE == "cpu" and os.environ.get("AGF_BENCH_COMPILE") != "1":
        pytest.skip("torch.compile on the CPU takes minutes to compile: set AGF_BENCH_COMPILE=1")
    _run(benchmark, config, provider, "float32")


# the fast backends' reduced-precision options: half-precision weights on a GPU; on the CPU the
# cpp backend's fp16-stored weights, bf16 products and (WaveNet, WaveRNN) int8 products. A combination
# a backend does not offer is skipped with its reason.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int8"])
@pytest.mark.parametrize("provider", [p for p in bench.PROVIDERS if p not in ("torch", "compile")])
@pytest.mark.parametrize("config", bench.STANDARD)
def test_generate_reduced_precision(benchmark, config, provider, dtype):
    _run(benchmark, config, provider, dtype)


# a block-sparse R2 (90% of the GRUs' and fc1 / fc2's blocks zero: Sparse WaveRNN's structure), which
# the cpp loop skips: 16 x 1 blocks with fp32 and fp16-stored weights, 16 x 4 blocks with int8 products
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("provider", ["torch", "cpp"])
def test_generate_block_sparse(benchmark, provider, dtype):
    if provider == "torch" and dtype != "float32":
        pytest.skip("eager runs float32")
    _run(benchmark, "R2", provider, dtype, bench.Pruning(0.9, "gru+fc", "16x4" if dtype == "int8" else "16x1"))


def _run(benchmark, config, provider, dtype, prune=None):
    try:
        fn, n = bench.make_case(config, provider, device=DEVICE, dtype=dtype, seconds=SECONDS, prune=prune)
    except bench.Skip as e:
        pytest.skip(str(e))
    if DEVICE == "cuda":
        inner = fn

        def fn():
            out = inner()
            torch.cuda.synchronize()
            return out

    sr = bench.presets.preset_config(config).sample_rate
    benchmark.extra_info.update({"config": config, "backend": provider, "device": bench.device_name(DEVICE),
                                 "dtype": dtype, "batch": 1, "samples": n, "sample_rate": sr})
    benchmark.extra_info.update(prune.record() if prune else {})
    audio = benchmark.pedantic(fn, rounds=3, warmup_rounds=1, iterations=1)
    assert audio.shape[-1] == n
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.median > 0:
        sps = n / stats.stats.median
        benchmark.extra_info.update({"samples_per_sec": sps, "rtf": sr / sps, "x_realtime": sps / sr})
