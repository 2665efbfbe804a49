#!/usr/bin/env bash
# Regenerates the bundled example utterance (audiogen_fast/data/example.wav) with espeak-ng
# (Debian package espeak-ng), 22.05 kHz mono 16-bit.
set -euo pipefail
cd "$(dirname "$0")/.."
espeak-ng -v en-us -s 150 -p 45 -w /tmp/agf_example.wav "$(cat audiogen_fast/data/example.txt)"
python3 - <<'PY'
import soundfile as sf, numpy as np
x, sr = sf.read("/tmp/agf_example.wav", dtype="float32")
assert sr == 22050, sr
x = 0.9 * x / max(1e-9, np.abs(x).max())
sf.write("audiogen_fast/data/example.wav", x, sr, subtype="PCM_16")
print(f"{len(x) / sr:.2f} s")
PY
