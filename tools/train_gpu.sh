#!/usr/bin/env bash
# One time-boxed, resumable training round on a lent GPU (issue 8): the default's DiffWave preset
# (speech-diffwave-16k; FAMILY=wavenet: the speech-wavenet-16k preset, the default until 2026-11-30).
# DiffWave goes in two phases, as tools/train_default.sh does on the CPU: PHASE=noise (lmnt's
# noise-prediction objective; rounds resume until STEPS), then PHASE=sampler (fine-tuning the noise
# checkpoint through its own 6-step sampler, --objective sampler, until SAMPLER_STEPS).
# The device machine has neither espeak-ng nor soundfile, so the corpus is prepared here first and carried:
#   audiogen-fast dataset runs/speech16k --sample-rate 16000        # (this machine, once)
#   audiogen-fast corpus runs/speech16k/train runs/speech16k_train.pt --preset speech-diffwave-16k
# then, on the device (carry runs/speech16k_train.pt, and runs/gpu-*16k*.safetensors* to resume):
#   bash tools/train_gpu.sh                  # or PHASE=sampler bash tools/train_gpu.sh
# The checkpoint, its optimizer state and its loss log are copied under $OUT; evaluate back here
# with `python3 benchmarks/quality.py --data runs/speech16k/test --ckpt <it>` (pesq / pystoi).
# DEVICE=cpu runs the same round on the CPU (a smoke test of the script).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/agf_out}
mkdir -p "$OUT"
DATA=${DATA:-runs/speech16k_train.pt}
FAMILY=${FAMILY:-diffwave}
PHASE=${PHASE:-noise}
DEVICE=${DEVICE:-cuda}
LIMIT=${LIMIT:-480}            # seconds of training this round (a checkpoint every 500 steps)
common=(--data "$DATA" --device "$DEVICE" --amp --save-every 500 --quiet)
if [ "$FAMILY" = wavenet ]; then
    CKPT=${CKPT:-runs/gpu-wavenet16k.safetensors}
    STEPS=${STEPS:-40000}      # the lr decays from 1e-3 to 1e-4 over these (all rounds together)
    run=(train wavenet "${common[@]}" --out "$CKPT" --preset speech-wavenet-16k --steps "$STEPS" --batch 32
         --segment-frames 32 --lr 1e-3 --lr-final 1e-4 --dither 1e-3 --quiet-past 0.5)   # what the CPU-trained WaveNet needed
elif [ "$PHASE" = noise ]; then
    CKPT=${CKPT:-runs/gpu-diffwave16k.safetensors}
    STEPS=${STEPS:-100000}     # lr 5e-4 -> 1e-4 over these; the CPU default had 25,000 at batch 8
    run=(train diffwave "${common[@]}" --out "$CKPT" --preset speech-diffwave-16k --steps "$STEPS" --batch 32
         --segment-frames 16 --lr 5e-4 --lr-final 1e-4)
else
    BASE=${BASE:-runs/gpu-diffwave16k.safetensors}
    CKPT=${CKPT:-runs/gpu-diffwave16k-sampler.safetensors}
    SAMPLER_STEPS=${SAMPLER_STEPS:-6000}
    run=(train diffwave "${common[@]}" --out "$CKPT" --init "$BASE" --objective sampler --margin-frames 4
         --steps "$SAMPLER_STEPS" --batch 16 --segment-frames 24 --lr 2e-4 --lr-final 5e-5)
fi
mkdir -p "$(dirname "$CKPT")"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu.txt"; fi
timeout "$LIMIT" python3 -m audiogen_fast.cli "${run[@]}"
echo "train exit $? (124: the round's time limit)"
tail -2 "$CKPT.log.jsonl"
cp "$CKPT" "$CKPT.state.pt" "$CKPT.log.jsonl" "$OUT/"
