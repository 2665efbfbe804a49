"""The training recipes in tools/ (hours of CPU time, never run by the tests): every
`audiogen-fast` call they make must still parse with today's command line, name presets that
exist, and chain their stages through the files they say (a renamed option or preset would
otherwise be found only by whoever next rebuilds the default). And the benchmark plot and
benchmarks/report.py, which regenerate the README's performance section."""
import os
import subprocess
import sys

import pytest

from audiogen_fast.cli import build_parser
from audiogen_fast.presets import PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _calls(script, tmp_path):
    """Run the recipe with `audiogen-fast` replaced by a stub that records its arguments."""
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    log = tmp_path / "calls.txt"
    stub = stub_dir / "audiogen-fast"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" "--end-of-call--" >> "{log}"\n')   # one argument per line
    stub.chmod(0o755)
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)   # present: the recipe does not build the dataset
    env = dict(os.environ, PATH=f"{stub_dir}:{os.environ['PATH']}", DATA=str(data))
    r = subprocess.run(["bash", os.path.join(ROOT, "tools", script)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls, cur = [], []
    for line in log.read_text().splitlines():
        if line == "--end-of-call--":
            calls.append(cur)
            cur = []
        else:
            cur.append(line)
    return calls


@pytest.mark.parametrize("script,family,preset", [("train_default.sh", "diffwave", "speech-diffwave-16k"),
                                                  ("train_speech_wavenet.sh", "wavenet", "speech-wavenet-16k")])
def test_training_recipes_parse_with_todays_cli(script, family, preset, tmp_path):
    calls = _calls(script, tmp_path)
    assert len(calls) >= 2 and all(c[0] == "train" for c in calls)
    parser = build_parser()
    outs = []
    for argv in calls:
        args = parser.parse_args(argv)            # an unknown option or value exits here
        assert args.family == family and args.data.endswith("/train")
        assert args.preset is None or args.preset in PRESETS
        if args.init:                             # a fine-tuning stage starts from an earlier stage's output
            assert args.init in outs
        outs.append(args.out)
    assert preset in [parser.parse_args(c).preset for c in calls]
    if family == "diffwave":                      # the default's last stage: the sampler objective
        assert parser.parse_args(calls[-1]).objective == "sampler"


@pytest.mark.parametrize("n", [3, 14])
def test_benchmark_plot_gives_each_provider_its_colour_and_keeps_the_legend_off_the_bars(n):
    """draw_bars (bench's plot, report.py's panels): one colour per provider (the default cycle
    repeats after 10), and a legend of more than LEGEND_INSIDE entries sits below the panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audiogen_fast.bench import LEGEND_INSIDE, draw_bars, legend_rows

    recs = [dict(config=c, backend=f"b{i}", dtype="float32", batch=1, x_realtime=0.5 + i)
            for c in ("W1", "R2") for i in range(n)]
    fig, ax = plt.subplots()
    draw_bars(ax, recs, "panel")
    fig.canvas.draw()
    assert len({tuple(p.get_facecolor()) for p in ax.patches}) == n
    leg, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    if n > LEGEND_INSIDE:
        assert legend_rows(recs) == -(-n // 3) and leg.y1 <= box.y0   # wholly below the axes
    else:
        assert legend_rows(recs) == 0 and box.y0 <= leg.y0 and leg.y1 <= box.y1
    plt.close(fig)


def test_report_labels_every_panel_and_skips_results_without_machine_date_commit(tmp_path):
    """benchmarks/report.py over every committed results file: files in another schema (no date or
    commit to label a figure with) are named and skipped, the rest plotted and tabled."""
    root = os.path.join(os.path.dirname(__file__), "..")
    r = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "report.py"), "--plot", str(tmp_path / "p.png")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "skipping" in r.stdout and "cpu-bench-2026-11-23-5d63b2c.json" in r.stdout
    assert (tmp_path / "p.png").stat().st_size > 10000
    md = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "report.py")], capture_output=True, text=True)
    assert md.returncode == 0 and md.stdout.count("**NVIDIA H200**") >= 1
