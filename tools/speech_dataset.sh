# shellcheck shell=bash
# Sourced by the training recipes (train_default.sh, train_speech_wavenet.sh): strict mode, the repo
# root as working directory, and the espeak-ng dataset in $DATA (default runs/speech16k), built at
# 16 kHz if it is not there yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-runs/speech16k}
[ -d "$DATA/train" ] || audiogen-fast dataset "$DATA" --sample-rate 16000
