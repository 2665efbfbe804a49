"""One-command GPU check: correctness of the GPU kernels against the eager reference on the GPU,
then timings (fast vs eager vs torch.compile in the same run). Writes a results JSON (schema in
DESIGN.md) and a log under --out.

    python3 benchmarks/gpu_check.py --out DIR
    TRITON_INTERPRET=1 python3 benchmarks/gpu_check.py --smoke --out DIR   # no GPU: a dry run

--smoke runs every code path of the script on the CPU: tiny models under the standard configs'
names, the CUDA kernels on the fiber emulator, the Triton kernels in the interpreter, a few samples
each, no torch.compile. Its timings mean nothing; it exists so that a script that runs on a lent
GPU only a few times a month cannot lose that run to a renamed argument (tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import traceback

if "--smoke" in sys.argv:  # before Triton is imported: its kernels then run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import torch

import audiogen_fast as agf
from audiogen_fast.models.wavenet import runtime as wrt

SR = 22050
DEV = "cuda"    # "cpu" with --smoke
SMOKE = False   # --smoke: tiny models, the emulator and the interpreter (see the docstring)
# --smoke's models: a config's own (W4: MoL, kernel 3) or its family's (the Triton DiffWave kernel
# needs C >= 16, a power of two; 2 layers: the interpreter is slow)
TINY = {"W": ("tiny-wavenet", {}), "W4": ("tiny-wavenet", dict(kernel_size=3, output="mol", n_mix=3)),
        "R": ("tiny-wavernn", {}), "D": ("tiny-diffwave", dict(residual_channels=16, residual_layers=2))}


def build(preset):
    """The config's model with random weights (seed 0) on DEV; --smoke: a tiny model of its kind."""
    if SMOKE:
        name, kw = TINY.get(preset) or TINY[preset[0]]
        return agf.build(name, seed=0, **kw).eval()
    return build(preset)


def size(n, tiny):
    """A length or batch: n on the GPU, tiny in --smoke."""
    return tiny if SMOKE else n


def cuda_kw(**kw):
    """Arguments of the persistent CUDA loops: on the emulator in --smoke (64 threads per block
    unless asked: the emulator's cost is per fiber)."""
    return {"emulate": True, "threads": 64, **kw} if SMOKE else kw


def cuda_ok():
    return SMOKE or agf.backends()["cuda"][0]


def commit():
    if os.environ.get("AGF_COMMIT"):
        return os.environ["AGF_COMMIT"]
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        return "unknown"


def cuda_time(fn, reps=3, warmup=True):
    """Median seconds of fn() over reps, synchronised with CUDA events; a warm-up call first
    (not timed) unless warmup=False."""
    from audiogen_fast.bench import time_case

    if SMOKE:  # one call: its time means nothing
        reps, warmup = 1, False
    return time_case(fn, DEV, reps=reps, warmup=warmup)


RECORDS = []
FLOORS = {}
FAILURES = []   # what raised unexpectedly (reported, the run goes on; the exit status is 1)
OUT_DIR = "."
COMPILE = "first"   # torch.compile baselines: "first" (before the kernels), "last" or "no" (--compile)


def record(config, backend, dtype, batch, samples, seconds, eager_sps=None, compile_sps=None, **extra):
    sps = samples / seconds
    r = {"config": config, "backend": backend, "dtype": dtype, "batch": batch, "samples": samples,
         "samples_per_sec": sps, "aggregate_samples_per_sec": sps * batch, "rtf": SR / sps,
         "x_realtime": sps / SR, "vs_torch": (sps / eager_sps) if eager_sps else None,
         "vs_compile": (sps / compile_sps) if compile_sps else None}
    r.update(extra)
    RECORDS.append(r)
    print(f"{config:4s} {backend:10s} {dtype:9s} B={batch:<4d} {sps:>12,.0f} samples/s/stream "
          f"{sps * batch:>14,.0f} aggregate  x_rt={sps / SR:8.2f}"
          + (f"  vs_torch={r['vs_torch']:.1f}" if r["vs_torch"] else "")
          + (f"  vs_compile={r['vs_compile']:.1f}" if r["vs_compile"] else ""), flush=True)
    return sps


