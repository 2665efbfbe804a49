#!/usr/bin/env bash
# Trains the speech-wavenet-16k preset (the default until 2026-11-30; the default is now a DiffWave,
# tools/train_default.sh) on a lent GPU (issue 8), in a time-boxed round that resumes where the last
# one stopped. The device machine has neither espeak-ng nor soundfile, so the corpus is prepared here
# first and carried:
#   audiogen-fast dataset runs/speech16k --sample-rate 16000        # (this machine, once)
#   audiogen-fast corpus runs/speech16k/train runs/speech16k_train.pt --preset speech-wavenet-16k
# then, on the device (carry runs/speech16k_train.pt, and runs/gpu-wavenet16k.safetensors* to resume):
#   bash tools/train_gpu.sh
# The checkpoint, its optimizer state and its loss log are copied under $OUT; evaluate back here
# with `python3 benchmarks/quality.py --data runs/speech16k/test --ckpt <it>` (pesq / pystoi).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/agf_out}
mkdir -p "$OUT"
DATA=${DATA:-runs/speech16k_train.pt}
CKPT=${CKPT:-runs/gpu-wavenet16k.safetensors}
STEPS=${STEPS:-40000}          # the lr decays from 1e-3 to 1e-4 over these (all rounds together)
LIMIT=${LIMIT:-480}            # seconds of training this round (a checkpoint every 500 steps)
mkdir -p "$(dirname "$CKPT")"
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "$LIMIT" python3 -m audiogen_fast.cli train wavenet --data "$DATA" --out "$CKPT" --preset speech-wavenet-16k \
    --device cuda --amp --steps "$STEPS" --batch 32 --segment-frames 32 --lr 1e-3 --lr-final 1e-4 --save-every 500 --quiet \
    --dither 1e-3 --quiet-past 0.5   # what the CPU-trained default needed (tools/train_default.sh)
echo "train exit $? (124: the round's time limit)"
tail -2 "$CKPT.log.jsonl"
cp "$CKPT" "$CKPT.state.pt" "$CKPT.log.jsonl" "$OUT/"
