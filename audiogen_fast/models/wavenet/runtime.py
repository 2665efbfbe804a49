"""WaveNet generation loops, one per backend, all with the same signature.

"torch" is the eager reference loop and the baseline every speed claim is measured against.
It is the Fast WaveNet algorithm (Paine et al. 2016): each layer keeps a ring buffer of its
last (K-1)*d inputs, so a sample costs O(layers) matrix-vector products whatever the receptive
field; the mel conditioning of every layer is projected for a block of time steps at once
(one matrix product per block) before the per-sample loop reaches it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ... import noise as noise_mod
from ...sampling import mulaw_decode, mulaw_encode, sample_gaussian, sample_mol, sample_softmax
from .config import WaveNetConfig
from .reference import WaveNet

BACKENDS = ("torch", "cpp", "triton")
COND_BLOCK = 2048  # time steps of conditioning projected per matrix product


# ---- noise --------------------------------------------------------------------------------

def noise_shape(cfg: WaveNetConfig, n: int) -> tuple:
    return (n, 2) if cfg.output == "mol" else (n,)


def draw_noise(cfg: WaveNetConfig, seed: int, n: int) -> np.ndarray:
    return noise_mod.ar_noise(seed, n, cfg.noise_kind)


def initial_input(cfg: WaveNetConfig):
    if cfg.output == "mulaw":
        return cfg.initial_class if cfg.initial_class is not None else int(mulaw_encode(np.zeros(1, np.float32), cfg.quantize_channels)[0])
    return cfg.initial_input if cfg.initial_input is not None else 0.0


def decode_output(cfg: WaveNetConfig, samples: torch.Tensor) -> np.ndarray:
    """Sampled values [B, T] (classes or floats) -> float32 audio [B, T]."""
    if cfg.output == "mulaw":
        return mulaw_decode(samples.cpu().numpy(), cfg.quantize_channels)
    return samples.float().cpu().numpy()


def memory_estimate(cfg: WaveNetConfig, B: int, n: int, backend: str) -> int:
    """Bytes a generate() call holds at its peak (upsampled mel, conditioning block, noise, output)."""
    per_sample = 4 * (cfg.n_mels if cfg.conditional else 0) + 4 * 3 + 8
    block = {"torch": COND_BLOCK, "cpp": 1024, "triton": 8192}.get(backend, COND_BLOCK)
    return B * n * per_sample + 2 * B * min(n, block) * cfg.layers * cfg.gate_channels * 4


# ---- eager incremental loop -----------------------------------------------------------------

class _Step:
    """Weights rearranged for one-sample steps (shapes in comments)."""

    def __init__(self, model: WaveNet):
        cfg = model.config
        self.cfg = cfg
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.emb = model.first_conv.weight[:, :, 0].t().contiguous()          # [in, R]
        self.emb_b = model.first_conv.bias                                     # [R]
        self.w_dil, self.w_os, self.b_os, self.dil = [], [], [], []
        for layer in model.conv_layers:
            # conv weight [G, R, K]; tap k multiplies the input (K-1-k)*d steps back
            self.w_dil.append(layer.conv.weight.permute(2, 1, 0).reshape(-1, G).contiguous())  # [K*R, G]
            self.w_os.append(torch.cat([layer.conv1x1_out.weight[:, :, 0], layer.conv1x1_skip.weight[:, :, 0]], 0)
                             .t().contiguous())                                # [G/2, R+S]
            self.b_os.append(torch.cat([layer.conv1x1_out.bias, layer.conv1x1_skip.bias]))  # [R+S]
            self.dil.append(layer.dilation)
        self.b_dil = torch.cat([layer.conv.bias for layer in model.conv_layers])   # [L*G]
        if cfg.conditional:
            self.w_c = torch.cat([layer.conv1x1c.weight[:, :, 0] for layer in model.conv_layers], 0)  # [L*G, C]
        self.R, self.G, self.S = R, G, S
        self.skip_scale = math.sqrt(1.0 / cfg.layers)

    def cond_block(self, model, c_up, g, t0, t1):
        """Per-layer conditioning (dilated-conv bias + mel + speaker) for steps [t0, t1): [t, B, L, G]."""
        B = c_up.shape[0] if c_up is not None else (g.shape[0] if g is not None else 1)
        L = self.cfg.layers
        out = self.b_dil.view(1, 1, -1).expand(t1 - t0, B, -1)
        if c_up is not None:
            out = out + torch.einsum("gc,bct->tbg", self.w_c, c_up[:, :, t0:t1])
        if g is not None:
            gl = torch.cat([layer.conv1x1g(g)[:, :, 0] for layer in model.conv_layers], 1)  # [B, L*G]
            out = out + gl.unsqueeze(0)
        return out.reshape(t1 - t0, B, L, self.G).contiguous()

    def cond_block_bt(self, model, c_up, g, t0, t1, B):
        """The same, laid out [B, t, L, G] for the fused loops: one matrix product per stream
        written straight into place (bias as the addmm input: no extra passes over the buffer)."""
        L, G = self.cfg.layers, self.G
        out = torch.empty(B, t1 - t0, L * G, device=self.b_dil.device, dtype=torch.float32)
        bias = self.b_dil.float()
        if g is not None:
            gl = torch.cat([layer.conv1x1g(g)[:, :, 0] for layer in model.conv_layers], 1).float()  # [B, L*G]
        for b in range(B):
            bb = bias if g is None else bias + gl[b]
            if c_up is not None:
                torch.addmm(bb, c_up[b, :, t0:t1].t().float(), self.w_c.t().float(), out=out[b])
            else:
                out[b].copy_(bb.expand(t1 - t0, -1))
        return out.view(B, t1 - t0, L, G)


@torch.inference_mode()
def run_torch(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
              progress: bool = False):
    """The eager loop. Returns (samples [B, n], outputs [B, n, out] or None).

    mel [B, C, frames] (conditional models), speaker [B] int64 or None.
    noise [B, n] / [B, n, 2] sampling noise, or teacher [B, n] inputs to feed instead of samples
    (teacher forcing: then the per-step network outputs are returned too).
    """
    cfg = model.config
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    st = _Step(model)
    K = cfg.kernel_size
    c_up = model.upsample(mel.to(dev, dt)) if cfg.conditional else None
    g = model.speaker_embedding(speaker.to(dev)) if speaker is not None else None
    B = c_up.shape[0] if c_up is not None else (teacher.shape[0] if teacher is not None else (noise.shape[0] if noise is not None else batch))
    hist = [torch.zeros((K - 1) * d, B, st.R, device=dev, dtype=dt) for d in st.dil]
    mulaw = cfg.output == "mulaw"
    if mulaw:
        x = torch.full((B,), initial_input(cfg), dtype=torch.long, device=dev)
        samples = torch.empty(B, n, dtype=torch.long, device=dev)
    else:
        x = torch.full((B,), float(initial_input(cfg)), dtype=torch.float32, device=dev)
        samples = torch.empty(B, n, dtype=torch.float32, device=dev)
    outs = torch.empty(B, n, cfg.out_channels, dtype=torch.float32, device=dev) if teacher is not None else None
    if noise is not None:
        noise = noise.to(dev)
    if teacher is not None:
        teacher = teacher.to(dev)
    sqrt_half = math.sqrt(0.5)
    cond = None
    t0 = 0
    it = range(n)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=n, unit="sample", unit_scale=True, leave=False)
    for t in it:
        if t % COND_BLOCK == 0:
            t0 = t
            cond = st.cond_block(model, c_up, g, t, min(n, t + COND_BLOCK))
        ct = cond[t - t0]                                                   # [B, L, G]
        if teacher is not None:
            x = teacher[:, t]
        if mulaw:
            h = st.emb[x] + st.emb_b                                         # [B, R]
        else:
            h = x.to(dt).unsqueeze(1) * st.emb[0] + st.emb_b
        skip = None
        for l, d in enumerate(st.dil):
            buf = hist[l]
            M = buf.shape[0]
            taps = [buf[(t + j * d) % M] for j in range(K - 1)] + [h]
            a = torch.addmm(ct[:, l], torch.cat(taps, 1), st.w_dil[l])      # [B, G]
            z = torch.tanh(a[:, :st.G // 2]) * torch.sigmoid(a[:, st.G // 2:])
            os_ = torch.addmm(st.b_os[l], z, st.w_os[l])                    # [B, R+S]
            buf[t % M] = h
            h = (h + os_[:, :st.R]) * sqrt_half
            skip = os_[:, st.R:] if skip is None else skip + os_[:, st.R:]
        y = F.relu(skip * st.skip_scale)
        y = F.linear(F.relu(F.linear(y, model.last_conv1.weight[:, :, 0], model.last_conv1.bias)),
                     model.last_conv2.weight[:, :, 0], model.last_conv2.bias).float()   # [B, out]
        if teacher is not None:
            outs[:, t] = y
            continue
        if mulaw:
            x = sample_softmax(y, noise[:, t])
        elif cfg.output == "mol":
            x = sample_mol(y, noise[:, t], cfg.log_scale_min)
        else:
            x = sample_gaussian(y, noise[:, t], cfg.log_scale_min)
        samples[:, t] = x
    return (teacher if teacher is not None else samples), outs


# ---- Triton: the whole loop in one kernel per chunk (audiogen_fast/ops/wavenet_loop.py) ------

TRITON_CHUNK = 8192  # steps per launch; bounds the conditioning buffer to Tc * L * G floats per stream


def triton_loop(model: WaveNet, weight_dtype=None):
    """The kernel's weight layout, cached on the model (rebuilt if the weights' dtype/device change)."""
    from ...ops.wavenet_loop import WaveNetLoop

    p = next(model.parameters())
    key = (p.device, p.dtype if weight_dtype is None else weight_dtype, p.data_ptr())
    cached = getattr(model, "_agf_triton_loop", None)
    if cached is None or cached[0] != key:
        cached = (key, WaveNetLoop(model, dtype=key[1]))
        object.__setattr__(model, "_agf_triton_loop", cached)
    return cached[1]


def _run_fused(model: WaveNet, loop, n, mel, speaker, noise, teacher, batch, progress, chunk, **run_kw):
    """The chunk driver shared by the fused loops (C++ and Triton): conditioning for a block of
    steps as one matrix product, then one call that runs the whole block. `loop` has
    new_state(B, x0) and run_chunk(cond, hist, x, t0, noise=|teacher=, **run_kw)."""
    cfg = model.config
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    st = _Step(model)
    c_up = model.upsample(mel.to(dev, dt)) if cfg.conditional else None
    g = model.speaker_embedding(speaker.to(dev)) if speaker is not None else None
    B = c_up.shape[0] if c_up is not None else (teacher.shape[0] if teacher is not None else (noise.shape[0] if noise is not None else batch))
    hist, x = loop.new_state(B, initial_input(cfg))
    samples = torch.empty(B, n, device=dev, dtype=torch.float32)
    outs = torch.empty(B, n, cfg.out_channels, device=dev, dtype=torch.float32) if teacher is not None else None
    it = range(0, n, chunk)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(it), unit="chunk", leave=False)
    for t0 in it:
        t1 = min(n, t0 + chunk)
        cond = st.cond_block_bt(model, c_up, g, t0, t1, B)  # [B, Tc, L, G]
        if teacher is not None:
            outs[:, t0:t1] = loop.run_chunk(cond, hist, x, t0, teacher=teacher[:, t0:t1].to(dev).float().contiguous(), **run_kw)
        else:
            nz = noise[:, t0:t1].to(dev).float().reshape(B, t1 - t0, -1).contiguous()
            samples[:, t0:t1] = loop.run_chunk(cond, hist, x, t0, noise=nz, **run_kw)
    if teacher is not None:
        return teacher, outs
    if cfg.output == "mulaw":
        samples = samples.long()
    return samples, None


@torch.inference_mode()
def run_triton(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
               progress: bool = False, chunk: int = TRITON_CHUNK, loop=None):
    """Same contract as run_torch (samples [B, n], outputs when teacher-forced)."""
    return _run_fused(model, loop or triton_loop(model), n, mel, speaker, noise, teacher, batch, progress, chunk)


# ---- C++: the whole loop in csrc/cpu/wavenet.cpp ---------------------------------------------

def cpp_loop(model: WaveNet):
    """The C++ loop object (weights copied into its layout), cached on the model."""
    from ..._cpp import WaveNetCPU

    p = next(model.parameters())
    key = (p.data_ptr(), p._version)
    cached = model.__dict__.get("_agf_cpp")
    if cached is None or cached[0] != key:
        cached = (key, WaveNetCPU(model))
        model.__dict__["_agf_cpp"] = cached
    return cached[1]


CPP_CHUNK = 1024  # conditioning block: 1024 steps x L x G floats (10 MB for W2) stays in L3


@torch.inference_mode()
def run_cpp(model: WaveNet, n: int, mel=None, speaker=None, noise=None, teacher=None, batch: int = 1,
            progress: bool = False, chunk: int = CPP_CHUNK, threads=None, dtype: str = "float32"):
    """Same contract as run_torch; the per-sample work runs in C++ (no Python per sample).
    dtype "float16": the weight matrices are stored (and streamed) as fp16, arithmetic is fp32."""
    return _run_fused(model, cpp_loop(model), n, mel, speaker, noise, teacher, batch, progress, chunk,
                      threads=threads, half=dtype == "float16")


RUNNERS = {"torch": run_torch, "cpp": run_cpp, "triton": run_triton}


def generate(model: WaveNet, backend: str, n: int, mel=None, noise=None, speaker=None, progress=False, **kw):
    """-> float32 audio [B, n]. kw: dtype for the cpp backend."""
    if backend not in RUNNERS:
        raise ValueError(f"backend {backend!r} has no WaveNet runtime")
    samples, _ = RUNNERS[backend](model, n, mel=mel, speaker=speaker, noise=noise, progress=progress, **kw)
    return decode_output(model.config, samples)


# ---- torch.compile baseline (benchmarks): the eager step as one graph, replayed per sample ----

class _CompiledStep(torch.nn.Module):
    """The eager step with ring buffers as module buffers and the position as a tensor, so that
    torch.compile(mode="reduce-overhead") can capture one sample's work as one CUDA graph."""

    def __init__(self, model: WaveNet, B: int):
        super().__init__()
        st = _Step(model)
        cfg = model.config
        self.st, self.K, self.cfg = st, cfg.kernel_size, cfg
        self.model = model
        dev = next(model.parameters()).device
        dt = next(model.parameters()).dtype
        for l, d in enumerate(st.dil):
            self.register_buffer(f"hist{l}", torch.zeros((cfg.kernel_size - 1) * d, B, st.R, device=dev, dtype=dt))

    def forward(self, x, t, ct, u):
        st, K = self.st, self.K
        h = st.emb[x] + st.emb_b
        skip = None
        for l, d in enumerate(st.dil):
            buf = getattr(self, f"hist{l}")
            M = buf.shape[0]
            taps = [buf.index_select(0, ((t + j * d) % M).view(1))[0] for j in range(K - 1)] + [h]
            a = torch.addmm(ct[:, l], torch.cat(taps, 1), st.w_dil[l])
            z = torch.tanh(a[:, :st.G // 2]) * torch.sigmoid(a[:, st.G // 2:])
            os_ = torch.addmm(st.b_os[l], z, st.w_os[l])
            buf.index_copy_(0, (t % M).view(1), h.unsqueeze(0))
            h = (h + os_[:, :st.R]) * math.sqrt(0.5)
            skip = os_[:, st.R:] if skip is None else skip + os_[:, st.R:]
        m = self.model
        y = F.relu(skip * st.skip_scale)
        y = F.linear(F.relu(F.linear(y, m.last_conv1.weight[:, :, 0], m.last_conv1.bias)),
                     m.last_conv2.weight[:, :, 0], m.last_conv2.bias).float()
        return sample_softmax(y, u)


@torch.inference_mode()
def run_compiled(model: WaveNet, n: int, mel=None, noise=None, mode: str = "reduce-overhead", _cache={}):
    """torch.compile'd eager step (mu-law models), one call per sample: the baseline users reach for."""
    cfg = model.config
    if cfg.output != "mulaw":
        raise ValueError("run_compiled supports mu-law WaveNets")
    p = next(model.parameters())
    dev, dt = p.device, p.dtype
    st = _Step(model)
    c_up = model.upsample(mel.to(dev, dt))
    B = c_up.shape[0]
    key = (id(model), B, mode)
    if key not in _cache:
        mod = _CompiledStep(model, B)
        _cache[key] = (mod, torch.compile(mod, mode=mode, fullgraph=True) if mode else mod)
    mod, fn = _cache[key]
    for name, buf in mod.named_buffers():
        if name.startswith("hist"):
            buf.zero_()
    x = torch.full((B,), initial_input(cfg), dtype=torch.long, device=dev)
    samples = torch.empty(B, n, dtype=torch.long, device=dev)
    noise = noise.to(dev)
    ts = torch.arange(n, device=dev)
    for t0 in range(0, n, COND_BLOCK):
        cond = st.cond_block(model, c_up, None, t0, min(n, t0 + COND_BLOCK))
        for t in range(t0, min(n, t0 + COND_BLOCK)):
            x = fn(x, ts[t], cond[t - t0], noise[:, t]).clone()
            samples[:, t] = x
    return samples, None
