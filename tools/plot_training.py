"""Training curve (loss against step, smoothed) from a CKPT.log.jsonl written by `audiogen-fast train`.

    python3 tools/plot_training.py benchmarks/results/default-wavenet16k-training.log.jsonl -o docs/training_curve.png \
        --stages "5000:+dither (fine-tune),6000:+quiet spans"
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--stages", default="", help='"STEP:label,..." where a training stage began (its options '
                    'change what the loss measures)')
    ap.add_argument("--title", default="speech-wavenet-16k on the espeak-ng training split (2-core CPU)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.log)]
    steps = np.array([r["step"] for r in rows])
    loss = np.array([r["loss"] for r in rows])
    k = max(1, len(loss) // 50)
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, loss, color="0.8", lw=0.8, label="per 10 steps")
    ax.plot(steps[k - 1:], smooth, color="C0", lw=1.6, label=f"mean of {k}")
    ax.axhline(np.log(256), color="k", ls="--", lw=0.7, label="uniform over 256 classes")
    for item in filter(None, args.stages.split(",")):
        at, label = item.split(":", 1)
        ax.axvline(int(at), color="C3", lw=0.8, ls=":")
        ax.text(int(at), ax.get_ylim()[1], label + " ", color="C3", fontsize=7, va="top", ha="right", rotation=90)
    ax.set_xlabel("step (batch 4 x 4096 samples)")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(args.title, fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output} ({len(rows)} points, last loss {loss[-1]:.3f} at step {steps[-1]})")


if __name__ == "__main__":
    main()
