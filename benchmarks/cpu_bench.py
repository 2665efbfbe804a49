"""CPU benchmark: each fast backend against the eager loop, measured in the same run (medians).

    python3 benchmarks/cpu_bench.py [--configs W2,W1] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

import audiogen_fast as agf


def median_time(fn, reps=3):
    fn()  # warm-up (packs weights, first-touch)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench(config, records, seconds_eager=0.05, seconds_fast=1.0):
    model = agf.build(config, seed=0)
    sr, hop = model.config.sample_rate, model.config.hop_length
    rng = np.random.default_rng(0)
    base = None
    runs = [("torch", "float32", seconds_eager)]
    bk = agf.Vocoder(model, device="cpu").family.runtime.BACKENDS
    if "cpp" in bk:
        runs += [("cpp", "float32", seconds_fast)]
        if model.config.family in ("wavenet", "wavernn"):   # fp16-stored weights
            runs += [("cpp", "float16", seconds_fast)]
    for backend, dtype, secs in runs:
        frames = max(1, int(secs * sr / hop))
        mel = rng.standard_normal((model.config.n_mels, frames)).astype(np.float32) - 4
        voc = agf.Vocoder(model, device="cpu", backend=backend, dtype=dtype)
        t = median_time(lambda: voc.generate(mel=mel, seed=0))
        sps = frames * hop / t
        base = sps if backend == "torch" else base
        rec = {"config": config, "backend": backend, "dtype": dtype, "batch": 1, "samples": frames * hop,
               "samples_per_sec": sps, "aggregate_samples_per_sec": sps, "rtf": sr / sps, "x_realtime": sps / sr,
               "vs_torch": sps / base, "vs_compile": None, "threads": agf._cpp.num_threads() if backend == "cpp" else torch.get_num_threads()}
        records.append(rec)
        print(f"{config:4s} {backend:6s} {dtype:8s} {sps:>10,.0f} samples/s  x_rt={sps / sr:6.3f}  vs_torch={sps / base:6.1f}",
              flush=True)


def bench_fold(config, records, folds=16, target=2000, overlap=100):
    """WaveRNN fold generation: one utterance cut into `folds` segments generated as a batch."""
    model = agf.build(config, seed=0)
    sr, hop = model.config.sample_rate, model.config.hop_length
    n = folds * (target + overlap) + overlap - 1
    frames = -(-n // hop)
    mel = np.random.default_rng(0).standard_normal((model.config.n_mels, frames)).astype(np.float32) - 4
    base = None
    for backend in ("torch", "cpp"):
        voc = agf.Vocoder(model, device="cpu", backend=backend)
        t = median_time(lambda: voc.generate(mel=mel, seed=0, fold=(target, overlap)), reps=1 if backend == "torch" else 3)
        sps = frames * hop / t
        base = sps if backend == "torch" else base
        records.append({"config": f"{config}-fold{folds}", "backend": backend, "dtype": "float32", "batch": folds,
                        "samples": frames * hop, "samples_per_sec": sps, "aggregate_samples_per_sec": sps,
                        "rtf": sr / sps, "x_realtime": sps / sr, "vs_torch": sps / base, "vs_compile": None})
        print(f"{config}-fold{folds} {backend:6s} float32  {sps:>10,.0f} samples/s  x_rt={sps / sr:6.3f}  "
              f"vs_torch={sps / base:6.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="W2,W1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    recs = []
    for c in args.configs.split(","):
        c = c.strip()
        if c.endswith("-fold16"):
            bench_fold(c[: -len("-fold16")], recs)
        else:
            bench(c, recs)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "cpu-bench.json"), "w") as f:
            json.dump({"device": f"cpu {platform.processor() or platform.machine()} x{os.cpu_count()}",
                       "torch": torch.__version__, "records": recs}, f, indent=1)


if __name__ == "__main__":
    main()
