"""Training curves (loss against step, smoothed) from CKPT.log.jsonl files written by `audiogen-fast train`,
one panel per log (a training run whose stages change what the loss measures gets a panel each).

    python3 tools/plot_training.py benchmarks/results/default-wavenet16k-training.log.jsonl -o docs/training_curve_wavenet.png \
        --stages "5000:+dither (fine-tune),6000:+quiet spans" --uniform 256

The default DiffWave's curves (docs/training_curve.png; README "Training"):

    python3 tools/plot_training.py benchmarks/results/default-diffwave16k-training.log.jsonl \
        benchmarks/results/default-diffwave16k-finetune.log.jsonl benchmarks/results/default-diffwave16k-melft.log.jsonl \
        -o docs/training_curve.png \
        --ylabels "noise-prediction MSE;multi-resolution STFT loss;STFT loss + log-mel L1" \
        --xlabels "step (batch 8 x 4096 samples);fine-tuning step through the sampler (batch 4 x 6144 samples);step of the second fine-tuning (same batches)" \
        --stages "5500:bf16 autocast,12000:40k-step lr schedule" \
        --title "speech-diffwave-16k (the default) on the espeak-ng training split (2-core CPU): the base, the sampler fine-tuning, then with a log-mel term"

Panels take their settings in order from ";"-separated lists: --ylabels, --xlabels, --stages.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _per_panel(text, n, default):
    items = text.split(";") if text else []
    return [items[i] if i < len(items) and items[i] else default for i in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--stages", default="", help='per panel, "STEP:label,..." where a training stage began')
    ap.add_argument("--ylabels", default="", help="per panel (default: cross-entropy (nats))")
    ap.add_argument("--xlabels", default="", help="per panel (default: step (batch 4 x 4096 samples))")
    ap.add_argument("--uniform", type=int, default=0, help="draw the cross-entropy of a uniform guess over N "
                    "classes on the first panel")
    ap.add_argument("--title", default="speech-wavenet-16k on the espeak-ng training split (2-core CPU)")
    args = ap.parse_args()
    n = len(args.logs)
    stages = _per_panel(args.stages, n, "")
    ylabels = _per_panel(args.ylabels, n, "cross-entropy (nats)")
    xlabels = _per_panel(args.xlabels, n, "step (batch 4 x 4096 samples)")
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 3.2), squeeze=False)
    for i, (path, ax) in enumerate(zip(args.logs, axes[0])):
        rows = [json.loads(line) for line in open(path)]
        steps = np.array([r["step"] for r in rows])
        loss = np.array([r["loss"] for r in rows])
        k = max(1, min(len(loss) // 3, max(5, len(loss) // 50)))   # a short log gets some smoothing too
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps, loss, color="0.8", lw=0.8, label="per 10 steps")
        ax.plot(steps[k - 1:], smooth, color="C0", lw=1.6, label=f"mean of {k}")
        if i == 0 and args.uniform:
            ax.axhline(np.log(args.uniform), color="k", ls="--", lw=0.7, label=f"uniform over {args.uniform} classes")
        lo, hi = np.percentile(loss, [0.5, 99.5])     # a few outlier batches would flatten the curve
        if i == 0 and args.uniform:
            hi = max(hi, np.log(args.uniform))
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        for item in filter(None, stages[i].split(",")):
            at, label = item.split(":", 1)
            ax.axvline(int(at), color="C3", lw=0.8, ls=":")
            ax.text(int(at), ax.get_ylim()[1], label + " ", color="C3", fontsize=7, va="top", ha="right", rotation=90)
        ax.set_xlabel(xlabels[i])
        ax.set_ylabel(ylabels[i])
        ax.legend(fontsize=7, loc="upper right")
        print(f"{path}: {len(rows)} points, last loss {loss[-1]:.3f} at step {steps[-1]}")
    fig.suptitle(args.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
