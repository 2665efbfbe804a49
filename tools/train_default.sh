#!/usr/bin/env bash
# Rebuilds the bundled default model: the espeak-ng dataset, then the speech-wavenet-16k preset
# trained on its training split (resumable: run it again to continue). CPU, 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/speech16k}
OUT=${OUT:-runs/speech-wavenet-16k.safetensors}
STEPS=${STEPS:-8000}
[ -d "$DATA/train" ] || audiogen-fast dataset "$DATA" --sample-rate 16000
audiogen-fast train wavenet --data "$DATA/train" --out "$OUT" --preset speech-wavenet-16k \
    --steps "$STEPS" --batch 4 --segment-frames 16 --lr 1e-3 --lr-final 1e-4 --save-every 250 --threads 2 --quiet
