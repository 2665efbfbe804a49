"""audiogen-fast command line.

  audiogen-fast info CKPT                       what a checkpoint holds
  audiogen-fast generate CKPT (--mel M.npy | --seconds S) -o out.wav
  audiogen-fast vocode CKPT in.wav -o out.wav   wav -> mel -> audio (copy synthesis)
  audiogen-fast backends                        which backends run here, and why not
  audiogen-fast presets                         the standard configurations

CKPT is a checkpoint file or "preset:NAME" (random weights, for trying things out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _add_run_args(p):
    p.add_argument("--backend", default="auto", help="auto (default), torch, cpp, triton or cuda")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "int8"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default=None, help="diffusion models: fast or full")
    p.add_argument("--fold", action="store_true", help="WaveRNN: fold generation (batched segments)")
    p.add_argument("--hparams", default=None, help="hyper-parameters (JSON) for imported checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _load(args):
    import audiogen_fast as agf

    hp = None
    if getattr(args, "ckpt", "") is None and agf.default_model_path() is None:
        raise agf.CheckpointError("no checkpoint given and no default model is bundled: pass a checkpoint "
                                  "(or preset:NAME for random weights)")
    if getattr(args, "hparams", None):
        with open(args.hparams) as f:
            hp = json.load(f)
    return agf.load(args.ckpt, device=args.device, backend=args.backend, dtype=args.dtype, hparams=hp)


def _gen_kwargs(voc, args):
    kw = dict(seed=args.seed, progress=not args.quiet)
    if args.schedule is not None:
        kw["schedule"] = args.schedule
    if args.fold:
        kw["fold"] = True
    return kw


def _report(voc, n_samples, seconds, out):
    audio_s = n_samples / voc.sample_rate
    rtf = seconds / audio_s
    print(f"wrote {out}: {audio_s:.2f} s of audio at {voc.sample_rate} Hz in {seconds:.2f} s "
          f"[{voc.family.name}, backend={voc.backend}, device={voc.device}] "
          f"RTF {rtf:.3f} ({1 / rtf:.2f}x real time, {n_samples / seconds:,.0f} samples/s)")


def cmd_info(args):
    import audiogen_fast as agf

    voc = agf.load(args.ckpt, device="cpu", backend="torch")
    info = voc.info()
    cfg = voc.config
    info["receptive_field"] = getattr(cfg, "receptive_field", None)
    if info["family"] == "wavernn":  # how much of it the cpp loop's block-sparse products skip
        from .models.wavernn.sparsity import TARGETS, block_density

        info["block_density"] = {t: block_density(voc.model, t) for t in TARGETS}
        info["block_density_16x4"] = {t: block_density(voc.model, t, cols=4) for t in TARGETS}
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"{args.ckpt}: {info['family']} model, {info['parameters']:,} parameters")
    print(f"  audio: {cfg.sample_rate} Hz, hop {cfg.hop_length}, {cfg.n_mels} mels (n_fft {cfg.n_fft}, "
          f"win {cfg.win_length}, {cfg.fmin}-{cfg.fmax} Hz, {cfg.mel_norm}), "
          f"{'mel-conditioned' if cfg.conditional else 'unconditional'}")
    for k, v in sorted(cfg.to_dict().items()):
        if k not in ("family", "sample_rate", "hop_length", "n_mels", "n_fft", "win_length", "fmin", "fmax",
                     "mel_norm", "conditional", "noise_schedule"):
            print(f"  {k}: {v}")
    if info.get("block_density") and info["block_density"]["gru"] < 1.0:
        d = info["block_density"]
        d4 = info["block_density_16x4"]
        print(f"  block sparse: {1 - d['gru']:.1%} of the GRUs' 16 x 1 blocks are zero ({1 - d['gru+fc']:.1%} with "
              f"fc1 / fc2, {1 - d['gru+fc+out']:.1%} with fc3 too), {1 - d4['gru']:.1%} of their 16 x 4 blocks "
              f"({1 - d4['gru+fc']:.1%}, {1 - d4['gru+fc+out']:.1%}); the cpp backend skips 16 x 1 blocks with "
              "float32 / float16, 16 x 4 blocks with int8")
    print("  backends here: " + ", ".join(f"{b}{'' if ok else ' (no)'}" for b, (ok, _) in agf.backends().items()))
    return 0


def cmd_generate(args):
    from . import InputError
    from .audio import check_output_path, save_wav

    check_output_path(args.output)
    voc = _load(args)
    kw = _gen_kwargs(voc, args)
    if args.mel:
        try:
            mel = np.load(args.mel, allow_pickle=False)
        except Exception as e:
            raise InputError(f"cannot read --mel {args.mel} as a .npy array [n_mels, frames]: {e}") from None
    elif voc.conditional:
        print("error: this model is mel-conditioned: pass --mel M.npy", file=sys.stderr)
        return 2
    elif not args.seconds > 0:
        raise InputError(f"--seconds must be > 0, got {args.seconds}")
    t0 = time.perf_counter()
    if args.mel:
        audio = voc.generate(mel=mel, **kw)
    else:
        audio = voc.generate(num_samples=max(1, int(round(args.seconds * voc.sample_rate))), **kw)
    dt = time.perf_counter() - t0
    if audio.ndim == 2:
        audio = audio.reshape(-1) if audio.shape[0] == 1 else audio
        if audio.ndim == 2:
            print("error: --mel holds a batch; generate writes one wav (pass one [n_mels, frames] mel)", file=sys.stderr)
            return 2
    save_wav(args.output, audio, voc.sample_rate)
    _report(voc, audio.shape[-1], dt, args.output)
    return 0


def _vocode_stream(voc, args):
    """Chunk by chunk: wav blocks -> MelStream -> Vocoder.stream -> wav blocks; memory does not
    grow with the length of the file."""
    import soundfile as sf
    import soxr

    from . import InputError
    from .audio import AudioError, MelStream, check_input_path

    check_input_path(args.input)
    if not args.chunk_seconds > 0:
        raise InputError(f"--chunk-seconds must be > 0, got {args.chunk_seconds}")
    try:
        info = sf.info(args.input)
    except Exception as e:
        raise AudioError(f"cannot read audio file {args.input}: {e}") from None
    sr_in = info.samplerate
    if sr_in != voc.sample_rate:
        print(f"note: {args.input} is {sr_in} Hz; resampling to the model's {voc.sample_rate} Hz")
    block = max(1, int(args.chunk_seconds * sr_in))
    resampler = soxr.ResampleStream(sr_in, voc.sample_rate, 1, dtype="float32") if sr_in != voc.sample_rate else None
    mels = MelStream(voc.config)
    n_in = [0]

    def mel_chunks():
        with sf.SoundFile(args.input) as f:
            while True:
                x = f.read(block, dtype="float32", always_2d=True)
                last = len(x) < block
                x = x.mean(axis=1)
                if resampler is not None:
                    x = resampler.resample_chunk(x, last=last)
                n_in[0] += len(x)
                m = mels.push(x)
                if m.shape[-1]:
                    yield m
                if last:
                    break
        m = mels.finish()
        if m.shape[-1]:
            yield m

    t0 = time.perf_counter()
    written = 0
    first = None
    with sf.SoundFile(args.output, "w", samplerate=voc.sample_rate, channels=1, subtype="PCM_16") as out:
        for audio in voc.stream(mel_chunks(), seed=args.seed):
            if first is None:
                first = time.perf_counter() - t0
            audio = audio[: max(0, n_in[0] - written)] if n_in[0] else audio
            out.write(np.clip(audio, -1, 1))
            written += len(audio)
    dt = time.perf_counter() - t0
    _report(voc, written, dt, args.output)
    if first is not None:
        print(f"first audio after {first * 1000:.0f} ms")
    return 0


def cmd_vocode(args):
    from .audio import check_output_path, load_wav, save_wav

    if len(args.paths) == 1:
        args.ckpt, args.input = None, args.paths[0]
    elif len(args.paths) == 2:
        args.ckpt, args.input = args.paths
    else:
        print("error: vocode takes [CKPT] IN.wav", file=sys.stderr)
        return 2
    check_output_path(args.output)
    voc = _load(args)
    if args.ckpt is None:
        print(f"using the bundled default model ({voc.family.name}, {voc.sample_rate} Hz)")
    if args.stream:
        return _vocode_stream(voc, args)
    wav, sr = load_wav(args.input)
    if sr != voc.sample_rate:
        print(f"note: {args.input} is {sr} Hz; resampling to the model's {voc.sample_rate} Hz")
    mel = voc.mel(wav, sample_rate=sr)
    n_in = int(round(len(wav) * voc.sample_rate / sr))
    t0 = time.perf_counter()
    audio = voc.generate(mel=mel, **_gen_kwargs(voc, args))
    dt = time.perf_counter() - t0
    audio = audio[:n_in]
    save_wav(args.output, audio, voc.sample_rate)
    _report(voc, mel.shape[-1] * voc.hop_length, dt, args.output)
    if args.all_backends:
        _compare_backends(voc, mel, args)
    return 0


def _compare_backends(voc, mel, args, max_seconds: float = 1.0):
    """Real-time factor of every backend that runs this model here, on the same mel: the first
    max_seconds of it, so an eager autoregressive loop (hundreds of samples/s) stays quick."""
    import audiogen_fast as agf

    frames = max(1, min(mel.shape[-1], int(max_seconds * voc.sample_rate / voc.hop_length)))
    mel = mel[..., :frames]
    secs = frames * voc.hop_length / voc.sample_rate
    print(f"real-time factor per backend (the first {secs:.2f} s of this mel, {voc.device}; RTF = compute / audio time):")
    for name, (ok, why) in agf.backends().items():
        if not ok:
            print(f"  {name:8s} unavailable: {why}")
            continue
        try:
            v = agf.Vocoder(voc.model, device=voc.device, backend=name)
        except agf.BackendError as e:
            print(f"  {name:8s} n/a: {e}")
            continue
        runs = [(name, v)]
        if name == "cpp" and voc.device == "cpu":
            # the cpp backend's reduced-precision options for this family, where their products run on SIMD kernels
            from .engine import fast_cpu_dtypes

            for dt in fast_cpu_dtypes(voc.family.name):
                short = {"float16": "fp16", "bfloat16": "bf16", "int8": "int8"}[dt]
                runs.append((f"cpp/{short}", agf.Vocoder(voc.model, device=voc.device, backend=name, dtype=dt)))
        for label, v in runs:
            v.generate(mel=mel[..., : min(frames, 2)], seed=args.seed)   # warm-up: weight packing, first-touch
            # the median of 3 timed calls where a call is quick (a single one varied up to 2x for
            # eager torch on the 2-core VM, README); a slow eager loop is timed once
            times = []
            while len(times) < 3 and (len(times) < 1 or sum(times) < 2.0):
                t0 = time.perf_counter()
                v.generate(mel=mel, seed=args.seed)
                times.append(time.perf_counter() - t0)
            dt = float(np.median(times))
            print(f"  {label:8s} RTF {dt / secs:7.3f}  ({secs / dt:6.2f}x real time; median of {len(times)})")


def cmd_bench(args):
    import torch

    from . import InputError, bench, presets

    configs = [c.strip() for c in args.config.split(",") if c.strip()]
    for c in configs:
        if c not in presets.PRESETS:
            raise InputError(f"unknown config {c!r} (known: {', '.join(presets.PRESETS)})")
    for name, v in (("--seconds", args.seconds), ("--batch", args.batch), ("--reps", args.reps),
                    ("--chunk-frames", args.chunk_frames)):
        if not v > 0:
            raise InputError(f"{name} must be > 0, got {v}")
    if args.sparsity:
        if not 0 < args.sparsity < 1:
            raise InputError(f"--sparsity must be in (0, 1), got {args.sparsity}")
        fams = {presets.PRESETS[c][0] for c in configs}
        if fams != {"wavernn"}:
            raise InputError("--sparsity prunes WaveRNN configs (R2, R2-mol, ...)")
    # the blocks the loop of the chosen dtype skips: int8 16 x 4 (a quad of inputs), else 16 x 1
    block = args.sparse_block or ("16x4" if args.dtype == "int8" else "16x1")
    prune = bench.Pruning(args.sparsity, args.prune_targets, block) if args.sparsity else None
    if args.device not in (None, "cpu", "cuda"):
        raise InputError(f"unknown device {args.device!r} (use cpu or cuda)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible to torch")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    providers = [p.strip() for p in args.backend.split(",") if p.strip()] if args.backend else \
        bench.default_providers(device)
    for p in providers:
        if p not in bench.PROVIDERS:
            print(f"error: unknown backend {p!r} (known: {', '.join(bench.PROVIDERS)})", file=sys.stderr)
            return 2
    name = bench.device_name(device)
    if args.streams:
        try:
            counts = sorted({int(v) for v in args.streams.split(",") if v.strip()})
        except ValueError:
            raise InputError(f"--streams takes a comma list of stream counts, got {args.streams!r}") from None
        if not counts or counts[0] < 1:
            raise InputError(f"--streams counts must be >= 1, got {args.streams!r}")
        if args.stream:
            raise InputError("--stream (one stream's latency) and --streams (many streams' throughput) are separate runs")
        print(f"# {name}; N streams through open_streams(), {args.seconds} s of mel each, one batched loop call "
              f"per block step (the eager torch loop is left out: hundreds of samples/s)")
        recs = []
        for c in configs:
            for p in providers:
                if p in ("torch", "compile"):
                    continue
                most = None
                for n in counts:
                    try:
                        r = bench.streams_case(c, p, device=device, dtype=args.dtype, streams=n, seconds=args.seconds,
                                               prune=prune)
                    except bench.Skip as e:
                        print(f"{c:4s} {p:8s} skipped: {e}")
                        break
                    recs.append(r)
                    if r["x_realtime"] >= 1.0:
                        most = n
                    print(f"{bench.config_label(r):4s} {p:8s} {args.dtype:9s} {n:5d} streams {r['samples_per_sec']:12,.0f} /s/stream "
                          f"{r['aggregate_samples_per_sec']:14,.0f} aggr x_rt {r['x_realtime']:6.2f}  "
                          f"in the loop {r['loop_share']:.0%}")
                else:
                    print(f"{c:4s} {p:8s} real-time streams here: "
                          + (f"{most} (of the counts tried: {args.streams})" if most else f"none of {args.streams}"))
    elif args.stream:
        print(f"# {name}; streaming {args.seconds} s of mel in chunks of {args.chunk_frames} frames")
        recs = []
        for c in configs:
            for p in providers:
                if p == "compile":
                    continue
                try:
                    r = bench.stream_case(c, p, device=device, dtype=args.dtype if p != "torch" else "float32",
                                          seconds=args.seconds, chunk_frames=args.chunk_frames,
                                          prune=prune)
                except bench.Skip as e:
                    print(f"{c:4s} {p:8s} skipped: {e}")
                    continue
                recs.append(r)
                print(f"{bench.config_label(r):4s} {p:8s} first audio after {r['first_chunk_ms']:8.1f} ms compute "
                      f"(+{r['algorithmic_latency_ms']:.0f} ms of mel lookahead: {r['frames_before_first_audio']} frames); "
                      f"steady state RTF {r['rtf']:.3f} ({r['x_realtime']:.2f}x real time)")
    else:
        print(f"# {name}; batch {args.batch}; {args.seconds} s of audio per call (WaveNet / WaveRNN eager and compiled: at most 0.05 s)")
        recs = bench.run(configs, providers, device=device, dtype=args.dtype, batch=args.batch, seconds=args.seconds,
                         reps=args.reps, prune=prune)
    if args.out:
        path = bench.write_results(recs, args.out, device)
        print(f"wrote {path}")
        try:
            png = bench.plot(recs, path[:-5] + ".png", f"{name} (batch {args.batch})")
            print(f"wrote {png}")
        except ImportError:
            print("note: matplotlib is not installed; no plot (pip install matplotlib)")
    return 0


def cmd_convert(args):
    import audiogen_fast as agf

    hp = None
    if args.hparams:
        with open(args.hparams) as f:
            hp = json.load(f)
    model = agf.load_model(args.src, hparams=hp)
    agf.save(model, args.dst)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.dst}: {model.config.family} model, {n:,} parameters")
    return 0


def cmd_dataset(args):
    from .dataset import DatasetError, build

    try:
        build(args.out, sample_rate=args.sample_rate, takes=args.takes, limit=args.limit)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_corpus(args):
    import audiogen_fast as agf

    from .train import Corpus

    cfg = agf.build(args.preset).config
    c = Corpus(args.data, cfg)
    c.save(args.out)
    print(f"wrote {args.out}: {len(c.items)} files, {c.seconds / 60:.1f} min of audio at {cfg.sample_rate} Hz")
    return 0


def cmd_train(args):
    import audiogen_fast as agf

    from .train import train

    if os.path.exists(args.out) and os.path.exists(args.out + ".state.pt"):
        source, model = args.out, agf.load_model(args.out)  # resume: the checkpoint's own config
        if args.init:
            print(f"resuming {args.out}: --init {args.init} is not used", file=sys.stderr)
    elif args.init:
        # fine-tuning: the weights and config of a trained model, a fresh optimizer and step count
        if args.preset:
            print("error: --init takes the config from its checkpoint; drop --preset", file=sys.stderr)
            return 2
        src = agf.default_model_path() if args.init == "default" else args.init
        if src is None:
            print("error: --init default: no default model bundled with this installation", file=sys.stderr)
            return 2
        source, model = f"--init {args.init}", agf.load_model(src)
        if args.overrides:
            # settings that keep the weights' shapes (e.g. preemphasis); a shape change is
            # refused rather than half-loaded
            from .presets import build_from_config

            base, model = model, build_from_config(model.config.replace(**json.loads(args.overrides)))
            try:
                model.load_state_dict(base.state_dict())
            except RuntimeError as e:
                why = " ".join(line.strip() for line in str(e).splitlines()[:2])   # torch's first mismatch
                print(f"error: --overrides change the shapes of {args.init}'s weights: {why}", file=sys.stderr)
                return 2
    else:
        overrides = json.loads(args.overrides) if args.overrides else {}
        name = args.preset or args.family
        source, model = f"preset {name}", agf.build(name, seed=args.seed, **overrides)
    if model.config.family != args.family:
        print(f"error: {source} is a {model.config.family} model, not {args.family}", file=sys.stderr)
        return 2
    try:
        train(model, args.data, args.out, steps=args.steps, batch=args.batch, seg_frames=args.segment_frames,
              lr=args.lr, lr_final=args.lr_final, save_every=args.save_every, seed=args.seed, threads=args.threads,
              progress=not args.quiet, device=args.device, amp=args.amp, dither=args.dither,
              quiet_prob=args.quiet_past, past_gain_db=args.past_gain, past_noise_std=args.past_noise,
              self_past_prob=args.self_past, stop_at=args.stop_at, objective=args.objective,
              margin_frames=args.margin_frames, mel_weight=args.mel_weight, sparsity=args.sparsity,
              prune_start=args.prune_start, prune_end=args.prune_end, prune_targets=args.prune_targets,
              prune_cols=int(args.sparse_block[3:]))
    except ValueError as e:   # options that do not fit the model or each other (checked before any step)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (loss log {args.out}.log.jsonl)")
    return 0


def cmd_backends(args):
    import audiogen_fast as agf

    for name, (ok, why) in agf.backends().items():
        print(f"{name:8s} {'available' if ok else 'unavailable: ' + why}")
        if name == "cpp" and ok:
            # which kernels the C++ loops run here: the reduced-precision products are exact
            # emulations (same bits, much slower) where the CPU lacks the instructions
            from . import _cpp
            from .engine import CPU_DTYPES

            print(f"         fp32 kernels: {_cpp.kernels_name()}; bf16 products: {_cpp.bf16_kernel()}; "
                  f"int8 products: {_cpp.int8_kernel()}")
            print("         dtypes on the CPU: " + "; ".join(f"{fam} float32, {', '.join(dts)}"
                                                          for fam, dts in CPU_DTYPES.items()))
    return 0


def cmd_presets(args):
    from .presets import PRESETS, build

    for name, (fam, kw) in PRESETS.items():
        n = sum(p.numel() for p in build(name).parameters())
        print(f"{name:14s} {fam:9s} {n:>10,} parameters")
    return 0


# models/wavernn/sparsity.TARGETS (not imported here: the parser is built without torch)
PRUNE_TARGETS = ["gru", "gru+fc", "gru+fc+out"]
PRUNE_HELP = "with --sparsity: the GRUs' matrices, those and fc1 / fc2, or those and the output layer fc3 too"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audiogen-fast", description="Fast neural vocoder inference.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("info", help="describe a checkpoint")
    s.add_argument("ckpt")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("generate", help="generate audio from a mel (.npy) or, unconditional, a length")
    s.add_argument("ckpt")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--mel", help="mel spectrogram .npy, [n_mels, frames]")
    g.add_argument("--seconds", type=float, help="length, for unconditional models")
    s.add_argument("-o", "--output", required=True)
    _add_run_args(s)
    s.set_defaults(fn=cmd_generate)

    s = sub.add_parser("vocode", help="wav -> mel -> audio with the model (copy synthesis)")
    s.add_argument("paths", nargs="+", metavar="[CKPT] IN", help="checkpoint (default: the bundled model) and input wav")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--all-backends", action="store_true", help="also time every available backend on the same mel")
    s.add_argument("--stream", action="store_true", help="chunk by chunk, memory independent of the length")
    s.add_argument("--chunk-seconds", type=float, default=1.0, help="with --stream: audio read per chunk")
    _add_run_args(s)
    s.set_defaults(fn=cmd_vocode)

    s = sub.add_parser("bench", help="time configs x backends against eager PyTorch (same run)")
    s.add_argument("--config", default="W2,R2,D1", help="comma list of presets (W1,W2,W4,R2,D1,D2, tiny-*)")
    s.add_argument("--backend", default=None, help="comma list: torch,compile,cpp,triton,cuda (default: "
                   "torch,cpp on the CPU, torch,compile,triton,cuda on a GPU)")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "int8"],
                   help="for the fast backends (eager and compile stay float32)")
    s.add_argument("--seconds", type=float, default=0.5, help="audio per call")
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--reps", type=int, default=3)
    s.add_argument("--out", default=None, help="folder for <device>-<date>-<commit>.json and .png")
    s.add_argument("--stream", action="store_true", help="measure streaming: first-chunk latency, steady-state RTF")
    s.add_argument("--streams", help="comma list of stream counts (e.g. 1,2,4,8): N streams at once through "
                                     "open_streams(); per-stream rate, x real time, how many run in real time")
    s.add_argument("--chunk-frames", type=int, default=2, help="with --stream: mel frames per chunk")
    s.add_argument("--sparsity", type=float, default=0.0, help="WaveRNN configs: time the model block-pruned to "
                   "this share of zero blocks (Sparse WaveRNN's structure, which the cpp loop skips), e.g. 0.9")
    s.add_argument("--prune-targets", default="gru", choices=PRUNE_TARGETS, help=PRUNE_HELP)
    s.add_argument("--sparse-block", default=None, choices=["16x1", "16x4"], help="with --sparsity: the blocks "
                   "(outputs x inputs) pruned; default 16x4 with --dtype int8 (the int8 loop skips 16 x 4 blocks), "
                   "else 16x1")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("convert", help="import a public checkpoint (lmnt DiffWave, ...) into the native format")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--hparams", default=None, help="hyper-parameters (JSON) when the source does not carry them")
    s.set_defaults(fn=cmd_convert)

    s = sub.add_parser("train", help="train a model on a folder of wavs (resumable)")
    s.add_argument("family", choices=["wavenet", "wavernn", "diffwave"])
    s.add_argument("--data", required=True, help="folder of .wav files (searched recursively), or a corpus "
                   "file from `audiogen-fast corpus` (no soundfile needed)")
    s.add_argument("--out", required=True, help="checkpoint to write (and resume from)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA, or the CPU: faster there only with AVX512-BF16)")
    s.add_argument("--dither", type=float, default=0.0, help="std of a white noise floor added to the "
                   "training waveforms (inputs and targets; mels stay clean), e.g. 1e-3 for data with digital silence")
    s.add_argument("--quiet-past", type=float, default=0.0, help="WaveNet: probability per segment of "
                   "scaling a random span of the teacher-forced input down (targets kept), so the model learns "
                   "to follow the mel's level from a quiet past")
    s.add_argument("--past-gain", type=float, default=0.0, metavar="DB", help="WaveNet: in half the segments, "
                   "scale a random span of the teacher-forced input by a gain uniform in +-DB dB (targets kept), so the "
                   "model learns to pull a wandering level back to the mel's")
    s.add_argument("--past-noise", type=float, default=0.0, metavar="LEVELS", help="WaveNet: noise on the "
                   "teacher-forced input in the mu-law domain, std up to LEVELS of 256 (per segment; targets kept), "
                   "so the model learns to read a past that strays like its own samples")
    s.add_argument("--self-past", type=float, default=0.0, metavar="P", help="mu-law WaveNet: share of segments "
                   "whose teacher-forced input is the model's own one-step samples (one more forward pass), so it "
                   "learns to read a past with its own kind of error")
    s.add_argument("--objective", default=None, choices=["noise", "sampler"], help="DiffWave: 'noise' (lmnt's "
                   "noise-prediction loss, the default) or 'sampler' (the generation loop unrolled from noise, a "
                   "multi-resolution STFT loss against the recording: fine-tuning with --init, ~S times slower a step)")
    s.add_argument("--margin-frames", type=int, default=0, help="with --objective sampler: frames at each end of "
                   "the segment left out of the loss")
    s.add_argument("--mel-weight", type=float, default=0.0, help="with --objective sampler: weight of a log-mel L1 "
                   "term (the model's own mel analysis) added to the STFT loss")
    s.add_argument("--sparsity", type=float, default=0.0, help="WaveRNN: prune the GRU matrices to this share of "
                   "zero blocks (Sparse WaveRNN's structure; the C++ loop skips them), e.g. 0.9")
    s.add_argument("--sparse-block", default="16x1", choices=["16x1", "16x4"], help="with --sparsity: the blocks "
                   "(outputs x inputs) pruned: 16x1 (skipped by the float32 / float16 loop) or 16x4 (skipped by "
                   "the int8 loop too)")
    s.add_argument("--prune-start", type=int, default=None, help="with --sparsity: step where pruning starts "
                   "(default 20%% of --steps)")
    s.add_argument("--prune-end", type=int, default=None, help="with --sparsity: step where the sparsity is reached "
                   "(default 60%% of --steps)")
    s.add_argument("--prune-targets", default="gru", choices=PRUNE_TARGETS, help=PRUNE_HELP)
    s.add_argument("--preset", default=None, help="start from a preset config (default: the family's defaults)")
    s.add_argument("--init", default=None, help="start from a trained checkpoint's weights and config ('default': "
                   "the bundled model) with a fresh optimizer and step count: fine-tuning; --overrides may change "
                   "settings that keep the weights' shapes, e.g. '{\"preemphasis\": 0.85}'")
    s.add_argument("--overrides", default=None, help='JSON of config overrides, e.g. \'{"layers": 12}\'')
    s.add_argument("--steps", type=int, default=10000)
    s.add_argument("--stop-at", type=int, default=None, help="stop at this step (the lr schedule still spans "
                   "--steps): for training in stages, each resuming the last")
    s.add_argument("--batch", type=int, default=8)
    s.add_argument("--segment-frames", type=int, default=16)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--lr-final", type=float, default=1e-4)
    s.add_argument("--save-every", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("corpus", help="a folder of wavs with their mels for a preset's audio settings, as one "
                       ".pt file that `train --data` reads (for machines without soundfile)")
    s.add_argument("data")
    s.add_argument("out")
    s.add_argument("--preset", required=True)
    s.set_defaults(fn=cmd_corpus)

    s = sub.add_parser("dataset", help="build the reproducible espeak-ng speech dataset (train / test)")
    s.add_argument("out")
    s.add_argument("--sample-rate", type=int, default=16000)
    s.add_argument("--takes", type=int, default=3, help="readings per training sentence")
    s.add_argument("--limit", type=int, default=None, help="use only the first N sentences")
    s.set_defaults(fn=cmd_dataset)

    s = sub.add_parser("backends", help="list backends and their availability")
    s.set_defaults(fn=cmd_backends)
    s = sub.add_parser("presets", help="list the standard configurations")
    s.set_defaults(fn=cmd_presets)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from . import BackendError, CheckpointError, ConfigError, InputError
    from .audio import AudioError

    try:
        return args.fn(args)
    except (BackendError, CheckpointError, ConfigError, InputError, AudioError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
