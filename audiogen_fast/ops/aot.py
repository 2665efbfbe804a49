"""Compile a Triton kernel launch for a GPU architecture without a GPU, and read what the GPU would
get: registers and spill stack per thread, shared memory, and how the compiler lowered the dots
(tensor-core MMA, async copies of a pipelined loop).

Most of this project's sessions have no GPU, and a Triton kernel that spills registers runs several
times slower than one that does not (the CUDA kernels are checked for that with ptxas -v in
tests/test_cuda.py). Triton's own compiler (with its bundled ptxas) runs on any machine:

    with capture() as launches:          # launches are recorded instead of run
        loop.run_chunk(cond, hist, x, 0, noise=u)   # CPU tensors, the real launcher code
    info = compile_launch(launches[0], arch=90)
    info.regs, info.stack, info.shared, info.mma, info.async_copies

The signature is derived from the recorded arguments: tensors become pointers of their dtype
(assumed 16-byte aligned, as torch's allocations are), Python ints i32 (i64 past 2**31), floats
fp32; constexprs are the launch's keyword arguments. The launch is not specialised on integer
values (Triton specialises ints equal to 1 and multiples of 16 at run time; the difference is a
few instructions, not the register budget).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess

import torch

_DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int32: "i32",
           torch.int64: "i64", torch.int8: "i8", torch.uint8: "u8", torch.bool: "i1"}
_LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg")


@dataclasses.dataclass
class Launch:
    """One recorded launch: the JIT function, its positional and keyword arguments, the grid."""
    fn: object
    args: tuple
    kwargs: dict
    grid: object


@dataclasses.dataclass
class Compiled:
    name: str
    regs: int            # registers per thread
    stack: int           # bytes of local stack per thread (spills; 0 when nothing spills)
    shared: int          # bytes of shared memory per program
    mma: int             # tensor-core instructions in the SASS-bound PTX (mma.sync and wgmma)
    async_copies: int    # cp.async / TMA copies (a software-pipelined loop prefetches with them)
    num_warps: int
    ttgir: str
    ptx: str

    def summary(self) -> str:
        return (f"{self.name}: {self.regs} registers, {self.stack} B stack, {self.shared} B shared, "
                f"{self.mma} mma, {self.async_copies} async copies, {self.num_warps} warps")


@contextlib.contextmanager
def capture():
    """Within the block, `kernel[grid](...)` of any Triton JIT function records a Launch in the
    yielded list instead of running (the launchers' own checks and argument plumbing still run)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    launches: list[Launch] = []
    classes = (JITFunction, InterpretedFunction)  # the second under TRITON_INTERPRET=1
    orig = [c.__dict__.get("__getitem__") for c in classes]

    def getitem(self, grid):
        return lambda *args, **kwargs: launches.append(Launch(self, args, kwargs, grid))

    for c in classes:
        c.__getitem__ = getitem
    try:
        yield launches
    finally:
        for c, o in zip(classes, orig):
            if o is None:
                del c.__getitem__
            else:
                c.__getitem__ = o


def _arg_type(v):
    if isinstance(v, torch.Tensor):
        return "*" + _DTYPES[v.dtype]
    if isinstance(v, bool):
        return "i1"
    if isinstance(v, int):
        return "i32" if -2 ** 31 <= v < 2 ** 31 else "i64"
    if isinstance(v, float):
        return "fp32"
    raise TypeError(f"cannot type a kernel argument of {type(v).__name__}")


def _tool(name: str) -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def compile_launch(launch: Launch, arch: int = 90, **override) -> Compiled:
    """Compile a recorded launch for sm_<arch> (90: Hopper; 90 compiles as sm_90a). override:
    launch options (num_warps, num_stages, ...) or constexprs to change."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from triton.runtime.jit import JITFunction

    fn = launch.fn
    if not isinstance(fn, JITFunction):
        raise RuntimeError(f"{type(fn).__name__} cannot be compiled: run without TRITON_INTERPRET=1 "
                           "(`python -m audiogen_fast.ops.aot` does)")
    names = fn.arg_names
    kw = dict(launch.kwargs)
    kw.update(override)
    opts = {k: kw.pop(k) for k in list(kw) if k in _LAUNCH_OPTIONS}
    bound = dict(zip(names, launch.args))
    bound.update(kw)
    missing = [n for n in names if n not in bound]
    if missing:
        raise TypeError(f"{fn.__name__}: no value for {', '.join(missing)}")
    const_idx = {i for i, p in enumerate(fn.params) if p.is_constexpr}
    sig, constexprs, attrs = {}, {}, {}
    for i, n in enumerate(names):
        v = bound[n]
        if i in const_idx:
            sig[n] = "constexpr"
            constexprs[(i,)] = v
        else:
            sig[n] = _arg_type(v)
            if isinstance(v, torch.Tensor):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=attrs)
    ck = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=opts)
    res = _resource_usage(ck.asm["cubin"])
    ptx = ck.asm["ptx"]
    return Compiled(name=fn.__name__, regs=res["REG"], stack=res["STACK"], shared=int(ck.metadata.shared),
                    mma=len(re.findall(r"\b(?:mma\.sync|wgmma\.mma_async)", ptx)),
                    async_copies=len(re.findall(r"\bcp\.async\.(?:ca|cg|bulk)", ptx)),
                    num_warps=int(ck.metadata.num_warps), ttgir=ck.asm["ttgir"], ptx=ptx)


def _resource_usage(cubin: bytes) -> dict:
    """REG / STACK / SHARED of the cubin's kernel, from the cuobjdump Triton ships."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", f.name], capture_output=True,
                             text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+)", out)
    if not m:
        raise RuntimeError(f"no resource usage in cuobjdump's output:\n{out}")
    return dict(REG=int(m.group(1)), STACK=int(m.group(2)), SHARED=int(m.group(3)))


