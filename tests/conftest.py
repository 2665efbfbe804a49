import os

# Triton kernels run through the interpreter where there is no GPU (DESIGN.md, convention 6).
# The switch must be set before any @triton.jit function is defined.
try:
    import torch as _torch

    if not _torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:
    pass

import numpy as np
import pytest
import torch

import audiogen_fast as agf


def pytest_configure(config):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


HAS_CUDA = torch.cuda.is_available()
if HAS_CUDA:
    # the fp32 reference must be fp32: PyTorch lets cuDNN convolutions use TF32 by default
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def triton_device():
    """Where Triton tests run: the GPU when there is one, else CPU tensors in the interpreter."""
    return "cuda" if HAS_CUDA else "cpu"


@pytest.fixture
def rng():
    # fresh random inputs per test (seeded from the test's id so failures reproduce)
    return np.random.default_rng(abs(hash(os.environ.get("PYTEST_CURRENT_TEST", ""))) % (2 ** 32))


def random_mel(cfg, frames, batch=None, rng=None):
    rng = rng or np.random.default_rng(0)
    shape = (cfg.n_mels, frames) if batch is None else (batch, cfg.n_mels, frames)
    return (rng.standard_normal(shape) * 2.0 - 4.0).astype(np.float32)


def rel_err(a, b):
    a = torch.as_tensor(a).double()
    b = torch.as_tensor(b).double()
    err = (a - b).abs().max().item() / max(b.abs().max().item(), 1e-30)
    mean = (a - b).abs().mean().item()
    print(f"max rel err {err:.3e}, mean abs err {mean:.3e}")
    return err


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name in ("tiny-wavenet", "tiny-wavernn", "tiny-diffwave"):
        p = d / f"{name}.safetensors"
        agf.save(agf.build(name, seed=1), p)
        out[name] = p
    return out


def _wn_rt():
    from audiogen_fast.models.wavenet import runtime

    return runtime


def first_mismatch_is_a_boundary_flip(model, mel, ref_samples, got_samples, u, tol=1e-4):
    """Sampled sequences must be equal; if they differ, the first difference must be a uniform
    lying within `tol` of a CDF boundary of the reference's own distribution (a rounding flip).
    Returns the number of steps that matched."""
    ref_samples, got_samples = ref_samples.cpu(), got_samples.cpu()
    for b in range(ref_samples.shape[0]):
        diff = (ref_samples[b] != got_samples[b]).nonzero()
        if len(diff) == 0:
            continue
        i = int(diff[0])
        cfg = model.config
        teacher = torch.cat([torch.tensor([_wn_rt().initial_input(cfg)]), ref_samples[b, :-1]])[None]
        _, logits = _wn_rt().run_torch(model, i + 1, mel=None if mel is None else mel[b:b + 1], teacher=teacher.to(mel.device if mel is not None else "cpu"))
        cdf = torch.cumsum(torch.softmax(logits[0, i].double().cpu(), -1), -1)
        dist = (cdf - float(u[b, i])).abs().min().item()
        print(f"stream {b}: first mismatch at step {i}, uniform {float(u[b, i]):.7f} is {dist:.2e} from a CDF boundary")
        assert dist < tol, f"stream {b} step {i}: samples differ although the uniform is {dist:.2e} from any boundary"
    return True


def rounded_matrices(model, dtype):
    """A copy of a WaveNet with the matrices the GPU kernels store in `dtype` rounded to it (biases,
    embedding and the conditioning projection stay fp32)."""
    import copy

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for lay in rounded.conv_layers:
            for w in (lay.conv.weight, lay.conv1x1_out.weight, lay.conv1x1_skip.weight):
                w.copy_(w.to(dtype).float())
        for w in (rounded.last_conv1.weight, rounded.last_conv2.weight):
            w.copy_(w.to(dtype).float())
    return rounded