def bench_wavenet(preset, quick):
    model = build(preset)
    cfg = model.config

    def inputs(B, n):
        frames = -(-n // cfg.hop_length)
        mel = torch.randn(B, cfg.n_mels, frames, device=DEV)
        nz = torch.from_numpy(np.stack([wrt.draw_noise(cfg, s, n) for s in range(B)])).to(DEV)
        return mel, nz

    # eager reference loop on the GPU (slow: a few hundred samples are enough for a median)
    n_e = size(256, 8)
    mel, nz = inputs(1, n_e)
    t = cuda_time(lambda: wrt.run_torch(model, n_e, mel=mel, noise=nz), reps=3)
    eager = record(preset, "torch", "float32", 1, n_e, t)
    comp = None
    if COMPILE == "first":
        try:
            wrt.run_compiled(model, 64, mel=mel, noise=nz)  # compile + capture
            t = cuda_time(lambda: wrt.run_compiled(model, n_e, mel=mel, noise=nz), reps=3)
            comp = record(preset, "compile", "float32", 1, n_e, t, eager_sps=eager)
        except Exception:  # report, don't hide
            failed(f"{preset} torch.compile baseline")
    n = size(4096 if not quick else 1024, 16)
    mel, nz = inputs(1, n)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        loop = wrt.triton_loop(model, weight_dtype=dtype)
        t = cuda_time(lambda: wrt.run_triton(model, n, mel=mel, noise=nz, loop=loop), reps=3)
        record(preset, "triton", str(dtype).split(".")[-1], 1, n, t, eager_sps=eager, compile_sps=comp)
    # the layer loop unpipelined (the kernel of the 2026-11-22 / 11-30 runs but for its ring row
    # more): what the software pipelining of session 16 gives (prediction: 1.3-2x, the step was
    # L2-latency bound)
    if preset == "W1":
        from audiogen_fast.ops.wavenet_loop import WaveNetLoop
        for bg in (32, 64):
            loop = WaveNetLoop(model, dtype=torch.float16, block_g=bg, layer_stages=1)
            t = cuda_time(lambda: wrt.run_triton(model, n, mel=mel, noise=nz, loop=loop), reps=3)
            record(preset, f"triton-nopipe-g{bg}", "float16", 1, n, t, eager_sps=eager, compile_sps=comp)
    # the CUDA persistent kernel (issue 5): one stream, then many (in a child process with a
    # time limit: a kernel that hangs must not eat the device session)
    if cuda_ok():
        bench_wavenet_cuda(preset, quick, eager, comp)
    # kernel variants (W1 only): warps and gate block
    if preset == "W1" and not quick:
        from audiogen_fast.ops.wavenet_loop import WaveNetLoop
        for nw in (1, 2, 4):
            for bg in (32, 64):
                loop = WaveNetLoop(model, dtype=torch.float16, block_g=bg, num_warps=nw)
                t = cuda_time(lambda: wrt.run_triton(model, n, mel=mel, noise=nz, loop=loop), reps=3)
                record(preset, f"triton-w{nw}-g{bg}", "float16", 1, n, t, eager_sps=eager, compile_sps=comp)
    # many streams
    n = size(1024 if not quick else 512, 8)
    for B in size((16, 132, 264) if not quick else ((16, 132) if preset == "W1" else (132,)), (3,)):
        mel, nz = inputs(B, n)
        loop = wrt.triton_loop(model, weight_dtype=torch.float16)
        t = cuda_time(lambda: wrt.run_triton(model, n, mel=mel, noise=nz, loop=loop), reps=2)
        record(preset, "triton", "float16", B, n, t, eager_sps=eager, compile_sps=comp)
    # many streams, 16 / 32 per program on tensor cores (ops/wavenet_loop_mm.py; issue 9's 256 streams)
    if preset == "W1":
        from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM
        for bm, B in size(((16, 256), (16, 2112), (32, 1024), (32, 4224)), ((16, 17),)):
            try:
                mel, nz = inputs(B, n)
                loop = WaveNetLoopMM(model, dtype=torch.float16, streams_per_program=bm)
                t = cuda_time(lambda: wrt.run_triton(model, n, mel=mel, noise=nz, loop=loop), reps=2)
            except Exception:  # a first GPU run of this kernel: report, keep the rest
                failed(f"{preset} triton-mm{bm} B={B}")
                continue
            record(preset, f"triton-mm{bm}", "float16", B, n, t, eager_sps=eager, compile_sps=comp)


def bench_wavenet_cuda(preset, quick, eager, comp):
    from audiogen_fast.ops.wavenet_persistent import WaveNetPersistentLoop

    model = build(preset)
    cfg = model.config

    def inputs(B, n):
        mel = torch.randn(B, cfg.n_mels, -(-n // cfg.hop_length), device=DEV)
        nz = torch.from_numpy(np.stack([wrt.draw_noise(cfg, s, n) for s in range(B)])).to(DEV)
        return mel, nz

    n = size(4096 if not quick else 2048, 16)
    mel, nz = inputs(1, n)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for tr in ("l2", "dsmem"):  # global-memory mailboxes vs thread-block clusters
            try:
                loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=dtype, transport=tr))
                pl = loop.plan(1, 1)
                t = cuda_time(lambda: wrt.run_cuda(model, n, mel=mel, noise=nz, loop=loop), reps=3)
            except (ValueError, RuntimeError) as e:
                print(f"{preset} cuda {tr} {dtype}: {e}")
                continue
            record(preset, f"cuda-{tr}", str(dtype).split(".")[-1], 1, n, t, eager_sps=eager, compile_sps=comp,
                   blocks_per_stream=pl["nblk"] + 1, smem_per_block=pl["smem"])
    # W1's sizes run the compile-time-shaped products by default: the generic instance for comparison,
    # and the one with the critical matrices in registers (register_weights; prediction 1.1-1.3x)
    if preset == "W1":
        for tr in ("l2", "dsmem"):
            for name, kw in (("generic", dict(fixed_shapes=False)), ("regs", dict(register_weights=True))):
                loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16, transport=tr, **kw))
                t = cuda_time(lambda: wrt.run_cuda(model, n, mel=mel, noise=nz, loop=loop), reps=3)
                record(preset, f"cuda-{tr}-{name}", "float16", 1, n, t, eager_sps=eager, compile_sps=comp)
    # variants (W1): 128 threads per block; one layer per block (20 hand-offs instead of 7)
    if preset == "W1" and not quick:
        for name, kw in (("cuda-t128", dict(threads=128)), ("cuda-1layer", dict(smem_budget=60 * 1024)),
                         ("cuda-critical", dict(pack="critical"))):
            loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16, **kw))
            pl = loop.plan(1, 1)
            t = cuda_time(lambda: wrt.run_cuda(model, n, mel=mel, noise=nz, loop=loop), reps=3)
            record(preset, name, "float16", 1, n, t, eager_sps=eager, compile_sps=comp, blocks_per_stream=pl["nblk"] + 1)
    # the kernel alone (no Session / conditioning / Python per block): one launch of n steps
    loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16))  # "auto" transport
    hist, x = loop.new_state(1, wrt.initial_input(cfg))  # mu-law: the class of 0.0; MoL: 0.0
    cond = torch.zeros(1, n, cfg.layers, cfg.gate_channels, device=DEV)
    u = torch.rand(1, n, loop.base["nz"], device=DEV)  # uniforms per sample: MoL takes 2
    t = cuda_time(lambda: loop.run_chunk(cond, hist, x, 0, noise=u), reps=3)
    record(preset, "cuda-kernel-only", "float16", 1, n, t, eager_sps=eager, compile_sps=comp)
    if preset == "W1":
        try:
            profile_wavenet_cuda(model, cond, u, n)
        except Exception:  # report, don't lose the rest of the section
            failed(f"{preset} cuda profile")
    n = size(1024, 8)
    for B in size((16, 64, 132, 256) if not quick else (64, 256), (3, 17)):
        mel, nz = inputs(B, n)
        loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16))  # up to 8 streams per chain, batch-invariant
        t = cuda_time(lambda: wrt.run_cuda(model, n, mel=mel, noise=nz, loop=loop), reps=2)
        record(preset, "cuda", "float16", B, n, t, eager_sps=eager, compile_sps=comp)
        if B >= size(64, 17):  # 16 streams per chain on tensor cores (the 256-stream goal of issue 9)
            loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16, streams_per_chain=16))
            t = cuda_time(lambda: wrt.run_cuda(model, n, mel=mel, noise=nz, loop=loop), reps=2)
            record(preset, "cuda-mma16", "float16", B, n, t, eager_sps=eager, compile_sps=comp)


