"""Benchmark harness shared by `audiogen-fast bench` and the pytest-benchmark suites.

A case is (config, provider, device, dtype, batch, seconds of audio). Providers:
  torch    the eager reference loop (the baseline every ratio is taken against)
  compile  torch.compile of the eager step (WaveNet, WaveRNN) or denoiser (DiffWave);
           mode "reduce-overhead" (CUDA graphs) on a GPU, "default" on the CPU
  cpp      the C++ loops (CPU)             triton   the Triton kernels (GPU)
  cuda     the CUDA persistent kernels (GPU)
Each case is timed after a warm-up call, as the median of `reps` calls, the providers of a config
interleaved call by call (run()); on a GPU with CUDA events after a synchronize. Records follow
DESIGN.md's results schema.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import presets

STANDARD = ("W1", "W2", "W4", "R2", "D1", "D2")
PROVIDERS = ("torch", "compile", "cpp", "triton", "cuda")


class Skip(Exception):
    """This provider cannot run this case here (the message says why)."""


def _family(config):
    return presets.PRESETS[config][0]


@dataclass(frozen=True)
class Pruning:
    """How a benchmark's WaveRNN model is block-pruned first (bench --sparsity;
    models/wavernn/sparsity.py): the share of zero blocks, the matrices ("gru", "gru+fc" or
    "gru+fc+out") and the block, "16x1" (what the float32 / float16 loop skips) or "16x4" (what the
    int8 loop skips too)."""
    sparsity: float
    targets: str = "gru"
    block: str = "16x1"

    def apply(self, model):
        if model.config.family != "wavernn":
            raise ValueError(f"sparsity is implemented for WaveRNN configs, not {model.config.family}")
        if self.block not in ("16x1", "16x4"):
            raise ValueError(f"sparse block must be 16x1 or 16x4, got {self.block!r}")
        from .models.wavernn import sparsity as sp

        sp.prune(model, self.sparsity, self.targets, cols=int(self.block[3:]))
        return model

    def record(self) -> dict:
        """The fields a result record carries."""
        return dict(sparsity=self.sparsity, prune_targets=self.targets, sparse_block=self.block)


def default_providers(device: str) -> list:
    """`audiogen-fast bench`'s providers when --backend is not given: eager, torch.compile on a
    GPU, and every fast backend of the device (CPU: cpp; GPU: triton and the CUDA kernels, which
    "auto" picks for WaveNet and WaveRNN); one that cannot run here is reported as skipped, with why."""
    return ["torch", "compile", "triton", "cuda"] if device.startswith("cuda") else ["torch", "cpp"]


def make_case(config: str, provider: str, device: str = "cpu", dtype: str = "float32", batch: int = 1,
              seconds: float = 0.1, seed: int = 0, prune: Pruning | None = None):
    """-> (callable generating the audio once, number of samples per stream). prune (WaveRNN
    configs): the random model block-pruned first, for every provider alike."""
    from .backends import backends as available_backends
    from .engine import Vocoder

    if config not in presets.PRESETS:
        raise ValueError(f"unknown config {config!r} (known: {', '.join(presets.PRESETS)})")
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
    fam = _family(config)
    model = _bench_model(config, prune)
    cfg = model.config
    frames = max(1, int(round(seconds * cfg.sample_rate / cfg.hop_length)))
    n = frames * cfg.hop_length
    mel = _random_mel(cfg, frames, seed, batch)
    seeds = list(range(batch))
    if provider == "compile":
        return _compiled_case(model, fam, device, mel, seeds, n), n
    if provider != "torch":
        ok, why = available_backends()[provider]
        if not ok:
            raise Skip(f"{provider} unavailable: {why}")
    try:
        voc = Vocoder(model, device=device, backend=provider, dtype=dtype)
    except ValueError as e:  # BackendError / InputError: this combination does not exist
        raise Skip(str(e)) from None
    return (lambda: voc.generate(mel=mel, seed=seeds)), n


def _bench_model(config: str, prune: Pruning | None):
    """The config's random model (seed 0), block-pruned if asked."""
    model = presets.build(config, seed=0)
    return prune.apply(model) if prune else model


def _random_mel(cfg, frames: int, seed: int, batch=None):
    """A log-mel-like input, [n_mels, frames] (or [batch, n_mels, frames]), drawn from the seed."""
    shape = (cfg.n_mels, frames) if batch is None else (batch, cfg.n_mels, frames)
    return (np.random.default_rng(seed).standard_normal(shape) - 4).astype(np.float32)


