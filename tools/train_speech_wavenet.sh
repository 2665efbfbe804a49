#!/usr/bin/env bash
# Rebuilds the speech-wavenet-16k model that was the bundled default until 2026-11-30 (README, "Training"):
#   the espeak-ng dataset, then the preset trained on its training split in four stages (run it again to continue an interrupted stage).
# CPU, 2 threads.
#   1. plain teacher forcing (the lr schedule of an 8,000-step run, stopped at 5,000): $BASE, the
#      default model until 2026-11-23;
#   2. fine-tuning $BASE for 3,250 steps (--init: its weights, a fresh optimizer; the lr goes on from
#      about where stage 1 stopped, 2.3e-4, down to 1e-4) with a white noise floor on the waveforms (--dither):
#      espeak-ng's exact digital silence made sampling stick in silence;
#   3. resuming stage 2 with quiet spans in the teacher-forced input (--quiet-past): the model
#      learns to follow the mel's level from a quiet past instead of staying quiet mid-word;
#   4. 1,750 more steps of stage 3, its lr schedule stretched to 5,000 steps (1.3e-4 down to 1e-4):
#      stage 3's loss was still falling.
source "$(dirname "$0")/speech_dataset.sh"
BASE=${BASE:-runs/speech-wavenet-16k-base.safetensors}
OUT=${OUT:-runs/speech-wavenet-16k.safetensors}
common=(--data "$DATA/train" --batch 4 --segment-frames 16 --save-every 250 --threads 2 --quiet)
audiogen-fast train wavenet "${common[@]}" --out "$BASE" --preset speech-wavenet-16k --steps 8000 --stop-at 5000 \
    --lr 1e-3 --lr-final 1e-4
# stage 1 stopped at lr 1e-3 * 0.1^(5000/8000) = 2.37e-4
ft=(--out "$OUT" --init "$BASE" --lr 2.3e-4 --lr-final 1e-4 --dither 1e-3)   # --init: used by stage 2 only
audiogen-fast train wavenet "${common[@]}" "${ft[@]}" --steps 3250 --stop-at 1000
audiogen-fast train wavenet "${common[@]}" "${ft[@]}" --steps 3250 --quiet-past 0.5
audiogen-fast train wavenet "${common[@]}" "${ft[@]}" --steps 5000 --quiet-past 0.5