def profile_wavenet_cuda(model, cond, u, n):
    """Where a sample's time goes inside the WaveNet kernel (one stream, fp16): clock ticks per
    phase and block (WaveNetPersistentLoop(profile=True)), in us through the ticks the output block
    counts per sample against the wall time per sample of the same launch (so no clock rate is
    assumed). Goes to FLOORS["profile"]."""
    from audiogen_fast.ops.wavenet_persistent import WaveNetPersistentLoop

    FLOORS.setdefault("profile", [])
    # fixed: compile-time shapes (the default), generic: run-time shapes, regs: fixed + the critical
    # matrices in registers
    shapes = {"fixed": {}, "generic": dict(fixed_shapes=False), "regs": dict(register_weights=True)}
    for tr, sh in (("l2", "fixed"), ("dsmem", "fixed"), ("l2", "generic"), ("l2", "regs")):
        fixed = sh != "generic"
        try:
            loop = WaveNetPersistentLoop(model, **cuda_kw(dtype=torch.float16, transport=tr, profile=True, **shapes[sh]))
            hist, x = loop.new_state(1, wrt.initial_input(model.config))
            loop.run_chunk(cond, hist, x, 0, noise=u)  # warm-up
            loop.reset_profile()
            t = cuda_time(lambda: loop.run_chunk(cond, hist, x, 0, noise=u), reps=1, warmup=False)
        except (ValueError, RuntimeError) as e:
            print(f"profile {tr}: {e}")
            continue
        rep = loop.profile_report()
        ticks = sum(rep["output"].values())     # the output block's ticks per sample ~ the wall time
        us_per_tick = t / n * 1e6 / ticks
        r = dict(transport=tr, fixed_shapes=fixed, shapes=sh, us_per_sample=t / n * 1e6, implied_clock_mhz=1.0 / us_per_tick,
                 output_us={k: v * us_per_tick for k, v in rep["output"].items()},
                 layer_us=[{k: v * us_per_tick for k, v in b.items()} for b in rep["layer"]])
        FLOORS["profile"].append(r)
        print(f"W1 cuda fp16 {tr} {sh} profile: {r['us_per_sample']:.2f} us per sample (clock implied "
              f"{r['implied_clock_mhz']:.0f} MHz)")
        print("  output block: " + ", ".join(f"{k} {v:.2f}" for k, v in r["output_us"].items()))
        lo = loop.plan(1, 1, dsmem=tr == "dsmem")["blk_lo"]
        r["layers_per_block"] = [lo[i + 1] - lo[i] for i in range(len(r["layer_us"]))]
        for i, b in enumerate(r["layer_us"]):
            nl = r["layers_per_block"][i]
            print(f"  layer block {i} ({nl} layers): " + ", ".join(f"{k} {v:.2f}" for k, v in b.items())
                  + f"; per layer gate {b['gate'] / nl:.2f}, res {b['res'] / nl:.2f}")


