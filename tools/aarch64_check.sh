#!/usr/bin/env bash
# Build the C++ extensions for aarch64 (Linux) and run tests with them under qemu, on an x86-64
# Debian machine with apt and PyPI at hand (no aarch64 hardware needed). Slow: torch alone takes
# ~30 s to import under qemu, so pick the tests (default: the C++ loops and kernels).
#
#   bash tools/aarch64_check.sh                          # the C++ tests
#   bash tools/aarch64_check.sh tests/test_stream.py     # others
#
# Steps: the GCC cross compiler and qemu-user-static (apt); Debian bookworm's arm64 python3.11 and
# the libraries it needs, unpacked into a folder (apt-get download, dpkg -x: nothing is installed
# for arm64 system-wide); aarch64 wheels (pip download: torch 2.5.1, the last CPU-only aarch64
# torch on PyPI, within pyproject's torch>=2.1); a copy of the working tree built by that python
# with the cross compiler (setup.py as a user's `pip install` runs it: it finds none of the x86
# SIMD flags, so the x86 kernel files compile to their portable forwards); then pytest under qemu.
# Everything goes under $AGF_ARM (default /tmp/agf_arm64) and is reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM=${AGF_ARM:-/tmp/agf_arm64}
ROOTFS=$ARM/root SITE=$ARM/site WHL=$ARM/wheels SRC=$ARM/src
mkdir -p "$ARM" "$WHL"

command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64-static >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++-aarch64-linux-gnu qemu-user-static

if [[ ! -x $ROOTFS/usr/bin/python3.11 ]]; then
    mkdir -p "$ARM/lists/partial" "$ARM/debs"
    o="-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists=$ARM/lists"
    apt-get $o update -q
    (cd "$ARM/debs" && apt-get $o download python3.11-minimal libpython3.11-minimal libpython3.11-stdlib \
        libpython3.11-dev libpython3.11 libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 \
        liblzma5 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1 libdb5.3 libgdbm6 libnsl2 \
        libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libgomp1)
    for f in "$ARM"/debs/*.deb; do dpkg -x "$f" "$ROOTFS"; done
fi

if [[ ! -d $SITE/torch ]]; then
    plat="--platform manylinux2014_aarch64"
    for n in 17 26 27 28 31 34; do plat="$plat --platform manylinux_2_${n}_aarch64"; done
    pip_dl() { python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp $plat --platform any -d "$WHL" "$@"; }
    pip_dl --no-deps torch==2.5.1   # its CUDA requirements are marked for x86_64 hosts: named below instead
    pip_dl "numpy<2.3" soundfile soxr safetensors tqdm pytest pytest-benchmark hypothesis pybind11 setuptools \
        wheel filelock typing-extensions sympy==1.13.1 networkx jinja2 fsspec
    mkdir -p "$SITE"
    for w in "$WHL"/*.whl; do unzip -q -o "$w" -d "$SITE"; done   # a wheel is a zip of site-packages
fi

# the aarch64 python as a command; its argv[0] is this wrapper, so sys.executable is too and the
# tests' subprocesses (sys.executable -c ..., taskset ... sys.executable) come back through qemu
printf '#!/bin/bash\nexport PYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH}\nexec qemu-aarch64-static -L %s -0 %s %s "$@"\n' \
    "$SITE" "$ROOTFS" "$ARM/python" "$ROOTFS/usr/bin/python3.11" > "$ARM/python"
chmod +x "$ARM/python"
py() { "$ARM/python" "$@"; }

# the working tree (tracked and untracked files git does not ignore), built there for aarch64:
# that python's setup.py calls aarch64-linux-gnu-g++ (Debian's sysconfig names it), an x86-64
# program the kernel runs natively; the arm64 headers come after the cross compiler's own
rm -rf "$SRC" && mkdir -p "$SRC"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$SRC"
X="-idirafter $ROOTFS/usr/include"
(cd "$SRC" && CC="aarch64-linux-gnu-gcc $X" CXX="aarch64-linux-gnu-g++ $X" LDSHARED="aarch64-linux-gnu-gcc -shared" \
    LDCXXSHARED="aarch64-linux-gnu-g++ -shared" AUDIOGEN_FAST_CUDA=0 py setup.py build_ext --inplace > "$ARM/build.log" 2>&1) ||
    { tail -30 "$ARM/build.log"; exit 1; }
file "$SRC"/audiogen_fast/_C_cpu*.so
cd "$SRC"
py -c "import platform; from audiogen_fast import _cpp; print(platform.machine(), _cpp.kernels_name(), _cpp.bf16_kernel(), _cpp.int8_kernel())"
if (( $# == 0 )); then
    set -- tests/test_cpp_gemm.py tests/test_cpp_gate.py tests/test_cpp_diffwave.py tests/test_cpp_wavernn.py \
        tests/test_cpp_wavenet.py tests/test_cpp_bf16.py tests/test_cpp_int8.py
fi
py -m pytest -q -p no:cacheprovider "$@"
