"""Checked Python wrappers over the C++ extension's raw-pointer entry points.

Each wrapper validates dtype, shape and contiguity, makes the arrays it passes contiguous,
keeps them alive for the call and passes data pointers and sizes.
"""
from __future__ import annotations

import numpy as np


def _ext():
    from . import _C_cpu

    return _C_cpu


def _f32(a, name, ndim=None):
    a = np.ascontiguousarray(np.asarray(a), dtype=np.float32)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def cpu_features() -> dict:
    return dict(_ext().cpu_features())


def kernels_name() -> str:
    """The fp32 kernel set the C++ loops use here: "avx2" (AVX2 + FMA) or "portable"
    (AGF_CPU_KERNELS=portable forces the latter)."""
    return _ext().kernels_name()


def gate(a, b, kind: str = "st", impl: str = "auto") -> np.ndarray:
    """The C++ gate kernel alone, for tests: sigmoid(a) * tanh(b) ("st", DiffWave) or
    tanh(a) * sigmoid(b) ("ts", WaveNet), elementwise over 1-D fp32 arrays."""
    a, b = _f32(a, "a", 1), _f32(b, "b", 1)
    if a.shape != b.shape:
        raise ValueError(f"gate: a is {a.shape}, b is {b.shape}")
    z = np.empty_like(a)
    _ext().gate(a.ctypes.data, b.ctypes.data, z.ctypes.data, a.size, kind, impl)
    return z


def fp32_matmul(x, w, kind: str, bias=None, y=None, impl: str = "auto") -> np.ndarray:
    """One fp32 product of the C++ kernel sets alone (kernels.h), for tests: w [K, N] packed as the
    loops pack it, then kind "packed" / "panels" (y + x @ w, y zeros if None), "packed_set"
    (bias + x @ w) or "panels_h" (y + x @ w with w stored as IEEE half); impl "auto" (the loops'
    choice), "avx2" or "portable"."""
    args, out, _keep = _matmul_args("fp32_matmul", x, w, bias, y)
    xp, rows, K, wp, N, bp, _, yp = args
    _ext().fp32_gemm(xp, rows, K, wp, N, bp, yp, kind, impl)
    return out


def bf16_kernel() -> str:
    """The bf16 product the C++ loops use here: "avx512bf16" (vdpbf16ps), "avx2" (AVX2 + FMA) or
    "emulated" (plain C++, much slower); all three give the same bits. AGF_CPU_KERNELS=avx2 or
    portable, or AGF_CPU_PRODUCTS=avx2 or emulated, caps the choice (csrc/cpu/cpu_features.h)."""
    return _ext().bf16_kernel()


def _matmul_args(name, x, w, bias, y):
    x, w = _f32(x, "x", 2), _f32(w, "w", 2)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{name}: x is {x.shape}, w is {w.shape}")
    rows, K = x.shape
    N = w.shape[1]
    b = None if bias is None else _f32(bias, "bias", 1)
    if b is not None and b.shape != (N,):
        raise ValueError(f"{name}: bias must be [{N}]")
    out = np.zeros((rows, N), np.float32) if y is None else _f32(y, "y", 2).copy()
    if out.shape != (rows, N):
        raise ValueError(f"{name}: y must be [{rows}, {N}]")
    return (x.ctypes.data, rows, K, w.ctypes.data, N, 0 if b is None else b.ctypes.data, y is None,
            out.ctypes.data), out, (x, w, b)


def bf16_matmul(x, w, bias=None, y=None, impl: str = "auto") -> np.ndarray:
    """The C++ bf16 product alone (csrc/cpu/bf16.h), for tests: x [rows, K] @ w [K, N] with both
    rounded to bf16, fp32 accumulation; + bias (y None) or y + x @ w."""
    args, out, _keep = _matmul_args("bf16_matmul", x, w, bias, y)
    _ext().bf16_gemm(*args, impl)
    return out


def int8_kernel() -> str:
    """The int8 product the C++ loops use here: "avx512vnni" (vpdpbusd), "avx2" (vpmaddwd) or
    "emulated" (plain C++, much slower); the same bits, chosen as bf16_kernel() is."""
    return _ext().int8_kernel()


def int8_sparse_kernel() -> str:
    """The block-sparse int8 product (16 x 4 blocks) the WaveRNN loop uses here: "avx2", or
    "emulated", where the loop keeps int8 weights dense (the same bits, no blocks skipped)."""
    return _ext().int8_sparse_kernel()