def profile_wavernn_cuda(model, inputs, n):
    """Where a WaveRNN step's time goes inside the CUDA kernel (one stream, fp32 and fp16): clock
    ticks per phase, averaged over the chain's blocks (max over blocks too), in us at the SM clock
    the W1 profile implied in this run (FLOORS["profile"]; ticks only without it)."""
    from audiogen_fast.models.wavernn import runtime as rrt
    from audiogen_fast.ops.wavernn_persistent import PHASES, WaveRNNPersistentLoop

    mhz = next((r["implied_clock_mhz"] for r in FLOORS.get("profile", []) if "implied_clock_mhz" in r), None)
    FLOORS.setdefault("profile_wavernn", [])
    c1, nz1 = inputs(1, n)
    for dtype in (torch.float32, torch.float16):
        loop = WaveRNNPersistentLoop(model, **cuda_kw(dtype=dtype, profile=True))
        rrt.run_cuda(model, c1, noise=nz1, loop=loop)  # warm-up
        loop.reset_profile()
        rrt.run_cuda(model, c1, noise=nz1, loop=loop)
        if DEV == "cuda":
            torch.cuda.synchronize()
        blocks = loop.profile_report()["blocks"]
        mean = {ph: sum(b[ph] for b in blocks) / len(blocks) for ph in PHASES}
        top = {ph: max(b[ph] for b in blocks) for ph in PHASES}
        r = dict(dtype=str(dtype).split(".")[-1], blocks=len(blocks), mean_ticks=mean, max_ticks=top, clock_mhz=mhz)
        FLOORS["profile_wavernn"].append(r)
        unit, f = ("us", 1.0 / mhz) if mhz else ("ticks", 1.0)
        print(f"R2 cuda {r['dtype']} profile ({len(blocks)} blocks, {unit} per step, block mean / max): "
              + ", ".join(f"{ph} {mean[ph] * f:.2f}/{top[ph] * f:.2f}" for ph in PHASES))


