"""Build script: the C++ CPU extension always, the CUDA extension where CUDA is present.

* ``audiogen_fast._C_cpu``  — csrc/cpu/*.cpp + csrc/bindings_cpu.cpp (pybind11, no libtorch).
  Files named ``*_avx2.cpp`` are compiled with -mavx2 -mfma -mf16c, ``*_avx512bf16.cpp`` with
  -mavx512f -mavx512bf16, ``*_avx512vnni.cpp`` with -mavx512f -mavx512bw -mavx512vnni (where the
  compiler has them), and only called after a run-time CPU check; everything else is the target's
  baseline ISA (never -march=native). On other targets (aarch64: AWS Graviton, Ampere, NVIDIA
  Grace) the compiler takes none of these flags, those files compile to forwards to the portable
  kernels and exact emulations: plain C++ (the fp32 products in GCC / Clang vector types, NEON there).
  Files named ``*_neon.cpp`` get -march=armv8.2-a+dotprod where the compiler takes it (aarch64),
  and are called only on CPUs with those instructions (a run-time check, as on x86).
  AUDIOGEN_FAST_X86_SIMD=0 leaves those flags out on x86-64 too: the build a non-x86 target
  gets (tests/test_portable_build.py runs it, and compiles the sources for aarch64 Linux and macOS).
* ``audiogen_fast._C_cuda_emu`` — csrc/cuda_emu_bindings.cpp: the CUDA kernels' source built for
  the CPU on a fiber emulator (tests of the kernels' logic without a GPU). Linux only (its fibers
  are ucontext stacks, deprecated on macOS); the tests that need it skip without it.
* ``audiogen_fast._C_cuda`` — csrc/cuda/*.cu + csrc/bindings_cuda.cpp, built when
  AUDIOGEN_FAST_CUDA=1, or when it is unset and both nvcc and an NVIDIA GPU are found.
  AUDIOGEN_FAST_CUDA=0 never builds it. cudart is linked statically so the module does not
  depend on where (or whether) a CUDA runtime library is installed.
"""
import glob
import os
import shutil
import subprocess
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext, has_flag
from setuptools import setup

# compile the sources of an extension in parallel (all cores unless AUDIOGEN_FAST_BUILD_JOBS says):
# the CUDA files take most of a GPU machine's build time
ParallelCompile("AUDIOGEN_FAST_BUILD_JOBS", default=0).install()

HERE = os.path.dirname(os.path.abspath(__file__))


def _rel(paths):
    return sorted(os.path.relpath(p, HERE) for p in paths)


def _find_nvcc():
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home and os.path.exists(os.path.join(cuda_home, "bin", "nvcc")):
        return os.path.join(cuda_home, "bin", "nvcc")
    return shutil.which("nvcc")


def _gpu_present():
    if os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            return subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode == 0
        except Exception:
            return False
    return False


def _want_cuda():
    flag = os.environ.get("AUDIOGEN_FAST_CUDA", "").strip()
    nvcc = _find_nvcc()
    if flag == "0":
        return None
    if flag == "1":
        if not nvcc:
            sys.exit("AUDIOGEN_FAST_CUDA=1 but nvcc was not found (set CUDA_HOME or put nvcc on PATH)")
        return nvcc
    return nvcc if (nvcc and _gpu_present()) else None


# Architectures for the CUDA build: Hopper (sm_90a, for wgmma/cluster features) and a
# PTX target so newer GPUs can JIT it. Override with AUDIOGEN_FAST_CUDA_ARCH="80;90a".
def _cuda_gencode():
    archs = os.environ.get("AUDIOGEN_FAST_CUDA_ARCH", "80;90a").split(";")
    flags = []
    for a in archs:
        a = a.strip()
        if a:
            flags.append(f"-gencode=arch=compute_{a},code=sm_{a}")
    last = archs[-1].strip()
    flags.append(f"-gencode=arch=compute_{last},code=compute_{last}")
    return flags