def int8_matmul(x, w, bias=None, y=None, impl: str = "auto", sparse: bool = False) -> np.ndarray:
    """The C++ int8 product alone (csrc/cpu/int8.h), for tests: w quantised to int8 per column,
    each row of x to uint8 (affine), integer sums, fp32 scaling; + bias (y None) or y + x @ w.
    sparse: w held as its nonzero 16-column x 4-input blocks (impl "avx2", "emulated" or "auto")."""
    args, out, _keep = _matmul_args("int8_matmul", x, w, bias, y)
    _ext().int8_gemm(*args, impl, sparse)
    return out


def int8_quantize(x, impl: str = "emulated"):
    """The C++ activation quantiser alone: x [rows, K] -> (u uint8 [rows, K], s fp32 [rows], zp int32 [rows])."""
    x = _f32(x, "x", 2)
    rows, K = x.shape
    u = np.zeros((rows, K), np.uint8)
    s = np.zeros(rows, np.float32)
    zp = np.zeros(rows, np.int32)
    _ext().int8_quantize(x.ctypes.data, rows, K, u.ctypes.data, s.ctypes.data, zp.ctypes.data, impl)
    return u, s, zp


def mulaw_encode(x, classes: int = 256) -> np.ndarray:
    x = _f32(x, "x")
    out = np.empty(x.shape, dtype=np.int64)
    _ext().mulaw_encode(x.ctypes.data, out.ctypes.data, x.size, int(classes) - 1)
    return out


def mulaw_decode(k, classes: int = 256) -> np.ndarray:
    k = np.ascontiguousarray(np.asarray(k), dtype=np.int64)
    out = np.empty(k.shape, dtype=np.float32)
    _ext().mulaw_decode(k.ctypes.data, out.ctypes.data, k.size, int(classes) - 1)
    return out


def sample_softmax(logits, u, fast: bool = False) -> np.ndarray:
    """fast: the fp32 path the C++ loops use (sampling.h sample_softmax_fast), same classes."""
    logits = _f32(logits, "logits", 2)
    u = _f32(u, "u", 1)
    if u.shape[0] != logits.shape[0]:
        raise ValueError(f"u has {u.shape[0]} rows, logits {logits.shape[0]}")
    out = np.empty(u.shape[0], dtype=np.int64)
    _ext().sample_softmax(logits.ctypes.data, u.ctypes.data, out.ctypes.data, logits.shape[0], logits.shape[1],
                          bool(fast))
    return out


def max_of(x, init: float) -> float:
    """sampling.h's max_of: max(init, x[0], ...) as a chain of std::max (NaNs in x skipped)."""
    x = _f32(x, "x", 1)
    return _ext().max_of(x.ctypes.data, x.shape[0], float(init))


def sample_mol(params, u, log_scale_min: float) -> np.ndarray:
    params = _f32(params, "params", 2)
    u = _f32(u, "u", 2)
    if params.shape[1] % 3 or u.shape != (params.shape[0], 2):
        raise ValueError(f"need params [N, 3M] and u [N, 2], got {params.shape} and {u.shape}")
    out = np.empty(params.shape[0], dtype=np.float32)
    _ext().sample_mol(params.ctypes.data, u.ctypes.data, out.ctypes.data, params.shape[0], params.shape[1] // 3,
                      float(log_scale_min))
    return out


def sample_gaussian(params, z, log_scale_min: float) -> np.ndarray:
    params = _f32(params, "params", 2)
    z = _f32(z, "z", 1)
    if params.shape != (z.shape[0], 2):
        raise ValueError(f"need params [N, 2] and z [N], got {params.shape} and {z.shape}")
    out = np.empty(z.shape[0], dtype=np.float32)
    _ext().sample_gaussian(params.ctypes.data, z.ctypes.data, out.ctypes.data, z.shape[0], float(log_scale_min))
    return out


# ---- threads ------------------------------------------------------------------------------

_NUM_THREADS = None


def set_num_threads(n: int | None) -> None:
    """Threads the C++ loops use (None: AGF_NUM_THREADS, else every CPU this process may use)."""
    global _NUM_THREADS
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive int, got {n!r}")
    _NUM_THREADS = n


