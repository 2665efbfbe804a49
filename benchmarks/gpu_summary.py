"""What a gpu_check.py run says, in one screen: each prepared change's measurement against its
prediction (benchmarks/NOTES_GPU.md), the floors, and where the CUDA kernels' time goes.

    python3 benchmarks/gpu_summary.py RESULTS.json

benchmarks/gpu_run.sh prints it last, so the device call's output ends with it. A GPU session is
short (15 minutes of device time): this is what to read first, before the logs.
"""
from __future__ import annotations

import json
import sys

# (config, backend, dtype, batch, metric, before, (low, high), what changed / where from).
# metric: "sps" samples/s per stream, "agg" aggregate, or ("ratio", backend, dtype): this record's
# samples/s over another record's of the same config and batch. before: the last GPU figure
# (H200 2026-11-30 for CUDA, H100 2026-11-22 for Triton unless said), None where there is none.
PREDICTIONS = [
    ("W1", "cuda-l2", "float16", 1, "sps", 18_200, (25_000, 35_000),
     "fixed-shape products, ring store off the critical path, LDS.128 (session 16)"),
    ("W1", "cuda-l2", "float32", 1, "sps", 14_400, (15_100, 16_600), "no register spills: __launch_bounds__(256, 1)"),
    ("W1", "cuda-l2", "bfloat16", 1, ("ratio", "cuda-l2", "float16"), 0.55, (0.9, 1.1),
     "bf16 weights: one 16-byte load per 8 (were 8 scalar loads)"),
    ("W1", "cuda-dsmem", "float16", 1, ("ratio", "cuda-l2", "float16"), 1.02, (1.0, 1.5),
     "cluster hand-offs vs L2 mailboxes once the layers are faster"),
    ("W1", "cuda-l2-generic", "float16", 1, ("ratio", "cuda-l2", "float16"), None, (0.5, 0.9),
     "run-time shapes vs compile-time (fixed) shapes"),
    ("W1", "cuda-l2-regs", "float16", 1, ("ratio", "cuda-l2", "float16"), None, (1.1, 1.3),
     "critical matrices in registers: no weight loads or conversions between a layer's barriers"),
    ("W1", "cuda", "float16", 64, "agg", 457_000, (500_000, 600_000), "ring rows by mask (was a 64-bit % per element)"),
    ("W1", "cuda", "float16", 256, "agg", 621_000, (680_000, 810_000), "the same"),
    ("W1", "cuda-mma16", "float16", 256, "agg", 384_000, (460_000, 540_000), "tensor-core operands loaded in pairs"),
    ("W1", "triton", "float16", 1, "sps", 13_200, (17_000, 26_000), "layer loop software-pipelined (cp.async)"),
    ("W1", "triton-mm16", "float16", 256, "sps", None, (10_000, 16_000), "16 streams per program on tensor cores (new)"),
    ("R2", "cuda", "float32", 1, "sps", 43_300, (46_000, 55_000), "gathers 4 floats at a time, fp32-first sampler"),
    ("R2", "cuda", "bfloat16", 1, ("ratio", "cuda", "float16"), 0.84, (0.9, 1.1), "bf16 16-byte loads"),
    ("R2", "triton", "float32", 1, "sps", 1_600, (4_000, 8_000), "fc3 in row tiles: no 4.3 KB stack per thread (H200)"),
    ("D1", "triton-ieee-t16-w4", "float32", 1, "sps", 60_000, (1_000_000, 3_000_000), "exact fp32 in 16 x 4 tiles: no spills"),
    ("D1", "triton-tf32-t64-w8", "float32", 1, "sps", 4_250_000, (4_300_000, 4_700_000), "8 warps: no spills (H200 4.25 M)"),
]


def _find(res, config, backend, dtype, batch):
    for r in res["records"]:
        if (r["config"], r["backend"], r["dtype"], r["batch"]) == (config, backend, dtype, batch):
            return r
    return None