def _compiled_case(model, fam, device, mel, seeds, n):
    from .models import family

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise Skip("no CUDA GPU")
    model = model.to(device)
    rt = family(fam).runtime
    cfg = model.config
    mode = "reduce-overhead" if device.startswith("cuda") else "default"
    mel_t = torch.from_numpy(mel).to(device)
    if fam == "wavenet":
        noise = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, n) for s in seeds])).to(device)
        return lambda: rt.run_compiled(model, n, mel=mel_t, noise=noise, mode=mode)
    if fam == "diffwave":
        from .models.diffwave.reference import Schedule

        sched = Schedule.from_config(cfg, None)
        noise = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, n, sched) for s in seeds])).transpose(0, 1).contiguous().to(device)
        return lambda: rt.run_compiled(model, sched, noise, mel=mel_t, mode=mode)
    if fam == "wavernn":
        noise = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, n) for s in seeds])).to(device)
        return lambda: rt.run_compiled(model, mel_t, noise, mode=mode)
    raise Skip(f"no torch.compile provider for {fam}")


def time_once(fn, device: str = "cpu") -> float:
    """Seconds of one fn() call (CUDA events after a synchronize on a GPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) / 1000.0
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def time_case(fn, device: str = "cpu", reps: int = 3, warmup: bool = True) -> float:
    """Median seconds of fn() over reps, after one warm-up call unless warmup=False."""
    if warmup:
        fn()
    return statistics.median(time_once(fn, device) for _ in range(reps))


def record(config, provider, dtype, batch, n, seconds_taken, sample_rate, eager_sps=None, compile_sps=None, **extra):
    sps = n / seconds_taken
    r = {"config": config, "backend": provider, "dtype": dtype, "batch": batch, "samples": n,
         "samples_per_sec": sps, "aggregate_samples_per_sec": sps * batch, "rtf": sample_rate / sps,
         "x_realtime": sps / sample_rate, "vs_torch": (sps / eager_sps) if eager_sps else None,
         "vs_compile": (sps / compile_sps) if compile_sps else None}
    r.update(extra)
    return r


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    isa = cpu_isa()
    return f"{name} ({os.cpu_count()} cpus" + (f", {isa})" if isa else ")")


def cpu_isa() -> str:
    """The instruction sets the C++ loops' kernels use here ("" without the extension): the same
    model name hides CPUs whose reduced-precision products differ several-fold (an AVX2-only
    EPYC runs bf16 / int8 on AVX2 kernels, a Zen 4 on AVX512-BF16 / VNNI)."""
    try:
        from . import _cpp

        ks = {_cpp.kernels_name(), _cpp.bf16_kernel(), _cpp.int8_kernel()}
    except Exception:
        return ""
    if "avx512bf16" in ks or "avx512vnni" in ks:
        return "AVX-512 " + "+".join(n for k, n in (("avx512bf16", "BF16"), ("avx512vnni", "VNNI")) if k in ks)
    return "AVX2" if "avx2" in ks else "portable"


def git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True, stderr=subprocess.DEVNULL,
                                       cwd=os.path.dirname(os.path.abspath(__file__))).strip()
    except Exception:
        return os.environ.get("AGF_COMMIT", "unknown")


def run(configs, providers, device="cpu", dtype="float32", batch=1, seconds=0.1, reps=3, log=print,
        prune: Pruning | None = None):
    """Every config x provider. A config's providers are timed interleaved: after one warm-up
    call each, every round times one call of each provider (the order rotated every round), so a
    machine whose speed drifts during the run (a shared VM moves +-30% within minutes) slows them
    alike. samples/s is the median over rounds; each ratio (vs eager, vs torch.compile) is the
    median of the per-round ratios."""
    records = []
    for config in configs:
        sr = presets.preset_config(config).sample_rate
        order = ["torch"] + [p for p in providers if p != "torch"]
        cases = []
        for prov in order:
            dt = "float32" if prov in ("torch", "compile") else dtype
            try:
                # the eager loops, compiled or not, step in Python: time them on a shorter utterance
                # (per-sample rates compare)
                slow = prov in ("torch", "compile") and _family(config) != "diffwave"
                secs = min(seconds, 0.05) if slow else seconds
                fn, n = make_case(config, prov, device=device, dtype=dt, batch=batch, seconds=secs, prune=prune)
                fn()  # warm-up (packs weights, compiles, captures graphs)
            except Skip as e:
                log(f"{config:4s} {prov:8s} skipped: {e}")
                continue
            cases.append((prov, dt, fn, n))
        if not cases:
            continue
        times = {c[0]: [] for c in cases}
        for r in range(reps):
            k = r % len(cases)
            for prov, _, fn, _ in cases[k:] + cases[:k]:
                times[prov].append(time_once(fn, device))
        rate = {prov: [n / t for t in times[prov]] for prov, _, _, n in cases}

        def paired(prov, ref):
            if ref not in rate:
                return None
            return statistics.median(a / b for a, b in zip(rate[prov], rate[ref]))

        for prov, dt, _, n in cases:
            rec = record(config, prov, dt, batch, n, statistics.median(times[prov]), sr, **(prune.record() if prune else {}))
            rec["vs_torch"] = 1.0 if prov == "torch" else paired(prov, "torch")
            rec["vs_compile"] = paired(prov, "compile") if prov not in ("torch", "compile") else None
            records.append(rec)
            log(format_row(rec))
    return records


def format_row(r) -> str:
    vs_t = f"{r['vs_torch']:.1f}x" if r.get("vs_torch") else "-"
    vs_c = f"{r['vs_compile']:.1f}x" if r.get("vs_compile") else "-"
    cfg = config_label(r)
    return (f"{cfg:4s} {r['backend']:8s} {r['dtype']:9s} B={r['batch']:<3d} "
            f"{r['samples_per_sec']:>12,.0f} /s/stream {r['aggregate_samples_per_sec']:>13,.0f} aggr "
            f"x_rt {r['x_realtime']:8.2f}  vs eager {vs_t:>7s}  vs compile {vs_c:>6s}")


def write_results(records, out_dir, device):
    os.makedirs(out_dir, exist_ok=True)
    name = device_name(device)
    date = datetime.date.today().isoformat()
    commit = git_commit()
    res = {"device": name, "commit": commit, "date": date, "torch": torch.__version__, "triton": _triton_version(),
           "records": records}
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")
    path = os.path.join(out_dir, f"{slug}-{date}-{commit}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return path


def _triton_version():
    try:
        import triton

        return triton.__version__
    except ImportError:
        return None


def config_label(r) -> str:
    """A record's config, with the block sparsity it was pruned to (bench --sparsity) if any."""
    if not r.get("sparsity"):
        return r["config"]
    block = r.get("sparse_block", "16x1")
    return r["config"] + f" ({r['sparsity']:.0%} sparse {r.get('prune_targets', 'gru')}" + \
        (f" {block})" if block != "16x1" else ")")