CGROUP_ROOT = "/sys/fs/cgroup"


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask (taskset, cpusets), capped by a cgroup CPU
    quota rounded up (docker --cpus, Kubernetes limits; cgroup v2 cpu.max or v1 cfs_quota_us).
    Why: std::thread::hardware_concurrency counts every online CPU of the host, and a team larger
    than the CPUs it may run on stalls at every barrier (a descheduled thread holds up the rest:
    ~30x slower measured with 2 threads on 1 CPU)."""
    import math
    import os

    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quotas = []
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        with open(os.path.join(CGROUP_ROOT, "cpu.max")) as f:
            q, per = f.read().split()[:2]
            if q != "max":
                quotas.append(int(q) / int(per))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: quota -1 means none
        with open(os.path.join(CGROUP_ROOT, "cpu", "cpu.cfs_quota_us")) as f:
            q = int(f.read())
        with open(os.path.join(CGROUP_ROOT, "cpu", "cpu.cfs_period_us")) as f:
            per = int(f.read())
        if q > 0 and per > 0:
            quotas.append(q / per)
    except (OSError, ValueError):
        pass
    for q in quotas:
        n = min(n, max(1, math.ceil(q)))
    return max(1, n)


def num_threads() -> int:
    """set_num_threads' value, else AGF_NUM_THREADS, else available_cpus()."""
    import os

    if _NUM_THREADS is not None:
        return _NUM_THREADS
    env = os.environ.get("AGF_NUM_THREADS")
    if env:
        try:
            v = int(env)
            if v >= 1:
                return v
        except ValueError:
            pass
        raise ValueError(f"AGF_NUM_THREADS must be a positive integer, got {env!r}")
    return available_cpus()


def _wmode(half: bool, bf16: bool, int8: bool = False) -> int:
    """The C++ loops' weight mode: 0 fp32, 1 fp16-stored weights, 2 bf16 products, 3 int8 products."""
    if int(bool(half)) + int(bool(bf16)) + int(bool(int8)) > 1:
        raise ValueError("half, bf16 and int8 are alternatives")
    return 3 if int8 else 2 if bf16 else int(bool(half))