def available() -> tuple[bool, str]:
    """(True, "") where Triton's NVIDIA backend and its cuobjdump are installed (no GPU needed)."""
    import importlib.util

    if importlib.util.find_spec("triton") is None:  # pragma: no cover - triton is a dependency
        return False, "triton is not installed"
    if not os.path.exists(_tool("cuobjdump")):
        return False, "Triton's cuobjdump is not installed"
    return True, ""


# ---- the standard configs' kernels, as the launchers configure them ---------------------------

def standard_launches():
    """(name, Launch) for every Triton kernel at the standard configs with the launchers' default
    settings, recorded from CPU models (nothing runs)."""
    from .. import presets
    from .diffwave_layer import DiffWaveTriton
    from .wavenet_loop import WaveNetLoop
    from .wavenet_loop_mm import WaveNetLoopMM
    from .wavernn_loop import WaveRNNLoop

    def wavenet(loop, B=1):
        hist, x = loop.new_state(B, 0.0)
        with capture() as ls:
            loop.run_chunk(torch.zeros(B, 4, loop.L, loop.G), hist, x, 0, noise=torch.rand(B, 4, loop.consts["NZ"]))
        return ls[0]

    def wavernn(loop, cfg):
        with capture() as ls:
            loop.run_chunk(torch.zeros(1, 8, cfg.n_mels), torch.zeros(1, 8, 4 * cfg.aux_dims), loop.new_state(1),
                           noise=torch.rand(1, 8))
        return ls[0]

    def diffwave(k):
        with capture() as ls:
            k.denoise_step(torch.zeros(1, 256), torch.zeros(1, k.M, 256, dtype=k.dtype), torch.zeros(k.L, k.C),
                           k.buffers(1, 256), 1.0, 1.0, 0.1, torch.zeros(1, 256))
        return ls[0], ls[-1]

    half = {"fp32": torch.float32, "fp16": torch.float16}
    for cfg in ("W1", "W2", "W4"):
        model = presets.build(cfg, seed=0)
        for dn, dt in half.items():
            yield f"{cfg} wavenet_loop {dn}", wavenet(WaveNetLoop(model, dtype=dt))
        if cfg == "W1":
            for bm in (16, 32):
                yield f"W1 wavenet_loop_mm{bm} fp16", wavenet(WaveNetLoopMM(model, dtype=torch.float16, streams_per_program=bm), bm)
    model = presets.build("R2", seed=0)
    for dn, dt in half.items():
        yield f"R2 wavernn_loop {dn}", wavernn(WaveRNNLoop(model, dtype=dt), model.config)
    model = presets.build("D1", seed=0)
    for dn, dt, prec in (("bf16", torch.bfloat16, "ieee"), ("fp16", torch.float16, "ieee"),
                         ("fp32-tf32", torch.float32, "tf32"), ("fp32", torch.float32, "ieee")):
        layer, head = diffwave(DiffWaveTriton(model, dtype=dt, precision=prec))
        yield f"D1 diffwave_layer {dn}", layer
        yield f"D1 diffwave_head {dn}", head


def main(argv=None):
    """python -m audiogen_fast.ops.aot [--json] [--arch 90] [NAME_FILTER]: compile the standard
    configs' Triton kernels for sm_<arch> here and print their resource usage."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("filter", nargs="?", default="")
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("unset TRITON_INTERPRET: the interpreter's kernels cannot be compiled")
    rows = {}
    for name, launch in standard_launches():
        if a.filter in name:
            c = compile_launch(launch, arch=a.arch)
            rows[name] = dict(regs=c.regs, stack=c.stack, shared=c.shared, mma=c.mma, async_copies=c.async_copies,
                              num_warps=c.num_warps)
            if not a.json:
                print(f"{name:28s} {c.summary()}", flush=True)
    if a.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