def round_left_operands(monkeypatch, dtype):
    """Every torch.addmm / F.linear rounds its left operand (the activations) to `dtype` first: the
    eager loop then models tensor-core products with 16-bit inputs and fp32 accumulation."""
    import torch.nn.functional as F

    addmm, linear = torch.addmm, F.linear
    monkeypatch.setattr(torch, "addmm", lambda b, a, w, **kw: addmm(b, a.to(dtype).float(), w, **kw))
    monkeypatch.setattr(F, "linear", lambda a, w, b=None: linear(a.to(dtype).float(), w, b))


def run_python(code: str, kernels: str = "", products: str = "") -> list:
    """Run `code` in a fresh interpreter (the C++ kernel choice is made once per process) with
    AGF_CPU_KERNELS=kernels and AGF_CPU_PRODUCTS=products ("" leaves either unset); -> its stdout
    split on whitespace."""
    import subprocess
    import sys

    env = dict(os.environ)
    for name, value in (("AGF_CPU_KERNELS", kernels), ("AGF_CPU_PRODUCTS", products)):
        env.pop(name, None)
        if value:
            env[name] = value
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def assert_emulation_gives_the_same(code: str, native_name: str, native: bool, simd=None):
    """`code` prints the product kernel in use, then the audio as hex. Run as is (the AVX-512 kernel
    `native_name` where `native`, else the SIMD one below it), with AGF_CPU_KERNELS=avx2 (that SIMD
    kernel) and with AGF_CPU_PRODUCTS=emulated (the exact C++ emulations of the bf16 / int8
    products, the fp32 kernels unchanged): every run gives the same audio, bit for bit. simd: the
    name of the kernel below AVX-512 here (default: "avx2" where the CPU has it, else "emulated")."""
    from audiogen_fast import _cpp

    f = _cpp.cpu_features()
    avx2 = simd or ("avx2" if f["avx2"] and f["fma"] else "emulated")
    runs = {"best": run_python(code), "avx2": run_python(code, kernels="avx2"),
            "emulated": run_python(code, products="emulated")}
    assert runs["best"][0] == (native_name if native else avx2)
    assert runs["avx2"][0] == avx2
    assert runs["emulated"][0] == "emulated"
    assert runs["best"][1] == runs["avx2"][1] == runs["emulated"][1]


def assert_error_within_twice(ref, theirs, ours, what: str):
    """DESIGN.md's rule for reduced precision: our error against the fp64 reference `ref` (its max
    and its rms) no more than 2x that of `theirs` (torch at the same precision). Prints both."""
    def err(x):
        d = x.double() - ref
        return float(d.abs().max()), float(d.pow(2).mean().sqrt())
    (t_max, t_rms), (c_max, c_rms) = err(theirs), err(ours)
    print(f"torch {what} max {t_max:.2e} rms {t_rms:.2e} | cpp {what} max {c_max:.2e} rms {c_rms:.2e}")
    assert c_max <= 2 * t_max and c_rms <= 2 * t_rms


def wavenet_teacher_inputs(model, B: int, T: int, seed: int):
    """Random teacher-forcing inputs for a WaveNet: (mel [B, C, frames] covering T samples, x [B, T]
    float: mu-law classes as floats, or samples in [-1, 1])."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, cfg.n_mels, (T + cfg.hop_length - 1) // cfg.hop_length + 1, generator=g)
    if cfg.output == "mulaw":
        return mel, torch.randint(0, cfg.out_channels, (B, T), generator=g).float()
    return mel, torch.rand(B, T, generator=g) * 2 - 1


# WaveNet shapes for the reduced-precision tests of the cpp loop: wide enough that 2-3 threads
# split the gate channels and hidden units, a kernel-3 mixture, a Gaussian, odd sizes
WAVENET_PRECISION_VARIANTS = {
    "mulaw": dict(residual_channels=32, gate_channels=64, skip_channels=64, out_hidden=64),
    "k3-mol": dict(kernel_size=3, output="mol", n_mix=3, layers=6, stacks=2),
    "gaussian": dict(output="gaussian"),
    "odd": dict(residual_channels=7, gate_channels=10, skip_channels=5, out_hidden=9, quantize_channels=33),
}

