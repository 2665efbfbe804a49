"""The training recipes in tools/ (hours of CPU time, never run by the tests): every
`audiogen-fast` call they make must still parse with today's command line, name presets that
exist, and chain their stages through the files they say (a renamed option or preset would
otherwise be found only by whoever next rebuilds the default)."""
import os
import subprocess

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
