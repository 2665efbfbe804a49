#!/usr/bin/env bash
# Rebuilds the bundled default model: the espeak-ng dataset, then the speech-diffwave-16k preset
# (C=32, 20 layers) trained on its training split, CPU, 2 threads, in five stages (run it again to
# continue an interrupted stage; each resumes from its checkpoint's .state.pt):
#   1. lmnt's noise-prediction objective, batch 8 x 4,096 samples, lr 5e-4 decaying to 1e-4 over
#      12,000 steps, fp32 to step 5,500 (~0.9 s a step);
#   2. the same from 5,500 to 12,000 with bf16 autocast (--amp, ~0.58 s a step on AVX512-BF16);
#   3. the same objective resumed on a 40,000-step schedule (lr 2e-4 -> 5e-5, so 1.3e-4 at step
#      12,000) and stopped at 25,000: $BASE (~5 h for stages 1-3 on the 2-core VM);
#   4. fine-tuning $BASE through its own 6-step sampler (--objective sampler: the generation loop
#      unrolled from fresh noise, a multi-resolution STFT loss against the recording; --init: a
#      fresh optimizer), batch 4 x 6,144 samples with 4 frames each side left out of the loss,
#      lr 2e-4 -> 5e-5 on a 3,000-step schedule stopped at 2,500 (~2.7 s a step, ~1.9 h; STOI had
#      levelled off, README "Training");
#   5. 1,000 more sampler steps with a log-mel L1 term (--mel-weight 1), lr 5e-5 -> 2e-5 (~2.7 s a
#      step, ~45 min): $OUT. (The bundled model's stages 4-5 ran before train() seeded torch's
#      generator: a re-run gives a model of the same recipe, not the same bits.)
source "$(dirname "$0")/speech_dataset.sh"
BASE=${BASE:-runs/speech-diffwave-16k-base.safetensors}
SAMPLER=${SAMPLER:-runs/speech-diffwave-16k-sampler.safetensors}
OUT=${OUT:-runs/speech-diffwave-16k.safetensors}
common=(--data "$DATA/train" --threads 2 --quiet)
noise=("${common[@]}" --out "$BASE" --preset speech-diffwave-16k --batch 8 --segment-frames 16 --save-every 250 --seed 3)
audiogen-fast train diffwave "${noise[@]}" --steps 12000 --lr 5e-4 --lr-final 1e-4 --stop-at 5500
audiogen-fast train diffwave "${noise[@]}" --steps 12000 --lr 5e-4 --lr-final 1e-4 --amp
audiogen-fast train diffwave "${noise[@]}" --steps 40000 --lr 2e-4 --lr-final 5e-5 --stop-at 25000 --amp
sampler=(--objective sampler --margin-frames 4 --batch 4 --segment-frames 24 --save-every 100 --amp)
audiogen-fast train diffwave "${common[@]}" --out "$SAMPLER" --init "$BASE" "${sampler[@]}" \
    --steps 3000 --stop-at 2500 --lr 2e-4 --lr-final 5e-5 --seed 5
audiogen-fast train diffwave "${common[@]}" --out "$OUT" --init "$SAMPLER" "${sampler[@]}" --mel-weight 1.0 \
    --steps 1000 --lr 5e-5 --lr-final 2e-5 --seed 6
echo "trained: $OUT (cp it to audiogen_fast/data/default.safetensors to bundle it)"