class BuildExt(build_ext):
    """Adds per-file flags (AVX2 files) and compiles .cu sources with nvcc."""

    def build_extensions(self):
        compiler = self.compiler
        # each set only where the compiler takes it (none on aarch64: the files then compile their
        # portable forwards) and AUDIOGEN_FAST_X86_SIMD is not 0
        simd = os.environ.get("AUDIOGEN_FAST_X86_SIMD", "").strip() != "0"
        avx2_flags = ["-mavx2", "-mfma", "-mf16c"] if simd and has_flag(compiler, "-mavx2") else []
        bf16_flags = ["-mavx512f", "-mavx512bf16"] if simd and has_flag(compiler, "-mavx512bf16") else []
        vnni_flags = (["-mavx512f", "-mavx512bw", "-mavx512vnni"]
                      if simd and has_flag(compiler, "-mavx512vnni") else [])
        # aarch64's dot-product instructions (an x86 compiler rejects the flag: no flags, forwards)
        neon_flags = ["-march=armv8.2-a+dotprod"] if has_flag(compiler, "-march=armv8.2-a+dotprod") else []
        original_compile = compiler._compile
        nvcc = getattr(self, "_nvcc", None)

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if src.endswith(".cu"):
                cmd = [nvcc, "-c", src, "-o", obj, "-O3", "-std=c++17", "--use_fast_math",
                       "-Xcompiler", "-fPIC", "-lineinfo"] + _cuda_gencode() + [
                       a for a in pp_opts if a.startswith("-I")]
                self.spawn(cmd)
                return
            post = list(extra_postargs)
            if src.endswith("_avx2.cpp"):
                post += avx2_flags
            if src.endswith("_avx512bf16.cpp"):
                # without the flags the file compiles to the emulation (csrc/cpu/bf16.h)
                post += bf16_flags
            if src.endswith("_avx512vnni.cpp"):
                # likewise: without the flags, the int8 emulation (csrc/cpu/int8.h)
                post += vnni_flags
            if src.endswith("_neon.cpp"):
                post += neon_flags
            original_compile(obj, src, ext, cc_args, post, pp_opts)

        compiler._compile = _compile
        compiler.src_extensions = list(compiler.src_extensions) + [".cu"]
        super().build_extensions()


# every header: an edited header rebuilds the extensions that may include it (setuptools does not
# scan #include lines itself, so a stale kernel would otherwise survive `build_ext --inplace`)
_HEADERS = _rel(glob.glob(os.path.join(HERE, "csrc", "**", "*.h"), recursive=True)
                + glob.glob(os.path.join(HERE, "csrc", "**", "*.cuh"), recursive=True))

ext_modules = [
    Pybind11Extension(
        "audiogen_fast._C_cpu",
        _rel(glob.glob(os.path.join(HERE, "csrc", "cpu", "*.cpp"))) + ["csrc/bindings_cpu.cpp"],
        include_dirs=["csrc"],
        depends=_HEADERS,
        cxx_std=17,
        # -fno-wrapv undoes Python's -fwrapv: with wrapping int arithmetic GCC cannot prove that
        # a[C + c] walks contiguous memory, and loops such as DiffWave's Winograd transforms
        # and residual / skip updates stayed scalar (gathers of single floats)
        extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-wrapv"],
        extra_link_args=["-pthread"],
    ),
]
if sys.platform.startswith("linux"):
    # the CUDA persistent kernels compiled for the CPU and run by a fiber emulator
    # (csrc/cuda/cuda_emu.h): tests check the kernels' logic on machines without a GPU
    ext_modules.append(Pybind11Extension(
        "audiogen_fast._C_cuda_emu",
        ["csrc/cuda_emu_bindings.cpp"],
        include_dirs=["csrc"],
        depends=_HEADERS,
        cxx_std=17,
        extra_compile_args=["-O2", "-Wno-clobbered", "-U_FORTIFY_SOURCE"],
    ))

_nvcc = _want_cuda()
if _nvcc and not os.path.exists(os.path.join(HERE, "csrc", "bindings_cuda.cpp")):
    _nvcc = None
def _cuda_root(nvcc):
    """The toolkit folder with include/cuda_runtime.h (nvcc may be a wrapper script elsewhere)."""
    cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), "/usr/local/cuda"]
    for c in cands:
        if c and os.path.exists(os.path.join(c, "include", "cuda_runtime.h")):
            return c
    sys.exit(f"CUDA headers (include/cuda_runtime.h) not found near {nvcc}; set CUDA_HOME")


if _nvcc:
    cuda_root = _cuda_root(_nvcc)
    lib_dirs = [d for d in (os.path.join(cuda_root, "lib64"), os.path.join(cuda_root, "lib"),
                            os.path.join(cuda_root, "targets", "x86_64-linux", "lib")) if os.path.isdir(d)]
    ext_modules.append(
        Pybind11Extension(
            "audiogen_fast._C_cuda",
            _rel(glob.glob(os.path.join(HERE, "csrc", "cuda", "*.cu"))) + ["csrc/bindings_cuda.cpp"],
            include_dirs=["csrc", os.path.join(cuda_root, "include")],
            depends=_HEADERS,
            cxx_std=17,
            extra_compile_args=["-O3"],
            library_dirs=lib_dirs,
            libraries=["cudart_static", "dl", "rt", "pthread"],
        )
    )
BuildExt._nvcc = _nvcc

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