def bench_floors():
    """Issue 5's floors: empty-kernel launch latency, the block-to-block hand-off of the persistent
    kernels (a token round a ring of blocks through their mailbox protocol), and one block-wide
    product + barrier at W1's shapes."""
    from audiogen_fast import _cuda

    nan = float("nan")  # the emulator has no clock: its ns are NaN
    if not SMOKE:
        FLOORS["launch_us"] = _cuda.launch_latency_us()
        print(f"empty kernel launch: {FLOORS['launch_us']:.2f} us each (back to back)")
    FLOORS["handoff"] = []
    iters = size(2000, 3)
    for nblk, payload in size(((2, 192), (8, 192), (21, 192), (8, 1024), (37, 1024), (74, 1024)), ((3, 192),)):
        r = _cuda.handoff_bench(nblk=nblk, iters=iters, payload=payload, **cuda_kw())
        FLOORS["handoff"].append(r)
        print(f"hand-off ring of {nblk:3d} blocks, {payload:5d} floats: {r.get('ns_per_handoff', nan):8.1f} ns per "
              f"hand-off (token {r['token']:.0f} == {iters * nblk}: {r['token'] == iters * nblk})")
    # what a block does between hand-offs: one block-wide product + barrier (block_bench.cuh), W1's
    # shapes: per layer the current tap with the gate (128 x 64) and the residual (64 x 64), off the
    # critical path the skip rows (128 x 64); the output block's hidden (128 x 128) and logits (256 x 128)
    FLOORS["matvec"] = []
    for dtype in (torch.float16, torch.float32, torch.bfloat16):
        for rows, cols, gate in ((128, 64, True), (64, 64, False), (128, 64, False), (128, 128, False), (256, 128, False)):
            # run-time shapes (the kernels' matvec) / compile-time (matvec_fixed) / compile-time with the
            # weights in registers (matvec_fixed_regs: a layer's two products only)
            layer = (rows, cols, gate) in ((128, 64, True), (64, 64, False))
            for fixed, regs in ((False, False), (True, False)) + (((True, True),) if layer else ()):
                if SMOKE and (dtype != torch.float16 or not layer):
                    continue  # the emulator: a layer's two critical shapes are enough to check the calls
                # (fixed: compile-time shapes exist for 256 threads only, so the emulator runs 256 here)
                r = _cuda.matvec_bench(rows, cols, gate=gate, dtype=dtype, iters=size(2000, 2), fixed=fixed, regs=regs,
                                       **cuda_kw(threads=256))
                r.pop("y")
                FLOORS["matvec"].append(r)
                kind = " regs " if regs else " fixed" if fixed else "      "
                print(f"block product {rows:3d} x {cols:3d} {r['dtype']:8s}{' + gate' if gate else '       '}"
                      f"{kind}: {r['ticks_per_product']:7.1f} ticks, "
                      f"{r.get('ns_per_product', nan):7.1f} ns per product + barrier")


