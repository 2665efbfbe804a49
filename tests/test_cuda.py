"""CUDA sources: every csrc/cuda/*.cu compiles with nvcc for sm_90a and a PTX target (CI, no GPU
needed); the kernels match the CPU reference on a GPU (marked gpu)."""
import glob
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import audiogen_fast as agf

ROOT = os.path.join(os.path.dirname(__file__), "..")
NVCC = shutil.which("nvcc")
CU = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))


@pytest.fixture(scope="module")
def objects_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cuda_objects")


def _compile(src, out):
    """setup.py's nvcc flags, for sm_90a and a PTX target, position-independent (for the link test),
    with ptxas's per-kernel register report."""
    cmd = [NVCC, "-c", src, "-o", str(out), "-std=c++17", "-O3", "--use_fast_math", "-Xcompiler", "-fPIC",
           "-I", os.path.join(ROOT, "csrc"), "-gencode=arch=compute_90a,code=sm_90a",
           "-gencode=arch=compute_90,code=compute_90", "-Xptxas", "-v"]
    return subprocess.run(cmd, capture_output=True, text=True)


# the files whose kernels loop over samples: a register spill there is a local-memory round trip
# in every step (ptxas capped some variants at 80 / 128 registers and spilled until the launch
# bounds said one block per SM)
PERSISTENT = {"wavenet_persistent.cu", "wavenet_persistent_cluster.cu", "wavernn_persistent.cu"}


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("src", CU, ids=[os.path.basename(c) for c in CU])
def test_cuda_sources_compile(src, objects_dir):
    """Every .cu compiles; every variant of the persistent kernels keeps its state in registers."""
    name = os.path.basename(src)
    r = _compile(src, objects_dir / (name + ".o"))
    assert r.returncode == 0, r.stderr[-3000:]
    if name in PERSISTENT:
        spills = [line.strip() for line in r.stderr.splitlines() if "spill stores" in line]
        print("\n".join(spills))
        assert len(spills) >= 9  # a line per kernel variant
        assert all(line.startswith("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads") for line in spills), spills


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_cuda_objects_link_into_one_library(objects_dir, tmp_path):
    """The .cu files link into one shared library, as setup.py links the extension: a non-inline
    function defined in a shared header would be defined once per file (each file compiling alone
    does not show it; 2026-11-30 it would have failed the GPU machine's build)."""
    objs = []
    for src in CU:
        o = objects_dir / (os.path.basename(src) + ".o")
        if not o.exists():  # run alone (-k): compile here
            assert _compile(src, o).returncode == 0
        objs.append(str(o))
    r = subprocess.run([NVCC, "-shared", "-o", str(tmp_path / "libk.so"), *objs], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def _sass_by_function(obj):
    """{mangled kernel name: its SASS} of an nvcc object, via the cuobjdump Triton ships."""
    from audiogen_fast.ops import aot

    out = subprocess.run([aot._tool("cuobjdump"), "-sass", str(obj)], capture_output=True, text=True, check=True).stdout
    funcs, name = {}, None
    for line in out.splitlines():
        if "Function :" in line:
            name = line.split("Function :")[1].strip()
            funcs[name] = []
        elif name:
            funcs[name].append(line)
    return {k: "\n".join(v) for k, v in funcs.items()}


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_persistent_kernels_read_shared_memory_weights_with_lds(objects_dir):
    """Where the plan keeps the weights in shared memory, the instances derive their pointers from
    the shared array, so the products load with LDS.128: a pointer that may be shared or global
    compiles to generic LD.E.128 loads (slower, and the W1 layer step's pointer choice cost ~70
    instructions per layer and sample). Before (2026-11-30): ~150 generic 16-byte loads in the W1
    fixed-shape fp16 instance, 120 in WaveRNN R2's; now the W1 instance keeps 2 (its off-path
    past-taps product, whose blocks may read from global memory) and WaveRNN none."""
    from audiogen_fast.ops import aot

    if not os.path.exists(aot._tool("cuobjdump")):
        pytest.skip("Triton's cuobjdump is not installed")
    sass = {}
    for f in ("wavenet_persistent.cu", "wavernn_persistent.cu"):
        o = objects_dir / (f + ".o")
        if not o.exists():
            assert _compile(os.path.join(ROOT, "csrc", "cuda", f), o).returncode == 0
        sass.update(_sass_by_function(o))
    generic = lambda k: sass[k].count("LD.E.128")  # noqa: E731
    w1 = [k for k in sass if "wavenet_persistent_kernel" in k and k.endswith("Li1ELb0ELi1EEEvNS0_6ParamsE")]
    rnn = [k for k in sass if "wavernn_persistent_kernel" in k and k.endswith("Lb1EEEvNS0_6ParamsE")]
    assert len(w1) == 3 and len(rnn) == 6, (w1, rnn)  # fp32 / fp16 / bf16 (x 1 and 4 streams)
    for k in w1:
        assert generic(k) <= 4 and sass[k].count("LDS.128") > 50, (k, generic(k))
    for k in rnn:
        assert generic(k) == 0 and sass[k].count("LDS.128") > 20, (k, generic(k))


def test_there_are_cuda_sources():
    assert CU, "csrc/cuda holds no .cu files"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not agf.backends()["cuda"][0], reason="needs the CUDA extension and a GPU")
def test_cuda_sampler_matches_reference():
    from audiogen_fast import _cuda
    from audiogen_fast.sampling import mulaw_decode, sample_softmax

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(513, 256, generator=g) * 3
    u = torch.rand(513, generator=g)
    ref = sample_softmax(logits, u)
    got = _cuda.sample_softmax(logits.cuda(), u.cuda()).cpu()
    assert (got != ref).sum().item() <= 1
    k = torch.randint(0, 256, (1000,), generator=g)
    assert np.allclose(_cuda.mulaw_decode(k.cuda()).cpu().numpy(), mulaw_decode(k.numpy()), atol=1e-7)
    with pytest.raises(ValueError):
        _cuda.sample_softmax(logits.cuda(), u[:5].cuda())
