#!/usr/bin/env bash
# Everything the GPU machine does, in ONE device call: build, GPU tests, quick timings.
#
#   bash benchmarks/gpu_run.sh            # on the lent machine; results and logs under $OUT
#
# Sized for this workplace's device budget: 15 minutes per session in all, the machine's start
# (1-2 min) and the transfers included, at most 10 minutes per command. So every step runs
# against one deadline, AGF_DEADLINE_S seconds (default 540) after the script starts, each
# step getting what the earlier ones left, in order of what matters most:
#   1. build (CUDA extension for this GPU's architecture only, all cores)      ~1-2 min
#   2. the CUDA persistent kernels' GPU tests (issue 5; first run on an H200, 2026-11-30)
#   3. the Triton kernels' tests on the GPU (issue 4; 4 pytest workers: compile-bound)
#   4. gpu_check.py --quick (W1, R2, D1 unless AGF_CONFIGS says; writes the results JSON
#      after each config, so a step cut short still leaves what it measured; W1 includes the
#      CUDA kernel's per-phase profile)
#   5. the user-facing GPU paths of issue 6: `audiogen-fast bench --device cuda` (its JSON under
#      cli/), `bench --streams 1,64,256` (issue 9: W1 streams through open_streams(); table in cli.log)
#      and the pytest-benchmark suite on the GPU (no torch.compile cases: minutes each)
#   6. slow: the D1-size fp32 Triton test (ptxas takes minutes on its exact-fp32 kernel), with
#      whatever time is left
#   then benchmarks/gpu_summary.py on the results JSON: predictions vs measured, floors, profiles
# Per-test timeouts (pytest-timeout) keep one hung kernel from eating the step.
# AGF_STEPS=build,cuda,triton,bench,cli,slow picks steps (the build is redone if the extension is missing).
# Files back (at most 8): build.log, pytest_cuda.log, pytest_triton.log, bench.log, cli.log,
# steps.txt (with the GPU's clocks), the results JSON <device>-<date>-<commit>.json and cli/<...>.json.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/agf_out}
STEPS=${AGF_STEPS:-build,cuda,triton,bench,cli,slow}
DEADLINE=$(( $(date +%s) + ${AGF_DEADLINE_S:-540} ))
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
has() { [[ ",$STEPS," == *",$1,"* ]]; }
left() { echo $(( DEADLINE - $(date +%s) )); }
# seconds for a step: what is left minus what later steps need at least (arg 1), capped (arg 2),
# and never under 30 s (a step that starts always gets a real time box: `timeout 0` is none)
budget() { local b=$(( $(left) - $1 )); (( b > $2 )) && b=$2; (( b < 30 )) && b=30; echo $b; }
stamp() { echo "$(date +%T) [$(left) s left] $*" | tee -a "$OUT/steps.txt"; }

nvidia-smi --query-gpu=name,compute_cap,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv | tee -a "$OUT/steps.txt"
# this GPU's architecture only (nvcc time halves): "9.0" -> 90a (Hopper's wgmma/cluster features)
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
[[ "$cap" == 90 ]] && cap=90a
export AUDIOGEN_FAST_CUDA=1 AUDIOGEN_FAST_CUDA_ARCH=${AUDIOGEN_FAST_CUDA_ARCH:-$cap}

if has build || ! python3 -c "import audiogen_fast._C_cuda" 2>/dev/null; then
    stamp "build (sm_$AUDIOGEN_FAST_CUDA_ARCH)"
    python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi
python3 -c "import audiogen_fast as a; print(a.backends())" | tee -a "$OUT/steps.txt"
PYTEST=(python3 -m pytest -q -p no:cacheprovider -rfEs --durations=15)

if has cuda; then
    t=$(budget 260 180)
    stamp "CUDA kernel tests on the GPU (${t} s)"
    # "gpu" selects the GPU parametrisations and the GPU-marked tests; the emulator cases ran in CI.
    # One process per file: a kernel fault poisons the CUDA context, failing every later test of
    # its process (2026-11-30: one fault showed as 25 failures)
    end=$(( $(date +%s) + t ))
    : > "$OUT/pytest_cuda.log"
    for f in tests/test_cuda_wavenet.py tests/test_cuda_wavernn.py tests/test_cuda.py; do
        ft=$(( end - $(date +%s) )); (( ft < 20 )) && ft=20
        timeout "$ft" "${PYTEST[@]}" --timeout=60 "$f" -k "gpu and not compile" >> "$OUT/pytest_cuda.log" 2>&1
        echo "$f rc=$?" | tee -a "$OUT/pytest_cuda.log"
    done
    grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_cuda.log" | tail -20