def _f32c(t, name):
    """A contiguous float32 CPU torch tensor (checked) -> (tensor, pointer, numel)."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor")
    if t.device.type != "cpu" or t.dtype != torch.float32 or not t.is_contiguous():
        raise ValueError(f"{name} must be a contiguous float32 CPU tensor (got {t.dtype}, {t.device}, "
                         f"contiguous={t.is_contiguous()})")
    return t, t.data_ptr(), t.numel()


class WaveNetCPU:
    """The C++ WaveNet loop (csrc/cpu/wavenet.cpp) with checked tensors in and out."""

    def __init__(self, model):
        import torch

        cfg = model.config
        p = next(model.parameters())
        if p.device.type != "cpu":
            raise ValueError("the cpp backend runs CPU models")
        layers = model.conv_layers
        with torch.no_grad():
            f = lambda t: t.detach().float().contiguous()  # noqa: E731
            self._w = dict(
                emb=f(model.first_conv.weight[:, :, 0].t()),
                emb_b=f(model.first_conv.bias),
                wd=f(torch.stack([lay.conv.weight.permute(2, 1, 0).reshape(-1, cfg.gate_channels) for lay in layers])),
                wos=f(torch.stack([torch.cat([lay.conv1x1_out.weight[:, :, 0], lay.conv1x1_skip.weight[:, :, 0]], 0).t()
                                   for lay in layers])),
                bos=f(torch.stack([torch.cat([lay.conv1x1_out.bias, lay.conv1x1_skip.bias]) for lay in layers])),
                w1=f(model.last_conv1.weight[:, :, 0].t()), b1=f(model.last_conv1.bias),
                w2=f(model.last_conv2.weight[:, :, 0].t()), b2=f(model.last_conv2.bias))
        if [lay.dilation for lay in layers] != [2 ** (i % cfg.cycle) for i in range(cfg.layers)]:
            raise ValueError("WaveNetCPU expects dilations 2**(i % cycle)")
        w = self._w
        mode = {"mulaw": 0, "mol": 1, "gaussian": 2}[cfg.output]
        self.cfg = cfg
        self.nz = 2 if mode == 1 else 1
        self._impl = _ext().WaveNetCPU(
            cfg.layers, cfg.kernel_size, cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.out_hidden,
            cfg.out_channels, cfg.in_channels, cfg.cycle, mode, cfg.n_mix if mode == 1 else 1, float(cfg.log_scale_min),
            *(w[k].data_ptr() for k in ("emb", "emb_b", "wd", "wos", "bos", "w1", "b1", "w2", "b2")))
        self.hist_rows = self._impl.hist_rows

    def new_state(self, B: int, initial: float):
        import torch

        return (torch.zeros(B, self.hist_rows, self.cfg.residual_channels),
                torch.full((B,), float(initial), dtype=torch.float32))

    frame_cond = True  # takes the conditioning in frame-rate form (models/wavenet/cond.py)

    SCHEDULES = {"auto": 0, "team": 1, "split": 2}

    def run_chunk(self, cond, hist, x, t0: int, noise=None, teacher=None, threads: int | None = None,
                  half: bool = False, bf16: bool = False, int8: bool = False, schedule: str = "auto"):
        """cond: [B, Tc, L, G] per sample, or a FrameCond; noise [B, Tc(, 2)] or teacher [B, Tc].
        Returns samples [B, Tc] (teacher: logits [B, Tc, OUT]). half: fp16-stored big matrices
        (fp32 arithmetic); bf16: their products in bf16 with fp32 accumulation (csrc/cpu/bf16.h);
        int8: those products with int8 weights (a scale per column) and inputs quantised per row,
        int32 sums (csrc/cpu/int8.h). schedule (B >= 2; the same bits every way): "team" runs all
        streams in lockstep with every product split over the threads, "split" gives each thread
        its own streams, "auto" picks (csrc/cpu/wavenet.cpp, split_pays)."""
        wmode = _wmode(half, bf16, int8)
        if schedule not in self.SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(self.SCHEDULES)}, got {schedule!r}")
        import torch

        from .models.wavenet.cond import FrameCond

        if not isinstance(cond, FrameCond):
            _f32c(cond, "cond")
            L, G = self.cfg.layers, self.cfg.gate_channels
            if cond.dim() != 4 or tuple(cond.shape[2:]) != (L, G):
                raise ValueError(f"cond must be [B, Tc, L={L}, G={G}] (or a FrameCond), got {tuple(cond.shape)}")
            cond = FrameCond.from_dense(cond)
        B, Tc = cond.shape
        out = torch.empty(B, Tc)
        _, pP, nP = _f32c(cond.P, "cond.P")
        _, pb, nb = _f32c(cond.bias, "cond.bias")
        _, pw, nw = _f32c(cond.wts, "cond.wts")
        f0 = cond.f0
        if f0.dtype != torch.int32 or not f0.is_contiguous() or f0.device.type != "cpu":
            raise ValueError("cond.f0 must be a contiguous int32 CPU tensor")
        _, ph, nh = _f32c(hist, "hist")
        _, px, nx = _f32c(x, "x")
        pn = nn = pt = nt = pl = nl = 0
        logits = None
        if teacher is not None:
            _, pt, nt = _f32c(teacher, "teacher")
            logits = torch.empty(B, Tc, self.cfg.out_channels)
            pl, nl = logits.data_ptr(), logits.numel()
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            _, pn, nn = _f32c(noise, "noise")
        self._impl.run(B, Tc, int(t0), pP, nP, int(cond.P.shape[1]), pb, nb, f0.data_ptr(), f0.numel(), pw, nw,
                       int(cond.wts.shape[2]), ph, nh, px, nx, pn, nn, pt, nt, out.data_ptr(), out.numel(), pl, nl,
                       int(threads or num_threads()), wmode, self.SCHEDULES[schedule])
        return logits if teacher is not None else out


class WaveRNNCPU:
    """The C++ WaveRNN loop (csrc/cpu/wavernn.cpp) with checked tensors in and out."""

    ORDER = ("w_ix", "w_ic", "b_i", "wi1", "wh1", "bi1", "bh1", "wi2", "wi2a", "bi2", "wh2", "bh2",
             "wf1", "wf1a", "bf1", "wf2", "wf2a", "bf2", "wf3", "b3")

    def __init__(self, model):
        import torch

        cfg = model.config
        R, F = cfg.rnn_dims, cfg.fc_dims
        with torch.no_grad():
            f = lambda t: t.detach().float().contiguous()  # noqa: E731
            self._w = dict(
                w_ix=f(model.I.weight[:, 0]), w_ic=f(model.I.weight[:, 1:].t()), b_i=f(model.I.bias),
                wi1=f(model.rnn1.weight_ih_l0.t()), wh1=f(model.rnn1.weight_hh_l0.t()),
                bi1=f(model.rnn1.bias_ih_l0), bh1=f(model.rnn1.bias_hh_l0),
                wi2=f(model.rnn2.weight_ih_l0[:, :R].t()), wi2a=f(model.rnn2.weight_ih_l0[:, R:].t()),
                bi2=f(model.rnn2.bias_ih_l0), wh2=f(model.rnn2.weight_hh_l0.t()), bh2=f(model.rnn2.bias_hh_l0),
                wf1=f(model.fc1.weight[:, :R].t()), wf1a=f(model.fc1.weight[:, R:].t()), bf1=f(model.fc1.bias),
                wf2=f(model.fc2.weight[:, :F].t()), wf2a=f(model.fc2.weight[:, F:].t()), bf2=f(model.fc2.bias),
                wf3=f(model.fc3.weight.t()), b3=f(model.fc3.bias))
        self.cfg = cfg
        mode = cfg.mode_index
        self._impl = _ext().WaveRNNCPU(R, F, cfg.n_classes, cfg.n_mels, cfg.aux_dims, mode,
                                       cfg.n_mix if mode == 1 else 1, float(cfg.log_scale_min),
                                       [self._w[k].data_ptr() for k in self.ORDER])

    def new_state(self, B: int):
        import torch

        R = self.cfg.rnn_dims
        return torch.zeros(B, R), torch.zeros(B, R), torch.zeros(B)

    def sparse_info(self, threads: int | None = None, half: bool = False, bf16: bool = False, int8: bool = False) -> dict:
        """How run_chunk with these options holds the GRU and fc weights: {"slices": matrix x thread
        slices (a thread with none of a matrix's columns has none), "sparse": those run block-sparse
        (csrc/cpu/sparse.h: fp32 and fp16-stored weights whose 16 x 1 blocks are >= 40% zero;
        csrc/cpu/int8.h: int8 weights whose 16 x 4 blocks are, where int8_sparse_kernel() is not
        "emulated"), "blocks_kept" / "blocks_total": their blocks}."""
        return dict(self._impl.sparse_info(threads or num_threads(), _wmode(half, bf16, int8)))

    SCHEDULES = {"auto": 0, "team": 1, "split": 2}

    def split_pays(self, B: int, threads: int | None = None, half: bool = False, bf16: bool = False,
                   int8: bool = False) -> bool:
        """Whether schedule="auto" runs B streams "split" (csrc/cpu/wavernn.cpp: while each thread
        gets one stream, B <= threads, and a step reads few weight bytes, weight_bytes())."""
        return bool(self._impl.split_pays(int(B), threads or num_threads(), _wmode(half, bf16, int8)))

    def weight_bytes(self, half: bool = False, bf16: bool = False, int8: bool = False) -> int:
        """The bytes of GRU and fc weights one step reads in this form (block-sparse slices: their
        blocks and indices)."""
        return int(self._impl.weight_bytes(_wmode(half, bf16, int8)))

    def run_chunk(self, mel, aux, state, noise=None, teacher=None, threads: int | None = None, half: bool = False,
                  bf16: bool = False, int8: bool = False, schedule: str = "auto"):
        """mel [B, Tc, C], aux [B, Tc, 4A] (the upsampler's outputs); state (h1, h2, x) updated in
        place. Returns (samples [B, Tc], classes or None) or, with teacher [B, Tc], logits.
        half: fp16-stored matrix weights (fp32 arithmetic); bf16: the GRU and fc products with bf16
        weights and inputs, fp32 accumulation (csrc/cpu/bf16.h); int8: those products with int8
        weights (a scale per column) and inputs quantised per row, int32 sums (csrc/cpu/int8.h).
        schedule (B >= 2; the same bits every way): "team" runs all streams in lockstep with every
        product split over the threads, "split" gives each thread its own streams, "auto" picks
        (split_pays)."""
        wmode = _wmode(half, bf16, int8)
        if schedule not in self.SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(self.SCHEDULES)}, got {schedule!r}")
        import torch

        B, Tc = mel.shape[:2]
        ptrs = []
        for t, name in ((mel, "mel"), (aux, "aux")) + tuple(zip(state, ("h1", "h2", "x"))):
            _, pp, nn_ = _f32c(t, name)
            ptrs += [pp, nn_]
        out = torch.empty(B, Tc)
        cls = torch.empty(B, Tc, dtype=torch.int64) if (self.cfg.mode == "RAW" and teacher is None) else None
        logits = None
        pn = nn_ = pt = nt = pl = nl = 0
        if teacher is not None:
            _, pt, nt = _f32c(teacher, "teacher")
            logits = torch.empty(B, Tc, self.cfg.n_classes)
            pl, nl = logits.data_ptr(), logits.numel()
        else:
            if noise is None:
                raise ValueError("pass noise or teacher")
            _, pn, nn_ = _f32c(noise, "noise")
        self._impl.run(B, Tc, *ptrs, pn, nn_, pt, nt, out.data_ptr(), out.numel(),
                       cls.data_ptr() if cls is not None else 0, cls.numel() if cls is not None else 0, pl, nl,
                       int(threads or num_threads()), wmode, self.SCHEDULES[schedule])
        return logits if teacher is not None else (out, cls)


class DiffWaveCPU:
    """The C++ DiffWave denoise loop (csrc/cpu/diffwave.cpp) with checked tensors in and out."""

    def __init__(self, model):
        import torch

        cfg = model.config
        p = next(model.parameters())
        if p.device.type != "cpu":
            raise ValueError("the cpp backend runs CPU models")
        C, L = cfg.residual_channels, cfg.residual_layers
        M = cfg.n_mels if cfg.conditional else 0
        layers = model.residual_layers
        with torch.no_grad():
            f = lambda t: t.detach().float().contiguous()  # noqa: E731

            def wd(lay):  # [3C + M, 2C]: rows tap0 channels, tap1, tap2, then the conditioner
                taps = lay.dilated_conv.weight.permute(2, 1, 0).reshape(3 * C, 2 * C)
                if M:
                    taps = torch.cat([taps, lay.conditioner_projection.weight[:, :, 0].t()], 0)
                return taps

            def bd(lay):
                b = lay.dilated_conv.bias
                return b + lay.conditioner_projection.bias if M else b

            self._w = dict(
                w_in=f(model.input_projection.weight.reshape(C)), b_in=f(model.input_projection.bias),
                wd=f(torch.stack([wd(lay) for lay in layers])), bd=f(torch.stack([bd(lay) for lay in layers])),
                wo=f(torch.stack([lay.output_projection.weight[:, :, 0].t() for lay in layers])),
                bo=f(torch.stack([lay.output_projection.bias for lay in layers])),
                wsp=f(model.skip_projection.weight[:, :, 0].t()), bsp=f(model.skip_projection.bias),
                wout=f(model.output_projection.weight.reshape(C)), bout=f(model.output_projection.bias))
        self.cfg, self.M = cfg, M
        self.dilations = [int(lay.dilated_conv.dilation[0]) for lay in layers]
        order = ("w_in", "b_in", "wd", "bd", "wo", "bo", "wsp", "bsp", "wout", "bout")
        self._impl = _ext().DiffWaveCPU(C, L, M, self.dilations, [self._w[k].data_ptr() for k in order])

    def run(self, eproj, coef, noise, mel=None, threads: int | None = None, hoist: bool | int = False,
            winograd: bool = True, bf16: bool = False):
        """eproj [S, L, C] step biases, coef [3, S] (c1 | c2 | sigma per executed step), noise
        [S, B, T], mel [B, T, M] (upsampled) -> audio [B, T]. hoist: how many layers (from the
        first) compute their conditioner projection once per call instead of every step, holding
        2C floats per sample each (True: all, False: none); the audio is the same bit for bit.
        winograd: the dilated conv by Winograd F(2,3) (fewer multiply-adds) or directly. bf16:
        the layers' products with bf16 inputs and fp32 accumulation (csrc/cpu/bf16.h; needs winograd)."""
        if bf16 and not winograd:
            raise ValueError("bf16 products run the Winograd path")
        L = len(self.dilations)
        if isinstance(hoist, (bool, np.bool_)):
            hoist = L if hoist else 0
        if not isinstance(hoist, (int, np.integer)) or hoist < 0:
            raise ValueError(f"hoist is a bool or a number of layers >= 0 (got {hoist!r})")
        import torch

        S, B, T = noise.shape
        _, pe, ne = _f32c(eproj, "eproj")
        _, pc, nc = _f32c(coef, "coef")
        _, pn, nn_ = _f32c(noise, "noise")
        pm = nm = 0
        if self.M:
            if mel is None:
                raise ValueError("this DiffWave model is conditional: pass the upsampled mel")
            _, pm, nm = _f32c(mel, "mel")
        out = torch.empty(B, T)
        self._impl.run(B, T, S, pe, ne, pc, nc, pn, nn_, pm, nm, out.data_ptr(), out.numel(),
                       int(threads or num_threads()), min(int(hoist), L), bool(winograd), bool(bf16))
        return out
