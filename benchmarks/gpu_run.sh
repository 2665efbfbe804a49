#!/usr/bin/env bash
# Everything the GPU machine does: build, GPU tests, benchmarks. Results under $OUT.
# One device command may run at most 10 minutes: run the steps in two calls, e.g.
#   AGF_STEPS=build,tests bash benchmarks/gpu_run.sh      (build ~2 min, tests ~3-5 min)
#   AGF_STEPS=bench AGF_BENCH_ARGS="--quick --configs W1,R2,D1" bash benchmarks/gpu_run.sh
# (the built extension stays on the device between calls while it is warm; "bench" rebuilds if
# the extension is missing). Default: all steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/agf_out}
STEPS=${AGF_STEPS:-build,tests,bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
has() { [[ ",$STEPS," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv | tee "$OUT/gpu.txt"
if has build || ! python3 -c "import audiogen_fast._C_cuda" 2>/dev/null; then
    python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi
python3 -c "import audiogen_fast as a; print(a.backends())"
if has tests; then
    # the CUDA persistent kernels first, time-boxed (a hung kernel traps after ~10 s; timeout is the backstop)
    timeout 300 python3 -m pytest tests/test_cuda_wavenet.py tests/test_cuda_wavernn.py tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_cuda.log" | tail -25
    timeout 300 python3 -m pytest tests/test_triton_wavenet.py tests/test_triton_diffwave.py tests/test_triton_wavernn.py ${AGF_TESTS:-} -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -25
fi
if has bench; then
    timeout ${AGF_BENCH_TIMEOUT:-420} python3 benchmarks/gpu_check.py --out "$OUT" ${AGF_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
fi
