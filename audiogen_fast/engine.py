"""Vocoder: the object users hold. It validates input, owns the noise, picks the backend and
hands everything to the family's runtime.

    voc = audiogen_fast.load("model.safetensors")
    audio = voc.generate(mel=mel, seed=0)            # mel [n_mels, frames] -> [frames * hop]
    audio = voc.generate(mel=mels, seed=[0, 1])      # [B, n_mels, frames]  -> [B, frames * hop]
    audio = voc.generate(mel=mel, noise=arr)          # explicit noise (DESIGN.md noise contract)
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from .emphasis import Deemphasis, deemphasize
from .backends import resolve as resolve_backend
from .models import family

# the GPU backends run the model converted to the torch dtype; "int8" is a CPU option only (below)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int8": None}


class InputError(ValueError):
    """Bad input to generate() / mel(): the message names the problem."""


def _fmt_bytes(b: float) -> str:
    return f"{b / 2 ** 30:.2f} GiB" if b >= 2 ** 30 else f"{b / 2 ** 20:.1f} MiB"


def memory_budget(device: str) -> int:
    """Bytes one generate() call may use: AGF_MAX_MEMORY_GB if set, else 80% of the memory
    available now (free GPU memory on CUDA devices)."""
    import os

    env = os.environ.get("AGF_MAX_MEMORY_GB")
    if env:
        try:
            v = float(env)
        except ValueError:
            v = -1.0
        if v <= 0:
            raise InputError(f"AGF_MAX_MEMORY_GB must be a positive number, got {env!r}")
        return int(v * 2 ** 30)
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(0.8 * free)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62
    return int(0.8 * avail)


def _as_device(device) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    d = str(device)
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"device {d!r} requested but no CUDA GPU is visible to torch")
        return d
    raise InputError(f"unknown device {d!r} (use 'cpu' or 'cuda')")


# reduced-precision options of the cpp backend per family (besides float32)
CPU_DTYPES = {"wavenet": ("float16", "bfloat16", "int8"), "wavernn": ("float16", "bfloat16", "int8"), "diffwave": ("bfloat16",)}
CPU_DTYPE_MEANING = {"float16": "fp16-stored weights", "bfloat16": "bf16 products", "int8": "int8 products"}


def fast_cpu_dtypes(family: str) -> list:
    """The family's reduced-precision cpp dtypes whose products run on SIMD kernels on this CPU
    (AVX-512 or AVX2; int8 also aarch64's dot products; needs the C++ extension). The plain C++
    emulations of the bf16 / int8 products (CPUs with none) give the same bits, slowly: worth
    running, not worth timing."""
    from . import _cpp

    fast = {"float16": True, "bfloat16": _cpp.bf16_kernel() != "emulated", "int8": _cpp.int8_kernel() != "emulated"}
    return [dt for dt in CPU_DTYPES[family] if fast[dt]]


_warned_emulated: set = set()


def _warn_if_emulated(dtype: str):
    """A bf16 / int8 product that runs as its plain C++ emulation here (no AVX-512 / AVX2 kernel,
    no aarch64 one for int8, or AGF_CPU_PRODUCTS=emulated) gives the right bits many times slower
    than float32: say so once per process and dtype, rather than let "int8 for speed" backfire."""
    from . import _cpp

    if dtype in _warned_emulated or dtype not in ("bfloat16", "int8"):
        return
    kernel = _cpp.bf16_kernel() if dtype == "bfloat16" else _cpp.int8_kernel()
    if kernel == "emulated":
        _warned_emulated.add(dtype)
        warnings.warn(f"dtype {dtype}: this CPU (or build, or AGF_CPU_PRODUCTS) has no SIMD kernel for the "
                      f"{CPU_DTYPE_MEANING[dtype]}; they run as an exact plain C++ emulation, much slower than "
                      f"float32 (audiogen-fast backends lists the kernels)", RuntimeWarning, stacklevel=3)


def _warn_if_sparse_dense(model, dtype: str):
    """A block-sparse WaveRNN (models/wavernn/sparsity.py) asked for products that run its zero blocks
    anyway (the same result, none of the skipping): bf16 always; int8 unless the model's zero blocks
    are 16 x 4 (a quad of inputs: what the int8 loop skips) and this CPU has the sparse int8 kernel.
    Say so, and what would skip them."""
    from . import _cpp
    from .models.wavernn.sparsity import block_density

    if dtype not in ("bfloat16", "int8") or model.config.family != "wavernn":
        return
    d1, d4 = block_density(model), block_density(model, cols=4)
    # 0.6: the C++ loop's own threshold (slices >= 40% zero blocks run sparse, wavernn.cpp)
    if dtype == "int8" and d4 <= 0.6:
        if _cpp.int8_sparse_kernel() != "emulated":
            return
        why = "this CPU (or build, or AGF_CPU_PRODUCTS) has no sparse int8 kernel (AVX2)"
    elif d1 <= 0.6:
        why = ("the cpp loop skips zero blocks only with float32 / float16 weights, or int8 ones in 16 x 4 blocks"
               if dtype == "bfloat16" else "the int8 loop skips 16 x 4 blocks (4 consecutive inputs), and few of "
               "this model's are all zero: prune with cols=4 (--sparse-block 16x4)")
    else:
        return
    warnings.warn(f"dtype {dtype}: this WaveRNN is block-sparse ({1 - d1:.0%} of its GRUs' 16 x 1 blocks are zero, "
                  f"{1 - d4:.0%} of its 16 x 4 ones), but {dtype} runs every block: {why}", RuntimeWarning,
                  stacklevel=3)


def _tensor_to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as numpy; bfloat16 (which numpy lacks) as float32, exactly."""
    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


class Vocoder:
    """A model ready to generate with one backend, device and dtype (what load() returns).

    Vocoder(model, ...) takes an eager model (agf.build, or one being trained) over: it puts it in
    eval mode (batch norms on their running statistics: the function the backends compute), and on a
    GPU moves and casts it in place (nn.Module.to). Keep a copy to go on training it. The fast
    backends' weight copies follow the model's weights (models/base.cached_on_model), so a weight
    changed in place shows in the next generate() or stream()."""

    def __init__(self, model: torch.nn.Module, device=None, backend: str = "auto", dtype: str = "float32"):
        self.family = family(model.config.family)
        self.device = _as_device(device)
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r} (use one of {', '.join(DTYPES)})")
        self.dtype = dtype
        self.backend = resolve_backend(backend, self.family, self.device.split(":")[0], dtype)
        if self.device == "cpu" and dtype != "float32":
            # CPU options of the cpp backend: float16 = fp16-stored weights, bfloat16 / int8 = products
            ok = CPU_DTYPES[self.family.name]
            if self.backend != "cpp" or dtype not in ok:
                means = ", ".join(f"{d}: {CPU_DTYPE_MEANING[d]}" for d in ok)
                raise InputError(f"dtype {dtype} on the CPU: the {self.family.name} cpp backend takes float32 or "
                                 f"{' or '.join(ok)} ({means}); got backend {self.backend!r} with {dtype}")
            _warn_if_emulated(dtype)
            _warn_if_sparse_dense(model, dtype)
        elif dtype == "int8":
            raise InputError("dtype int8 runs on the CPU only (the WaveNet and WaveRNN cpp backend); "
                             "on a GPU use float32, float16 or bfloat16")
        self.model = model.eval()
        # The GPU backends run the model converted to the dtype; on the CPU the model stays fp32
        # (the cpp backend stores its own fp16 copy of the weights when asked).
        self._run_model = model.to(self.device, DTYPES[dtype]) if self.device != "cpu" else model
        self.last_stats: dict = {}

    # ---- properties ------------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def info(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {"family": self.family.name, "backend": self.backend, "device": self.device, "dtype": self.dtype,
                "parameters": n_params, "sample_rate": self.sample_rate, "hop_length": self.hop_length,
                "n_mels": self.n_mels, "conditional": self.conditional, "config": self.config.to_dict()}

    def __repr__(self):
        return (f"Vocoder({self.family.name}, backend={self.backend!r}, device={self.device!r}, "
                f"dtype={self.dtype!r}, sample_rate={self.sample_rate})")

    # ---- features --------------------------------------------------------------------------
    def mel(self, wav, sample_rate: int | None = None) -> np.ndarray:
        """wav [N] (or [B, N]) at ``sample_rate`` (default: the model's) -> mel with the model's
        own settings, [n_mels, 1 + N // hop]."""
        from .audio import mel_spectrogram, resample

        wav = np.asarray(wav, dtype=np.float32)
        if sample_rate is not None and sample_rate != self.sample_rate:
            if wav.ndim != 1:
                raise InputError("resampling takes a 1-D wav")
            wav = resample(wav, sample_rate, self.sample_rate)
        return mel_spectrogram(wav, self.config)

    # ---- generation ------------------------------------------------------------------------
    def _check_mel(self, mel, allow_empty: bool = False):
        """A validated float32 copy of mel. allow_empty: zero frames are fine (a streaming chunk
        that brought no frames: nothing to vocode yet)."""
        if isinstance(mel, torch.Tensor):
            mel = _tensor_to_numpy(mel)
        try:
            mel = np.asarray(mel)
        except Exception:
            raise InputError(f"mel must be an array, got {type(mel).__name__}") from None
        if mel.dtype.kind not in "fiu":
            raise InputError(f"mel must be a float array, got dtype {mel.dtype}")
        if mel.ndim not in (2, 3):
            raise InputError(f"mel must be [n_mels, frames] or [batch, n_mels, frames], got shape {mel.shape}")
        if mel.shape[-2] != self.n_mels:
            raise InputError(f"mel has {mel.shape[-2]} mel channels but this model takes n_mels={self.n_mels} "
                             f"(shape {mel.shape}; expected [n_mels, frames])")
        if mel.shape[-1] == 0 and not allow_empty:
            raise InputError("mel has zero frames")
        if mel.ndim == 3 and mel.shape[0] == 0:
            raise InputError("mel batch is empty")
        if not np.all(np.isfinite(mel)):
            raise InputError("mel contains NaN or inf")
        return mel.astype(np.float32)

    def _opts(self, n, schedule, fold):
        """Family-specific generation options, validated."""
        name = self.family.name
        opts = {}
        if schedule is not None and name != "diffwave":
            raise InputError(f"schedule= is for diffusion models, not {name}")
        if fold is not None and fold is not False and name != "wavernn":
            raise InputError(f"fold= is for WaveRNN, not {name}")
        if name == "diffwave":
            from .models.diffwave.reference import Schedule
            try:
                opts["schedule"] = Schedule.from_config(self.config, schedule)
            except ValueError as e:
                raise InputError(str(e)) from None
        if name == "wavernn" and fold:
            if fold is True:
                spec = (self.config.fold_target, self.config.fold_overlap)
            else:
                try:
                    spec = tuple(int(v) for v in fold)
                except Exception:
                    raise InputError("fold must be True or (target, overlap)") from None
                if len(spec) != 2 or spec[0] < 1 or spec[1] < 2:
                    raise InputError(f"fold must be (target >= 1, overlap >= 2), got {fold!r}")
            opts["fold"] = spec
        return opts

    def _check_memory(self, B: int, n: int, opts: dict) -> None:
        est = self.family.runtime.memory_estimate(self.config, B, n, self.backend, *opts.values())
        budget = memory_budget(self.device)
        if est > budget:
            raise InputError(
                f"generating {n:,} samples x {B} stream(s) with the {self.family.name} {self.backend} backend needs "
                f"about {_fmt_bytes(est)}, more than the memory budget of {_fmt_bytes(budget)} "
                f"(80% of available memory, or AGF_MAX_MEMORY_GB): generate shorter pieces")

    # ---- streaming ---------------------------------------------------------------------------
    def stream(self, mel_chunks, seed=0, speaker=None, schedule=None, progress: bool = False):
        """Vocode mel frames as they arrive: mel_chunks yields [n_mels, frames] (or [B, n_mels,
        frames] with a list of seeds) arrays; yields float32 audio chunks as soon as they are
        ready. Autoregressive models keep their state across chunks, so the concatenated output
        equals generate() on the whole mel with the same seed. DiffWave works on overlapping
        windows (see models/diffwave/runtime.py): its boundaries differ from one-shot generation
        by a small, measured amount. Audio lags the mel by a few frames (the upsampler's context).
        """
        if not self.conditional:
            raise InputError("stream() vocodes mel chunks: this model is unconditional (use generate(num_samples=))")
        rt = self.family.runtime
        if not hasattr(rt, "open_stream"):
            raise InputError(f"the {self.family.name} family has no streaming runtime")
        it = iter(mel_chunks)
        sess = None
        batched = False
        for chunk in it:
            m = self._check_mel(chunk, allow_empty=True)
            b3 = m.ndim == 3
            if sess is None:
                batched = b3
                B = m.shape[0] if b3 else 1
                seeds = [self._check_seed(s) for s in seed] if isinstance(seed, (list, tuple, np.ndarray)) else [self._check_seed(seed)] * B
                if len(seeds) != B:
                    raise InputError(f"got {len(seeds)} seeds for a batch of {B}")
                spk = None
                if getattr(self.config, "gin_channels", 0):
                    if speaker is None:
                        raise InputError(f"this model has {self.config.n_speakers} speakers: pass speaker=")
                    spk = torch.as_tensor(np.broadcast_to(np.asarray(speaker, dtype=np.int64), (B,)).copy())
                    if spk.min() < 0 or spk.max() >= self.config.n_speakers:
                        raise InputError(f"speaker ids must be in [0, {self.config.n_speakers}), got {speaker!r}")
                elif speaker is not None:
                    raise InputError("this model has no speaker (global) conditioning")
                extra = {"dtype": self.dtype} if self.backend == "cpp" else {}
                if self.family.name == "diffwave":
                    extra["schedule"] = self._opts(0, schedule, None)["schedule"]
                elif schedule is not None:
                    raise InputError(f"schedule= is for diffusion models, not {self.family.name}")
                sess = rt.open_stream(self._run_model, self.backend, seeds, speaker=spk, **extra)
                deemph = Deemphasis(self.config.preemphasis, B) if self.config.preemphasis else None
            elif b3 != batched or (b3 and m.shape[0] != B):
                raise InputError(f"every chunk must have the first chunk's layout; got shape {m.shape}")
            if m.shape[-1] == 0:  # no new frames (a network read that brought none): nothing to do
                continue
            if not b3:
                m = m[None]
            out = sess.push(torch.from_numpy(m))
            if out.shape[-1]:
                out = deemph(out) if deemph else out
                yield out if batched else out[0]
        if sess is None:
            return
        out = sess.finish()
        if out.shape[-1]:
            out = deemph(out) if deemph else out
            yield out if batched else out[0]

    def open_streams(self):
        """A MultiStream: many independent streams advanced with one batched step (see streams.py)."""
        from .streams import MultiStream

        return MultiStream(self)

    @staticmethod
    def _check_seed(s) -> int:
        from .noise import check_seed

        try:
            return check_seed(s)
        except TypeError:
            raise InputError(f"seed must be an int or a list of ints, got {s!r}") from None
        except ValueError as e:
            raise InputError(str(e)) from None

    def _check_noise(self, noise, per_stream, B):
        nz = _tensor_to_numpy(noise) if isinstance(noise, torch.Tensor) else np.asarray(noise)
        if nz.dtype.kind != "f":
            raise InputError(f"noise must be a float array, got dtype {nz.dtype}")
        single = tuple(nz.shape) == per_stream and (B is None or B == 1)
        multi = nz.ndim == len(per_stream) + 1 and tuple(nz.shape[1:]) == per_stream and (B is None or nz.shape[0] == B)
        if not (single or multi) or (multi and nz.shape[0] == 0):
            want = ((B,) if B is not None else ("B",)) + per_stream
            raise InputError(f"noise has shape {tuple(nz.shape)}; this call needs {want}"
                             + (f" (or {per_stream} for one stream)" if B in (None, 1) else ""))
        if not np.all(np.isfinite(nz)):
            raise InputError("noise contains NaN or inf")
        if getattr(self.config, "noise_kind", "gaussian") in ("softmax", "mol") and (nz.min() < 0 or nz.max() >= 1):
            raise InputError("sampling noise must be uniforms in [0, 1)")
        return nz

    def noise_shape(self, n_samples: int, schedule=None, fold=None) -> tuple:
        """Shape of the per-stream noise generate() consumes for n_samples of audio."""
        opts = self._opts(n_samples, schedule, fold)
        return self.family.runtime.noise_shape(self.config, n_samples, *opts.values())

    def generate(self, mel=None, *, num_samples: int | None = None, seed=0, noise=None, schedule=None,
                 speaker=None, fold=None, progress: bool = False) -> np.ndarray:
        """Generate audio as float32 in [-1, 1].

        mel [n_mels, frames] -> [frames * hop]; [B, n_mels, frames] -> [B, frames * hop].
        Unconditional models take num_samples instead (and a list of seeds for a batch).
        seed: int, or a list with one seed per batch row (row b equals a run alone with seed b).
        noise: explicit noise [B, *noise_shape] (or without B for one stream) instead of seed.
        schedule: diffusion only: "fast", "full" or a list of betas. fold: WaveRNN only: True or
        (target, overlap). speaker: int or [B] speaker ids for models with global conditioning.
        """
        cfg = self.config
        batched = False
        mel_t = None
        if cfg.conditional:
            if mel is None:
                raise InputError("this model is mel-conditioned: pass mel=[n_mels, frames]")
            if num_samples is not None:
                raise InputError("pass mel or num_samples, not both (a mel fixes the length: frames * hop)")
            m = self._check_mel(mel)
            batched = m.ndim == 3
            if not batched:
                m = m[None]
            B = m.shape[0]
            n = m.shape[-1] * self.hop_length
            mel_t = torch.from_numpy(m)
        else:
            if mel is not None:
                raise InputError("this model is unconditional: pass num_samples=, not mel=")
            if num_samples is None or isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
                raise InputError(f"num_samples must be a positive integer, got {num_samples!r}")
            n = int(num_samples)
            B = None
        opts = self._opts(n, schedule, fold)
        rt = self.family.runtime
        per_stream = tuple(rt.noise_shape(cfg, n, *opts.values()))

        # seeds / noise
        if noise is not None:
            if seed not in (0, None):
                raise InputError("pass seed or noise, not both")
            nz = self._check_noise(noise, per_stream, B)
            if B is None:
                batched = nz.ndim == len(per_stream) + 1
            nz = nz if nz.ndim == len(per_stream) + 1 else nz[None]
            B = nz.shape[0]
            self._check_memory(B, n, opts)
        else:
            if isinstance(seed, (list, tuple, np.ndarray)):
                seeds = [self._check_seed(s) for s in seed]
                if B is None:
                    B, batched = len(seeds), True
                if len(seeds) != B:
                    raise InputError(f"got {len(seeds)} seeds for a batch of {B}")
            else:
                B = 1 if B is None else B
                seeds = [self._check_seed(seed)] * B   # one int seed: the same noise for every row
            self._check_memory(B, n, opts)
            nz = np.stack([rt.draw_noise(cfg, s, n, *opts.values()) for s in seeds])
        noise_t = torch.from_numpy(np.ascontiguousarray(nz, dtype=np.float32))
        if self.family.name == "diffwave":
            noise_t = noise_t.transpose(0, 1).contiguous()  # [S, B, T]

        spk = None
        if getattr(cfg, "gin_channels", 0):
            if speaker is None:
                raise InputError(f"this model has {cfg.n_speakers} speakers: pass speaker=")
            spk = torch.as_tensor(np.broadcast_to(np.asarray(speaker, dtype=np.int64), (B,)).copy())
            if spk.min() < 0 or spk.max() >= cfg.n_speakers:
                raise InputError(f"speaker ids must be in [0, {cfg.n_speakers}), got {speaker!r}")
        elif speaker is not None:
            raise InputError("this model has no speaker (global) conditioning")

        kwargs = dict(mel=mel_t, noise=noise_t, progress=progress)
        if self.backend == "cpp":
            kwargs["dtype"] = self.dtype
        if spk is not None:
            kwargs["speaker"] = spk
        if "schedule" in opts:
            kwargs["schedule"] = opts["schedule"]
        if "fold" in opts:
            kwargs["fold_spec"] = opts["fold"]
        t0 = time.perf_counter()
        audio = rt.generate(self._run_model, self.backend, n, **kwargs)
        if cfg.preemphasis:   # the network sampled the pre-emphasised signal (emphasis.py)
            audio = deemphasize(audio, cfg.preemphasis)
        dt = time.perf_counter() - t0
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.last_stats = {"seconds": dt, "samples": n, "batch": B,
                           "rtf": dt / (n / self.sample_rate), "samples_per_sec": n / dt if dt > 0 else float("inf")}
        return audio if batched else audio[0]
