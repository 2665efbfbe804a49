"""The Triton kernels compiled for a Hopper GPU (sm_90) on this CPU machine: Triton's compiler and
its bundled ptxas run anywhere (audiogen_fast/ops/aot.py). What a GPU run cannot show before it
happens, and a CPU test can: a kernel at the standard configs with the launchers' defaults spills
no registers (a spilling kernel ran several times slower on the GPU: the WaveRNN loop, 4.3 KB of
stack a thread, 0.9x eager on the H200; exact-fp32 DiffWave, 45 KB, 0.05x eager on the H100),
fits an SM's shared memory, and the multi-stream WaveNet loop prefetches its next layer's weights
(the compiler software-pipelines the layer loops). Compiled with the Triton installed here (3.9);
the GPU machine's Triton (3.6) allocates registers its own way, so this is a strong hint, not a
measurement."""
import json
import os
import subprocess
import sys

import pytest

from audiogen_fast.ops import aot

ok, why = aot.available()
pytestmark = pytest.mark.skipif(not ok, reason=why)

SMEM_PER_BLOCK = 227 * 1024  # an H100 / H200 block's most shared memory


def _json_of(args):
    """The last stdout line (JSON) of a Python child without TRITON_INTERPRET (conftest sets it:
    the interpreter's kernels cannot be compiled)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compile(filter_=""):
    return _json_of(["-m", "audiogen_fast.ops.aot", "--json", filter_])


@pytest.fixture(scope="module")
def usage():
    return _compile()


def test_every_standard_kernel_compiles_for_sm90_without_spills(usage):
    names = set(usage)
    for fam in ("W1 wavenet_loop fp16", "W4 wavenet_loop fp32", "W1 wavenet_loop_mm16 fp16", "R2 wavernn_loop fp32",
                "D1 diffwave_layer bf16", "D1 diffwave_layer fp32", "D1 diffwave_head fp32-tf32"):
        assert fam in names
    for name, u in usage.items():
        assert u["shared"] <= SMEM_PER_BLOCK, (name, u)
        if "_mm" in name:
            # the multi-stream loop keeps up to 128 B of its once-a-step sampler on the stack
            # (the [BM, 256] softmax rows); its layer loop, the hot part, does not spill
            assert u["stack"] <= 128, (name, u)
        else:
            assert u["stack"] == 0, (name, u)


def test_tensor_core_kernels_use_mma_and_the_mm_loop_is_pipelined(usage):
    for name in ("W1 wavenet_loop_mm16 fp16", "D1 diffwave_layer bf16", "D1 diffwave_layer fp32-tf32"):
        assert usage[name]["mma"] > 0, name
    assert usage["D1 diffwave_layer fp32"]["mma"] == 0  # exact fp32: FMA products
    # the layer loop's weight tiles arrive by async copies one layer ahead (LSTAGES = 2 for W1):
    # without the pipelining only the output stack's loop has them
    from audiogen_fast import presets
    from audiogen_fast.ops.wavenet_loop_mm import WaveNetLoopMM

    # the single-stream loop too (no dots: plain loads become async copies); W4's layers do not
    # fit an SM's shared memory twice, its loop is not pipelined
    assert usage["W1 wavenet_loop fp16"]["async_copies"] > 0 and usage["W2 wavenet_loop fp32"]["async_copies"] > 0
    assert usage["W4 wavenet_loop fp16"]["async_copies"] == 0
    assert WaveNetLoopMM(presets.build("W1", seed=0)).mm_consts["LSTAGES"] == 2
    assert WaveNetLoopMM(presets.build("W4", seed=0)).mm_consts["LSTAGES"] == 1  # 262 KB a layer in fp16
    one = _compile_mm_stages()
    assert one["2"] > one["1"] > 0


def _compile_mm_stages():
    code = ("import json\n"
            "from audiogen_fast.ops import aot\n"
            "launch = dict(aot.standard_launches())['W1 wavenet_loop_mm16 fp16']\n"
            "print(json.dumps({s: aot.compile_launch(launch, LSTAGES=s).async_copies for s in (1, 2)}))\n")
    return _json_of(["-c", code])


def test_capture_records_instead_of_running():
    """capture() swaps the launch for a record and restores it after the block."""
    import triton
    import triton.language as tl

    @triton.jit
    def k(x_ptr, N: tl.constexpr):
        pass

    import torch

    t = torch.zeros(4)
    before = type(k).__getitem__
    with aot.capture() as ls:
        k[(1,)](t, N=4)
    assert len(ls) == 1 and ls[0].args[0] is t and ls[0].kwargs == {"N": 4} and ls[0].grid == (1,)
    assert aot._arg_type(t) == "*fp32" and aot._arg_type(3) == "i32" and aot._arg_type(2 ** 40) == "i64"
    assert aot._arg_type(0.5) == "fp32"
    if os.environ.get("TRITON_INTERPRET") == "1":  # the interpreter's kernels do not compile
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
            aot.compile_launch(ls[0])
    assert type(k).__getitem__ is before  # launches run again after the block
    with pytest.raises(TypeError, match="cannot type"):
        aot._arg_type("x")
