#!/usr/bin/env bash
# Everything the GPU machine does in one call: build, GPU tests, benchmarks. Results under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/agf_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv | tee "$OUT/gpu.txt"
python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
python3 -c "import audiogen_fast as a; print(a.backends())"
# the CUDA persistent kernels first, time-boxed (a hung kernel traps after ~10 s; timeout is the backstop)
timeout 300 python3 -m pytest tests/test_cuda_wavenet.py tests/test_cuda_wavernn.py tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_cuda.log" | tail -25
python3 -m pytest tests/test_triton_wavenet.py tests/test_triton_diffwave.py tests/test_triton_wavernn.py ${AGF_TESTS:-} -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -25
timeout ${AGF_BENCH_TIMEOUT:-420} python3 benchmarks/gpu_check.py --out "$OUT" ${AGF_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