def bench_diffwave(preset, quick, seconds=10.0):
    from audiogen_fast.models.diffwave import runtime as drt
    from audiogen_fast.models.diffwave.reference import Schedule

    model = build(preset)
    cfg = model.config
    frames = size(int(seconds * SR / cfg.hop_length), 1)
    T = frames * cfg.hop_length
    mel = torch.randn(1, cfg.n_mels, frames, device=DEV)
    sched = Schedule.from_config(cfg, None)
    nz = torch.from_numpy(np.stack([drt.draw_noise(cfg, 0, T, sched)])).transpose(0, 1).contiguous().to(DEV)
    t = cuda_time(lambda: drt.run_torch(model, sched, nz, mel=mel), reps=3)
    eager = record(preset, "torch", "float32", 1, T, t, steps=len(sched))
    comp = None
    if COMPILE == "first" and preset == "D1":  # (D2: skipped for the time budget, see D1)
        try:
            drt.run_compiled(model, sched, nz, mel=mel)
            t = cuda_time(lambda: drt.run_compiled(model, sched, nz, mel=mel), reps=3)
            comp = record(preset, "compile", "float32", 1, T, t, eager_sps=eager, steps=len(sched))
        except Exception:
            failed(f"{preset} torch.compile baseline")
    # correctness at full length, fp32
    ref = drt.run_torch(model, sched, nz, mel=mel)
    # (fp32 with input_precision "ieee" is exact but ran at 0.1x eager on the H100: FMA-only dots)
    # tf32x3 (three tf32 products per fp32 one): if its error is within fp32's 1e-5, fp32 DiffWave on
    # a GPU could run it instead of the eager loop ("auto" runs eager in fp32 now)
    # (the tiles: DiffWaveTriton.TILES, the largest that do not spill registers on sm_90; tf32 64 x 4
    # and exact fp32 64 x 4 spilled: their figures from before are the comparison)
    variants = [(torch.float32, "tf32", 64, 8), (torch.bfloat16, "ieee", 64, 4), (torch.float16, "ieee", 64, 4),
                (torch.float32, "tf32x3", 16, 4), (torch.float32, "ieee", 16, 4)]
    if preset != "D1":
        variants = variants[:2]
    if not quick:
        variants += [(torch.bfloat16, "ieee", 128, 4), (torch.bfloat16, "ieee", 128, 8), (torch.float16, "ieee", 128, 8)]
    for dtype, prec, bt, nw in variants:
        k = drt.triton_kernels(model, dtype=dtype, block_t=bt, num_warps=nw, precision=prec)
        out = drt.run_triton(model, sched, nz, mel=mel, kernels=k)
        err = ((out - ref).abs().max() / ref.abs().max()).item()
        t = cuda_time(lambda: drt.run_triton(model, sched, nz, mel=mel, kernels=k), reps=5)
        name = "triton" + ("" if (prec == "ieee" and bt == 64 and nw == 4) else f"-{prec}-t{bt}-w{nw}")
        record(preset, name, str(dtype).split(".")[-1], 1, T, t, eager_sps=eager, compile_sps=comp,
               steps=len(sched), max_rel_err_vs_eager_fp32=err)


