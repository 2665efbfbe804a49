#!/usr/bin/env bash
# Rebuilds the bundled default model: the espeak-ng dataset, then the speech-wavenet-16k preset
# trained on its training split in three stages, each resuming the last (run it again to continue
# an interrupted stage). CPU, 2 threads.
#   1. plain teacher forcing (the lr schedule of an 8,000-step run, stopped at 5,750);
#   2. a white noise floor on the waveforms (--dither): espeak-ng's exact digital silence made
#      sampling stick in silence;
#   3. quiet spans in the teacher-forced input (--quiet-past): the model learns to follow the mel's
#      level from a quiet past instead of staying quiet mid-word.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/speech16k}
OUT=${OUT:-runs/speech-wavenet-16k.safetensors}
FINAL=${FINAL:-9000}
[ -d "$DATA/train" ] || audiogen-fast dataset "$DATA" --sample-rate 16000
common=(--data "$DATA/train" --out "$OUT" --preset speech-wavenet-16k --batch 4 --segment-frames 16
        --save-every 250 --threads 2 --quiet)
audiogen-fast train wavenet "${common[@]}" --steps 8000 --stop-at 5750 --lr 1e-3 --lr-final 1e-4
audiogen-fast train wavenet "${common[@]}" --steps 9000 --stop-at 6750 --lr 1e-3 --lr-final 1e-4 --dither 1e-3
audiogen-fast train wavenet "${common[@]}" --steps 9000 --stop-at "$FINAL" --lr 1e-3 --lr-final 1e-4 --dither 1e-3 \
    --quiet-past 0.5
