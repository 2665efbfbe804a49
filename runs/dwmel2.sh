#!/bin/bash
# #8 experiment (session 14): the bundled default (stage 5) fine-tuned on with the same objective, lower lr, 1 thread
cd /work/main
exec audiogen-fast train diffwave --data runs/speech16k/train --out runs/dwmel2.safetensors \
  --init audiogen_fast/data/default.safetensors --objective sampler --margin-frames 4 --mel-weight ${MELW:-1.0} \
  --batch 4 --segment-frames 24 --steps ${STEPS:-2000} --lr ${LR:-2e-5} --lr-final ${LRF:-1e-5} \
  --save-every 100 --threads 1 --amp --quiet --seed 7
