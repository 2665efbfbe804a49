#!/usr/bin/env bash
# Second device call of a session, after gpu_run.sh found faults: build, find which configurations
# of the CUDA WaveNet tensor-core variant fault (each in its own process), run the smallest under
# compute-sanitizer, then the CUDA tests the fault had poisoned, each file in its own process.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/agf_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
[[ "$cap" == 90 ]] && cap=90a
export AUDIOGEN_FAST_CUDA=1 AUDIOGEN_FAST_CUDA_ARCH=${AUDIOGEN_FAST_CUDA_ARCH:-$cap}
T0=$(date +%s)
stamp() { echo "$(date +%T) [$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/steps.txt"; }
stamp build
python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
PYTEST=(python3 -m pytest -q -p no:cacheprovider -rfEs)
stamp "wavernn cuda tests"
timeout 100 "${PYTEST[@]}" --timeout=60 tests/test_cuda_wavernn.py -k "gpu" > "$OUT/pytest_wavernn.log" 2>&1
echo "rc=$?" >> "$OUT/pytest_wavernn.log"; tail -8 "$OUT/pytest_wavernn.log"
stamp "probes"
for c in "tiny-wavenet 16" "tiny-wavenet 13" "W1 16" "W1 13" "tiny-wavenet 16 l2 fp16 64" "tiny-wavenet 16 dsmem"; do
    CUDA_LAUNCH_BLOCKING=1 timeout 40 python3 benchmarks/cuda_probe.py $c 2>&1 | grep -v Warning | tail -3 | tee -a "$OUT/probe.log"
    echo "[$c] rc=${PIPESTATUS[0]}" | tee -a "$OUT/probe.log"
done
stamp "sanitizer"
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
echo "compute-sanitizer: $CS"
[[ -n "$CS" ]] && timeout 150 "$CS" --tool memcheck --print-limit 4 python3 benchmarks/cuda_probe.py tiny-wavenet 13 \
    > "$OUT/sanitizer.log" 2>&1
grep -v "^=========     Host Frame" "$OUT/sanitizer.log" | head -60
stamp "other cuda tests"
timeout 70 "${PYTEST[@]}" --timeout=60 tests/test_cuda.py tests/test_cuda_wavenet.py -k "gpu and not compile and not tensor_core" \
    > "$OUT/pytest_cuda_rest.log" 2>&1
echo "rc=$?" >> "$OUT/pytest_cuda_rest.log"; tail -8 "$OUT/pytest_cuda_rest.log"
stamp "triton wavernn tests"
timeout 60 "${PYTEST[@]}" --timeout=50 -n 4 tests/test_triton_wavernn.py > "$OUT/pytest_triton_wavernn.log" 2>&1
echo "rc=$?" >> "$OUT/pytest_triton_wavernn.log"; tail -6 "$OUT/pytest_triton_wavernn.log"
stamp done
