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
    if "cpp" in agf.Vocoder(model, device="cpu").family.runtime.BACKENDS:
        runs += [("cpp", "float32", seconds_fast), ("cpp", "float16", seconds_fast)]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="W2,W1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    recs = []
    for c in args.configs.split(","):
        bench(c.strip(), recs)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "cpu-bench.json"), "w") as f:
            json.dump({"device": f"cpu {platform.processor() or platform.machine()} x{os.cpu_count()}",
                       "torch": torch.__version__, "records": recs}, f, indent=1)


if __name__ == "__main__":
    main()