def _label(r) -> str:
    many = "N" if r.get("mode") == "streams" else "B"   # bench --streams: N streams through open_streams()
    return f"{r['backend']} {r['dtype']}" + (f" {many}={r['batch']}" if r.get("batch", 1) > 1 else "")


LEGEND_INSIDE = 6   # providers whose legend still fits inside a panel without hiding bars


def legend_rows(records) -> int:
    """Lines the legend of draw_bars takes below its panel (0: it sits inside)."""
    n = len(dict.fromkeys(_label(r) for r in records))
    return 0 if n <= LEGEND_INSIDE else -(-n // 3)


def draw_bars(ax, records, title):
    """x real time per stream as bars per config (groups) and provider (colours), log scale, with
    real time as a dashed line: the plot of `bench` and one panel of benchmarks/report.py's. A
    colour per provider (tab20 beyond 10: the default cycle would repeat); a long legend goes below
    the panel in three columns (legend_rows lines), where it hides no bar."""
    import matplotlib

    configs = list(dict.fromkeys(config_label(r) for r in records))
    provs = list(dict.fromkeys(_label(r) for r in records))
    cmap = matplotlib.colormaps["tab20" if len(provs) > 10 else "tab10"]
    w = 0.8 / max(1, len(provs))
    for i, p in enumerate(provs):
        pts = [(j + i * w, r["x_realtime"]) for j, c in enumerate(configs) for r in records
               if config_label(r) == c and _label(r) == p]
        ax.bar([x for x, _ in pts], [y for _, y in pts], width=w, label=p, color=cmap(i % cmap.N))
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(configs))])
    ax.set_xticklabels(configs)
    ax.set_ylabel("x real time (per stream)")
    ax.set_title(title, fontsize=8)
    if legend_rows(records):
        ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    else:
        ax.legend(fontsize=6)