def _num(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 10:
        return f"{v:.2f}"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k" if v >= 1e3 else f"{v:.0f}"


def predictions(res) -> list:
    """Rows (name, before, (low, high), measured, verdict, why) for the predictions this run measured."""
    rows = []
    for config, backend, dtype, batch, metric, before, (lo, hi), why in PREDICTIONS:
        r = _find(res, config, backend, dtype, batch)
        if r is None:
            continue
        if metric == "sps":
            v = r["samples_per_sec"]
        elif metric == "agg":
            v = r["aggregate_samples_per_sec"]
        else:
            other = _find(res, config, metric[1], metric[2], batch)
            if other is None:
                continue
            v = r["samples_per_sec"] / other["samples_per_sec"]
        verdict = "below" if v < lo else "above" if v > hi else "as predicted"
        unit = "" if metric in ("sps", "agg") else f" (x {metric[1]} {metric[2]})"
        rows.append((f"{config} {backend} {dtype} B={batch}{' aggregate' if metric == 'agg' else ''}{unit}",
                     before, (lo, hi), v, verdict, why))
    return rows


def floor_lines(fl) -> list:
    out = []
    if "launch_us" in fl:
        out.append(f"empty launch {fl['launch_us']:.2f} us")
    if fl.get("handoff"):
        out.append("hand-off ns: " + ", ".join(f"{h['nblk']} blk x {h['payload']} f {h.get('ns_per_handoff', float('nan')):.0f}"
                                               for h in fl["handoff"]))
    for m in fl.get("matvec", []):
        if m["dtype"] == "float16":
            kind = " regs" if m.get("regs") else " fixed" if m["fixed"] else " generic"
            out.append(f"block product {m['rows']} x {m['cols']}{' + gate' if m['gate'] else ''}"
                       f"{kind}: {m['ticks_per_product']:.0f} ticks"
                       + (f", {m['ns_per_product']:.0f} ns" if "ns_per_product" in m else ""))
    return out


def _matvec_ticks(fl, rows, cols, gate, regs=False):
    """fp16, compile-time shapes, weights in shared memory (or registers)"""
    for m in fl.get("matvec", []):
        if (m["dtype"], m["rows"], m["cols"], m["gate"], m["fixed"], bool(m.get("regs"))) == \
                ("float16", rows, cols, gate, True, regs):
            return m["ticks_per_product"]
    return None


def profile_lines(fl) -> list:
    """W1: a layer's gate + res against the block-product floor (128 x 64 + gate, 64 x 64, fixed
    fp16), and what that says to do next (NOTES_GPU "How to read them"); R2: phases per step."""
    out = []
    for p in fl.get("profile", []):
        mhz = p["implied_clock_mhz"]
        regs = p.get("shapes") == "regs"  # against the floor of the products it runs
        g_floor, r_floor = _matvec_ticks(fl, 128, 64, True, regs), _matvec_ticks(fl, 64, 64, False, regs)
        nl = sum(p["layers_per_block"])
        gate = sum(b["gate"] for b in p["layer_us"]) / nl
        res = sum(b["res"] for b in p["layer_us"]) / nl
        other = {k: sum(b[k] for b in p["layer_us"]) / nl for k in ("taps", "pre", "wait", "skip")}
        sh = p.get("shapes", "fixed" if p["fixed_shapes"] else "generic")
        line = (f"W1 fp16 {p['transport']} {sh}: {p['us_per_sample']:.2f} us/sample; "
                f"per layer gate {gate:.2f} + res {res:.2f} us; taps {other['taps']:.2f} pre {other['pre']:.2f} "
                f"skip {other['skip']:.2f} wait {other['wait']:.2f}; output block "
                + ", ".join(f"{k} {v:.2f}" for k, v in p["output_us"].items()))
        out.append(line)
        if g_floor and r_floor and mhz > 0:
            floor = (g_floor + r_floor) / mhz  # ticks / MHz = us
            ratio = (gate + res) / floor
            hint = ("near the product floor: next, fewer barriers / more work per block (weights in registers, "
                    "two layers' products fused)" if ratio < 1.5 else
                    "far above the product floor: the cost is outside the products (ring store, pre work, "
                    "generic pointers): compare taps + pre + skip with wait")
            out.append(f"  gate + res = {ratio:.1f}x the block-product floor ({floor:.2f} us): {hint}")
    for p in fl.get("profile_wavernn", []):
        mhz = p.get("clock_mhz")
        f, unit = (1.0 / mhz, "us") if mhz else (1.0, "ticks")
        out.append(f"R2 {p['dtype']} per step ({unit}, block mean): "
                   + ", ".join(f"{k} {v * f:.2f}" for k, v in p["mean_ticks"].items()))
    return out


def summary(res) -> str:
    lines = [f"== {res['device']} {res['date']} {res['commit']}: predictions (NOTES_GPU.md)"]
    rows = predictions(res)
    w = max((len(r[0]) for r in rows), default=10)
    for name, before, (lo, hi), got, verdict, why in rows:
        pred = f"{_num(lo)}-{_num(hi)}"
        lines.append(f"{name:<{w}}  before {_num(before):>8}  predicted {pred:>15}  measured {_num(got):>8}  "
                     f"{verdict:<12} {why}")
    missing = len(PREDICTIONS) - len(rows)
    if missing:
        lines.append(f"({missing} predictions not measured in this run)")
    fl = res.get("floors", {})
    if fl:
        lines.append("== floors")
        lines += floor_lines(fl)
        lines.append("== where the time goes")
        lines += profile_lines(fl)
    return "\n".join(lines)


def main(argv=None):
    files = (argv if argv is not None else sys.argv[1:])
    if not files:
        raise SystemExit(__doc__)
    for f in files:
        with open(f) as fh:
            print(summary(json.load(fh)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
