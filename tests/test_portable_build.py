"""The C++ extension on CPUs other than x86-64 (aarch64: AWS Graviton, Ampere, NVIDIA Grace, Apple
silicon). There the compiler takes none of setup.py's x86 SIMD flags, so the *_avx2 / *_avx512*
files compile to forwards to the portable kernels and the exact product emulations, and the rest
is plain C++ (the fp32 products in GCC / Clang vector types: NEON there). Two checks that CI (x86-64, no cross toolchain of its
own) can run:

1. the same build on this machine (AUDIOGEN_FAST_X86_SIMD=0 leaves the flags out): it loads, says
   it runs the portable kernels and the emulated products, and gives the audio of the main build
   forced onto those paths (AGF_CPU_KERNELS=portable), bit for bit, for every family and dtype;
2. every C++ source compiled for aarch64 Linux and aarch64 macOS by clang (the ziglang package's
   cross compiler), without x86 flags, as setup.py would there: an x86-only construct outside
   the guarded files fails it.

tools/aarch64_check.sh goes further where apt and qemu are at hand: it builds the extension with
a GCC cross compiler and runs the C++ tests under qemu-aarch64 (2026-12-01: they passed)."""
import concurrent.futures
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

import pytest

import audiogen_fast as agf
from conftest import run_python