fi
if has triton; then
    t=$(budget 150 150)
    stamp "Triton kernel tests on the GPU (${t} s)"
    # the D1-size fp32 test waits minutes on ptxas ("ieee" dots): it runs last, in the slow step.
    # Files in order of what has not yet passed on a GPU (workers take tests in collection order,
    # and the step ran out of time on 2026-11-30): the WaveRNN loop (still UNVERIFIED), the WaveNet
    # loops (the multi-stream one is new), DiffWave (passed on the H100 and the H200)
    timeout "$t" "${PYTEST[@]}" --timeout=90 -n ${AGF_TEST_WORKERS:-4} tests/test_triton_wavernn.py \
        tests/test_triton_wavenet.py tests/test_triton_diffwave.py -k "not d1_on_gpu_fp32" ${AGF_TESTS:-} \
        > "$OUT/pytest_triton.log" 2>&1
    echo "rc=$?" >> "$OUT/pytest_triton.log"; tail -15 "$OUT/pytest_triton.log"
fi
if has bench; then
    t=$(budget 90 600)
    stamp "timings (${t} s)"
    timeout "$t" python3 benchmarks/gpu_check.py --out "$OUT" --quick --configs "${AGF_CONFIGS:-W1,R2,D1}" \
        ${AGF_BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
    echo "rc=$?" >> "$OUT/bench.log"; tail -40 "$OUT/bench.log"
fi
if has cli; then
    t=$(budget 60 200)
    stamp "audiogen-fast bench and pytest-benchmark on the GPU (${t} s)"
    end=$(( $(date +%s) + t ))
    timeout "$(( t / 2 ))" audiogen-fast bench --device cuda --config W1,R2,D1 --backend torch,triton,cuda \
        --seconds 0.05 --reps 2 --out "$OUT/cli" > "$OUT/cli.log" 2>&1
    echo "bench rc=$?" >> "$OUT/cli.log"; rm -f "$OUT"/cli/*.png
    # issue 9's server path on the GPU (never run there yet): N W1 streams through open_streams(),
    # each stream's conditioning in Python around one batched kernel call per block; its table
    # (per-stream rate, the loop's share, how many ran in real time) goes to cli.log only (8 files back)
    timeout "$(( t / 4 ))" audiogen-fast bench --device cuda --config W1 --backend cuda --dtype float16 \
        --streams 1,64,256 --seconds 0.2 >> "$OUT/cli.log" 2>&1
    echo "bench --streams rc=$?" >> "$OUT/cli.log"
    ft=$(( end - $(date +%s) )); (( ft < 30 )) && ft=30
    timeout "$ft" "${PYTEST[@]}" --timeout=120 benchmarks/test_bench.py --benchmark-enable -k "not compile" \
        --benchmark-columns=median,rounds >> "$OUT/cli.log" 2>&1
    echo "pytest-benchmark rc=$?" >> "$OUT/cli.log"; tail -25 "$OUT/cli.log"
fi
if has slow; then
    t=$(budget 0 300)
    stamp "slow GPU tests (${t} s)"
    timeout "$t" "${PYTEST[@]}" --timeout=280 tests/test_triton_diffwave.py -k "d1_on_gpu_fp32" >> "$OUT/pytest_triton.log" 2>&1
    echo "slow rc=$?" >> "$OUT/pytest_triton.log"; tail -5 "$OUT/pytest_triton.log"
fi
stamp "done"
# last, so the device call's output ends with it: each prediction of NOTES_GPU.md against this run,
# the floors and the kernels' per-phase profile (benchmarks/gpu_summary.py)
for f in "$OUT"/*.json; do [[ -e "$f" ]] && python3 benchmarks/gpu_summary.py "$f"; done