def bench_wavernn(preset, quick, n=2000):
    """WaveRNN: eager step loop vs the Triton loop (one launch per chunk), batch 1 and many streams."""
    from audiogen_fast.models.wavernn import runtime as rrt

    model = build(preset)
    cfg = model.config
    n, n_e = size(n, 16), size(200, 8)

    def inputs(B, T):
        mel = torch.randn(B, cfg.n_mels, -(-T // cfg.hop_length), device=DEV)
        with torch.no_grad():
            cond = [c[:, :T].contiguous() for c in model.conditioning(mel)]
        nz = torch.from_numpy(np.stack([rrt.draw_noise(cfg, s, T) for s in range(B)])).to(DEV)
        return cond, nz

    cond, nz = inputs(1, n_e)
    t = cuda_time(lambda: rrt.run_torch(model, cond, noise=nz), reps=2)
    eager = record(preset, "torch", "float32", 1, n_e, t)
    comp = None
    if COMPILE == "first":  # the eager step compiled (reduce-overhead: one CUDA graph a step)
        try:
            comp = record(preset, "compile", "float32", 1, n_e, time_wavernn_compiled(model, n_e), eager_sps=eager)
        except Exception:  # report, don't hide
            failed(f"{preset} torch.compile baseline")
    # the CUDA persistent kernel (issue 5): the kernel alone, then end to end, then many streams
    if cuda_ok():
        from audiogen_fast.ops.wavernn_persistent import WaveRNNPersistentLoop

        x = torch.rand(1, n_e, device=DEV) * 2 - 1
        _, ref, _ = rrt.run_torch(model, cond, teacher=x)
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            loop = WaveRNNPersistentLoop(model, **cuda_kw(dtype=dtype))
            _, out, _ = rrt.run_cuda(model, cond, teacher=x, loop=loop)
            err = ((out - ref).abs().max() / ref.abs().max()).item()
            pl = loop.plan(1, 1)
            c1, nz1 = inputs(1, n)
            t = cuda_time(lambda: rrt.run_cuda(model, c1, noise=nz1, loop=loop), reps=3)
            record(preset, "cuda", str(dtype).split(".")[-1], 1, n, t, eager_sps=eager, teacher_rel_err=err,
                   blocks_per_stream=pl["nblk"], smem_per_block=pl["smem"])
        try:
            profile_wavernn_cuda(model, inputs, n)
        except Exception:  # report, don't lose the rest of the section
            failed(f"{preset} cuda profile")
        loop = WaveRNNPersistentLoop(model, **cuda_kw(dtype=torch.float16))
        for B in size((4, 12, 32) if not quick else (12,), (3,)):
            cB, nzB = inputs(B, n // 2)
            t = cuda_time(lambda: rrt.run_cuda(model, cB, noise=nzB, loop=loop), reps=2)
            record(preset, "cuda", "float16", B, n // 2, t, eager_sps=eager)
    # correctness on the GPU: teacher-forced outputs and sampled classes
    x = torch.rand(1, n_e, device=DEV) * 2 - 1
    _, ref, _ = rrt.run_torch(model, cond, teacher=x)
    _, out, _ = rrt.run_triton(model, cond, teacher=x)
    print(f"{preset} triton teacher-forced max rel err {((out - ref).abs().max() / ref.abs().max()).item():.2e}")
    cond, nz = inputs(1, n)
    t = cuda_time(lambda: rrt.run_triton(model, cond, noise=nz), reps=3)
    record(preset, "triton", "float32", 1, n, t, eager_sps=eager)
    for B in size((16, 132) if not quick else (132,), (3,)):
        cond, nz = inputs(B, n // 2)
        t = cuda_time(lambda: rrt.run_triton(model, cond, noise=nz), reps=2)
        record(preset, "triton", "float32", B, n // 2, t, eager_sps=eager)
    if comp:
        fill_vs_compile(preset, comp)


def time_wavernn_compiled(model, n):
    """Seconds of the torch.compile'd WaveRNN step loop over n samples (batch 1), after a compile
    and capture call."""
    from audiogen_fast.models.wavernn import runtime as rrt

    cfg = model.config
    mel = torch.randn(1, cfg.n_mels, -(-n // cfg.hop_length), device=DEV)
    nz = torch.from_numpy(rrt.draw_noise(cfg, 0, n)[None]).to(DEV)
    rrt.run_compiled(model, mel, nz[:, :8])  # compile + capture
    return cuda_time(lambda: rrt.run_compiled(model, mel, nz), reps=3)


def compile_last(configs):
    """torch.compile baselines after every kernel was timed (compiling costs a minute or more of a
    short device session): WaveNet, WaveRNN and DiffWave (D1), then vs_compile is filled in for
    the records of that config measured earlier in this run (same process, same GPU)."""
    from audiogen_fast.models.diffwave import runtime as drt
    from audiogen_fast.models.diffwave.reference import Schedule

    for preset in configs:
        model = build(preset)
        cfg = model.config
        if preset.startswith("W"):
            n = 256
            mel = torch.randn(1, cfg.n_mels, -(-n // cfg.hop_length), device=DEV)
            nz = torch.from_numpy(wrt.draw_noise(cfg, 0, n)[None]).to(DEV)
            wrt.run_compiled(model, 64, mel=mel, noise=nz)  # compile + capture
            t = cuda_time(lambda: wrt.run_compiled(model, n, mel=mel, noise=nz), reps=3)
        elif preset.startswith("R"):
            n = size(256, 8)
            t = time_wavernn_compiled(model, n)
        elif preset == "D1":
            frames = int(10.0 * SR / cfg.hop_length)
            n = frames * cfg.hop_length
            mel = torch.randn(1, cfg.n_mels, frames, device=DEV)
            sched = Schedule.from_config(cfg, None)
            nz = torch.from_numpy(np.stack([drt.draw_noise(cfg, 0, n, sched)])).transpose(0, 1).contiguous().to(DEV)
            drt.run_compiled(model, sched, nz, mel=mel)
            t = cuda_time(lambda: drt.run_compiled(model, sched, nz, mel=mel), reps=3)
        else:
            continue
        eager = next((r["samples_per_sec"] for r in RECORDS if r["config"] == preset and r["backend"] == "torch"), None)
        fill_vs_compile(preset, record(preset, "compile", "float32", 1, n, t, eager_sps=eager))
        write(OUT_DIR)


def fill_vs_compile(preset, comp):
    """vs_compile of the config's fast-backend records, from its torch.compile rate comp."""
    for r in RECORDS:
        if r["config"] == preset and r["backend"] not in ("torch", "compile"):
            r["vs_compile"] = r["samples_per_sec"] / comp


def failed(what):
    """Report an unexpected exception (inside an except block) and go on with the rest of the run."""
    print(f"{what} failed: {sys.exc_info()[0].__name__}: {sys.exc_info()[1]}")
    traceback.print_exc()
    FAILURES.append(what)


def device():
    from audiogen_fast.bench import device_name

    return f"smoke-{device_name('cpu')}" if SMOKE else torch.cuda.get_device_name(0)


def write(out):
    import triton

    dev = device()
    date = datetime.date.today().isoformat()
    res = {"device": dev, "commit": commit(), "date": date, "torch": torch.__version__, "triton": triton.__version__,
           "notes": "eager baseline with PyTorch defaults (cuDNN may use TF32 for fp32 convolutions)",
           "records": RECORDS, "floors": FLOORS}
    slug = dev.replace(" ", "-").replace("/", "-")
    path = os.path.join(out, f"{slug}-{date}-{res['commit']}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--configs", default="W1,W2,W4,R2,D1,D2")
    ap.add_argument("--compile", choices=("first", "last", "no"), default=None,
                    help="torch.compile baselines before the kernels, after them (default with --quick), or not at all")
    ap.add_argument("--smoke", action="store_true",
                    help="no GPU: every code path on the CPU with tiny models (emulator, interpreter); timings meaningless")
    args = ap.parse_args()
    global COMPILE, OUT_DIR, DEV, SMOKE
    COMPILE = args.compile or ("last" if args.quick else "first")
    if args.smoke:  # torch.compile only if asked (--compile last: the quick GPU run's order)
        SMOKE, DEV, COMPILE = True, "cpu", args.compile or "no"
    OUT_DIR = args.out
    os.makedirs(args.out, exist_ok=True)
    import triton

    print(f"device {device()}, torch {torch.__version__}, triton {triton.__version__}, python {platform.python_version()}")
    if cuda_ok():
        try:
            bench_floors()
        except Exception:
            failed("floors")
    for c in args.configs.split(","):
        c = c.strip()
        try:
            if c.startswith("W"):
                bench_wavenet(c, args.quick)
            elif c.startswith("D"):
                bench_diffwave(c, args.quick)
            elif c.startswith("R"):
                bench_wavernn(c, args.quick)
            else:
                raise ValueError(f"unknown config {c!r}")
        except Exception:
            failed(c)
        write(args.out)  # partial results survive a timeout
    if COMPILE == "last":
        try:
            compile_last([c.strip() for c in args.configs.split(",")])
        except Exception:
            failed("compile_last")
    print("wrote", write(args.out))
    if FAILURES:
        print("FAILED:", ", ".join(FAILURES))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