def plot(records, path, title):
    """Bar chart of x-real-time per config and provider (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(config_label(r) for r in records))
    provs = list(dict.fromkeys(_label(r) for r in records))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(configs) * max(1, len(provs)) / 2), 4 + 0.14 * legend_rows(records)),
                           layout="constrained")
    draw_bars(ax, records, title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _vocoder(config, provider, device, dtype, prune, many=False):
    """The config's random model (block-pruned if asked) behind a Vocoder; Skip where the backend,
    dtype or (many: open_streams()) the model cannot run it."""
    from .engine import Vocoder

    model = _bench_model(config, prune)
    try:
        voc = Vocoder(model, device=device, backend=provider, dtype=dtype)
        if many:
            voc.open_streams()
    except ValueError as e:  # BackendError / InputError: DiffWave's open_streams(), an unconditional model, ...
        raise Skip(str(e)) from None
    return voc


def stream_case(config: str, provider: str, device: str = "cpu", dtype: str = "float32", seconds: float = 1.0,
                chunk_frames: int = 2, seed: int = 0, prune: Pruning | None = None):
    """Stream `seconds` of mel in chunks of `chunk_frames` (as fast as they can be consumed).
    Returns a record with the compute latency to the first audio, the algorithmic latency (frames
    the stream must see beyond a sample before producing it) and the steady-state RTF."""
    voc = _vocoder(config, provider, device, dtype, prune)
    cfg = voc.config
    frames = max(2, int(round(seconds * cfg.sample_rate / cfg.hop_length)))
    mel = _random_mel(cfg, frames, seed)
    chunks = [mel[:, i:i + chunk_frames] for i in range(0, frames, chunk_frames)]
    list(voc.stream(chunks[:8], seed=seed))  # warm-up (weights packed, kernels compiled)
    fed = [0]

    def feed():
        for c in chunks:
            fed[0] += c.shape[1]
            yield c

    t0 = time.perf_counter()
    first, first_frames, n = None, None, 0
    for audio in voc.stream(feed(), seed=seed):
        if first is None:
            first, first_frames = time.perf_counter() - t0, fed[0]
        n += audio.shape[-1]
    total = time.perf_counter() - t0
    rec = record(config, provider, dtype, 1, n, total, cfg.sample_rate)
    if prune:
        rec.update(prune.record())
    rec.update({"mode": "stream", "chunk_frames": chunk_frames,
                "first_chunk_ms": 1000 * first if first is not None else None,
                "frames_before_first_audio": first_frames,
                "algorithmic_latency_ms": 1000 * (first_frames or 0) * cfg.hop_length / cfg.sample_rate})
    return rec


class _TimedLoop:
    """A generation loop whose run_chunk calls are timed (synchronized on a GPU): how much of a
    many-stream run the batched loop takes, and so how much the per-stream Python around it."""

    def __init__(self, loop, device: str):
        self.loop, self.device, self.seconds = loop, device, 0.0

    def run_chunk(self, *a, **kw):
        cuda = self.device.startswith("cuda")
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        r = self.loop.run_chunk(*a, **kw)
        if cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        return r

    def __getattr__(self, name):
        return getattr(self.loop, name)


def streams_case(config: str, provider: str, device: str = "cpu", dtype: str = "float32", streams: int = 1,
                 seconds: float = 1.0, seed: int = 0, prune: Pruning | None = None):
    """`streams` independent streams (different mels and seeds) through Vocoder.open_streams(), the
    server path of issue 9: each step runs the next block of every stream as one batched loop call.
    Each stream gets `seconds` of mel at once, so this is the throughput bound (streams whose mel
    arrives in real time are never faster). Returns a record with samples/s per stream (x_realtime
    >= 1: this many streams run in real time here), the aggregate, and loop_share: the part of the
    time inside the batched loop calls (the rest: each stream's conditioning and bookkeeping)."""
    if streams < 1:
        raise ValueError(f"streams must be >= 1, got {streams}")
    voc = _vocoder(config, provider, device, dtype, prune, many=True)
    cfg = voc.config
    frames = max(1, int(round(seconds * cfg.sample_rate / cfg.hop_length)))
    mels = [_random_mel(cfg, frames, seed + k) for k in range(streams)]

    def run(n_frames):
        ms = voc.open_streams()
        ms.loop = timed = _TimedLoop(ms.loop, device)
        for k, mel in enumerate(mels):
            sid = ms.add(seed=seed + k)
            ms.push(sid, mel[:, :n_frames])
            ms.end(sid)
        n = 0
        while True:
            out = ms.step()
            if not out:
                break
            n += sum(a.shape[-1] for a in out.values())
        return n, timed.seconds

    run(min(frames, 16))  # warm-up: weights packed for this batch, kernels compiled
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    n, in_loop = run(frames)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    rec = record(config, provider, dtype, streams, n // streams, total, cfg.sample_rate)
    if prune:
        rec.update(prune.record())
    rec.update({"mode": "streams", "loop_share": in_loop / total})
    return rec
