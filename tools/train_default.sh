#!/usr/bin/env bash
# Rebuilds the bundled default model: the espeak-ng dataset, then the speech-wavenet-16k preset
# trained on its training split in three stages (run it again to continue an interrupted stage).
# CPU, 2 threads.
#   1. plain teacher forcing (the lr schedule of an 8,000-step run, stopped at 5,750): $BASE;
#   2. fine-tuning $BASE (--init: its weights, a fresh optimizer; the lr continues where a 9,000-step
#      schedule stands at step 5,750) with a white noise floor on the waveforms (--dither):
#      espeak-ng's exact digital silence made sampling stick in silence;
#   3. resuming stage 2 with quiet spans in the teacher-forced input (--quiet-past): the model
#      learns to follow the mel's level from a quiet past instead of staying quiet mid-word.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/speech16k}
BASE=${BASE:-runs/speech-wavenet-16k-base.safetensors}
OUT=${OUT:-runs/speech-wavenet-16k.safetensors}
[ -d "$DATA/train" ] || audiogen-fast dataset "$DATA" --sample-rate 16000
common=(--data "$DATA/train" --batch 4 --segment-frames 16 --save-every 250 --threads 2 --quiet)
audiogen-fast train wavenet "${common[@]}" --out "$BASE" --preset speech-wavenet-16k --steps 8000 --stop-at 5750 \
    --lr 1e-3 --lr-final 1e-4
# 2.3e-4 = 1e-3 * 0.1^(5750/9000): steps 5,750..9,000 of the 9,000-step schedule
ft=(--out "$OUT" --init "$BASE" --steps 3250 --lr 2.3e-4 --lr-final 1e-4 --dither 1e-3)
audiogen-fast train wavenet "${common[@]}" "${ft[@]}" --stop-at 1000
audiogen-fast train wavenet "${common[@]}" "${ft[@]}" --stop-at 3250 --quiet-past 0.5