if not agf.backends()["cpp"][0]:
    pytest.skip("C++ extension not built", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the audio of a small model of each family in each dtype the C++ backend takes, as hex, after the
# names of the kernels in use; `so` (set by the caller, or None) is an extension to load instead of
# the installed one
AUDIO = """
import importlib.util, sys
import numpy as np
if so:
    spec = importlib.util.spec_from_file_location("audiogen_fast._C_cpu", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["audiogen_fast._C_cpu"] = mod   # `from . import _C_cpu` finds this one
import audiogen_fast as agf
from audiogen_fast import _cpp
assert _cpp._ext().__file__ == (so or _cpp._ext().__file__)
print(_cpp.kernels_name(), _cpp.bf16_kernel(), _cpp.int8_kernel())
runs = [("tiny-wavenet", d) for d in ("float32", "float16", "bfloat16", "int8")]
runs += [("tiny-wavernn", d) for d in ("float32", "float16", "bfloat16", "int8")]
runs += [("tiny-diffwave", d) for d in ("float32", "bfloat16")]
for name, dtype in runs:
    m = agf.build(name, seed=3)
    mel = np.random.default_rng(0).standard_normal((2, m.config.n_mels, 5)).astype(np.float32)
    a = agf.Vocoder(m, backend="cpp", device="cpu", dtype=dtype).generate(mel=mel, seed=[1, 2])
    print(name, dtype, a.tobytes().hex())
"""


def _build_without_simd(tmp_path) -> str:
    env = dict(os.environ, AUDIOGEN_FAST_X86_SIMD="0", AUDIOGEN_FAST_CUDA="0")
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"),
                        "--build-temp", str(tmp_path / "tmp")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "kernels_avx2.cpp" in log and "-mavx" not in log   # the commands are logged: no file got the flags
    (so,) = [os.path.join(dp, f) for dp, _, fs in os.walk(tmp_path / "lib") for f in fs if f.startswith("_C_cpu")]
    return so


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the x86 flags' absence: on other machines the main build is that build")
def test_build_without_x86_simd_runs_the_portable_paths(tmp_path):
    so = _build_without_simd(tmp_path)
    ours = run_python(f"so = {so!r}\n" + AUDIO)
    main = run_python("so = None\n" + AUDIO, kernels="portable")
    assert ours[:3] == ["portable", "emulated", "emulated"]
    assert main[:3] == ["portable", "emulated", "emulated"]
    assert len(ours) == 3 + 3 * 10
    assert ours[3:] == main[3:]   # the forwards reach the same code: the same audio, bit for bit


def _zig():
    try:
        import ziglang  # noqa: F401  (the test extra; a clang that cross-compiles C++ for many targets)
    except ImportError:
        return None
    return [sys.executable, "-m", "ziglang", "c++"]


# every C++ source of the extensions setup.py builds on that target (the emulator on Linux only)
def _sources(target):
    cpu = sorted(os.path.join("csrc", "cpu", f) for f in os.listdir(os.path.join(ROOT, "csrc", "cpu"))
                 if f.endswith(".cpp"))
    return cpu + ["csrc/bindings_cpu.cpp"] + (["csrc/cuda_emu_bindings.cpp"] if "linux" in target else [])


@pytest.mark.parametrize("target", ["aarch64-linux-gnu", "aarch64-macos"])
def test_sources_compile_for_aarch64(target, tmp_path):
    zig = _zig()
    if zig is None:
        pytest.skip("ziglang is not installed (pip install ziglang; it is in the test extra)")
    import pybind11

    inc = ["-Icsrc", "-I" + pybind11.get_include(), "-I" + sysconfig.get_paths()["include"]]

    def compile_one(job):
        # -O0: what is checked is that it compiles, not its code; -U_FORTIFY_SOURCE as setup.py
        # gives the emulator (zig defines it for macOS)
        src, flags = job
        obj = os.path.basename(src) + ("-" + flags[0].split("+")[-1] if flags else "") + ".o"
        cmd = zig + ["-target", target, "-std=c++17", "-O0", "-U_FORTIFY_SOURCE", "-c", src,
                     "-o", str(tmp_path / obj)] + flags + inc
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        return src, r.returncode, r.stderr

    # every source as setup.py compiles it without per-file flags, and the aarch64 kernel files
    # (*_neon.cpp) also with the dot-product extension on, as setup.py's -march=armv8.2-a+dotprod
    # does there (their NEON code, not the forwards; zig's driver spells it -mcpu=generic+dotprod)
    jobs = [(src, []) for src in _sources(target)]
    jobs += [(src, ["-mcpu=generic+dotprod", "-DAGF_REQUIRE_DOTPROD"]) for src in _sources(target)
             if src.endswith("_neon.cpp")]
    assert any(flags for _, flags in jobs)
    with concurrent.futures.ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as ex:
        results = list(ex.map(compile_one, jobs))
    failed = [f"{src}:\n{err[-2000:]}" for src, rc, err in results if rc != 0]
    assert not failed, "\n".join(failed)
    assert len(results) >= 12
    # the objects are for the target, not for this machine
    obj = (tmp_path / "bindings_cpu.cpp.o").read_bytes()
    if "linux" in target:
        assert obj[:4] == b"\x7fELF" and int.from_bytes(obj[18:20], "little") == 183   # EM_AARCH64
    else:
        assert int.from_bytes(obj[:4], "little") == 0xFEEDFACF and int.from_bytes(obj[4:8], "little") == 0x0100000C


def test_no_x86_intrinsics_outside_the_guarded_files():
    """x86 intrinsics live only in the files that setup.py gives the SIMD flags, inside their
    `#if defined(__AVX2__) ...` guards; cpu_features.cpp's CPU checks are guarded by __x86_64__.
    (The compile test above catches the same where ziglang is installed; this is its cheap half.)"""
    import re

    guarded = ("_avx2.cpp", "_avx512bf16.cpp", "_avx512vnni.cpp")
    bad = []
    for dp, _, fs in os.walk(os.path.join(ROOT, "csrc")):
        for f in fs:
            if not f.endswith((".cpp", ".h")) or "cuda" in dp:
                continue
            text = open(os.path.join(dp, f)).read()
            if f.endswith(guarded):
                first_if = text.find("#if defined(__AVX")
                first_use = min([i for i in (text.find("#include <immintrin.h>"), text.find("_mm")) if i >= 0],
                                default=len(text))
                if first_if < 0 or first_use < first_if:
                    bad.append(f + ": intrinsics before its #if defined(__AVX...) guard")
            elif re.search(r"immintrin|\b_mm\d*_|__builtin_ia32", text):
                bad.append(f + ": x86 intrinsics in a file compiled for every target")
    assert not bad, bad
