"""The audiogen-fast command line, end to end on tiny models."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import audiogen_fast as agf
from conftest import random_mel


def run(*args, ok=True):
    r = subprocess.run([sys.executable, "-m", "audiogen_fast.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def test_info(tiny_ckpts):
    r = run("info", tiny_ckpts["tiny-wavenet"])
    assert "wavenet model" in r.stdout and "14,066 parameters" in r.stdout
    j = json.loads(run("info", tiny_ckpts["tiny-diffwave"], "--json").stdout)
    assert j["family"] == "diffwave" and j["sample_rate"] == 8000 and j["config"]["residual_layers"] == 4


@pytest.mark.parametrize("name", ["tiny-wavenet", "tiny-wavernn", "tiny-diffwave"])
def test_vocode_and_generate(name, tiny_ckpts, tmp_path):
    ck = tiny_ckpts[name]
    sr = 8000
    t = np.arange(int(0.1 * sr)) / sr
    wav_in = tmp_path / "in.wav"
    sf.write(wav_in, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), sr)
    out = tmp_path / "out.wav"
    r = run("vocode", ck, wav_in, "-o", out, "--seed", 3, "--quiet")
    assert "RTF" in r.stdout and "x real time" in r.stdout
    audio, sr2 = sf.read(out, dtype="float32")
    assert sr2 == sr and len(audio) == len(t) and audio.std() > 0
    # same as the API with the same seed (16-bit wav: within one quantisation step)
    voc = agf.load(ck, device="cpu")
    wav, _ = sf.read(wav_in, dtype="float32")
    ref = voc.generate(mel=voc.mel(wav), seed=3)[: len(t)]
    assert np.abs(audio - ref).max() <= 1.0 / 32767 + 1e-6

    mel_path = tmp_path / "m.npy"
    np.save(mel_path, random_mel(voc.config, 3))
    out2 = tmp_path / "gen.wav"
    run("generate", ck, "--mel", mel_path, "-o", out2, "--quiet")
    assert sf.info(out2).frames == 3 * voc.hop_length


def test_vocode_resamples_other_rates(tiny_ckpts, tmp_path):
    wav_in = tmp_path / "in16k.wav"
    sf.write(wav_in, np.random.default_rng(0).uniform(-0.1, 0.1, 1600).astype(np.float32), 16000)
    r = run("vocode", tiny_ckpts["tiny-diffwave"], wav_in, "-o", tmp_path / "o.wav", "--quiet")
    assert "resampling" in r.stdout
    assert sf.info(tmp_path / "o.wav").frames == 800


def test_generate_unconditional(tmp_path):
    ck = tmp_path / "u.safetensors"
    agf.save(agf.build("tiny-wavenet", conditional=False), ck)
    run("generate", ck, "--seconds", 0.01, "-o", tmp_path / "u.wav", "--quiet")
    assert sf.info(tmp_path / "u.wav").frames == 80


def test_cli_errors_are_clear(tiny_ckpts, tmp_path):
    r = run("info", tmp_path / "nope.safetensors", ok=False)
    assert r.returncode == 2 and "checkpoint not found" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((7, 3), np.float32))
    r = run("generate", tiny_ckpts["tiny-wavenet"], "--mel", bad, "-o", tmp_path / "x.wav", ok=False)
    assert r.returncode == 2 and "n_mels=16" in r.stderr
    r = run("generate", tiny_ckpts["tiny-wavenet"], "--seconds", 1, "-o", tmp_path / "x.wav", ok=False)
    assert r.returncode == 2 and "mel-conditioned" in r.stderr
    r = run("vocode", tiny_ckpts["tiny-wavenet"], tmp_path / "missing.wav", "-o", tmp_path / "x.wav", ok=False)
    assert r.returncode == 2 and "cannot read audio" in r.stderr and "no such file" in r.stderr
    r = run("vocode", tiny_ckpts["tiny-wavenet"], tmp_path / "missing.wav", "-o", tmp_path / "x.wav", "--stream",
            ok=False)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = run("vocode", tiny_ckpts["tiny-wavenet"], tmp_path, "-o", tmp_path / "x.wav", ok=False)
    assert r.returncode == 2 and "is a directory" in r.stderr
    sf.write(tmp_path / "in.wav", np.zeros(800, np.float32), 8000)
    r = run("vocode", tiny_ckpts["tiny-wavenet"], tmp_path / "in.wav", "-o", tmp_path / "x.wav", "--stream",
            "--chunk-seconds", 0, ok=False)
    assert r.returncode == 2 and "--chunk-seconds must be > 0" in r.stderr
    r = run("vocode", tiny_ckpts["tiny-wavenet"], tmp_path / "missing.wav", "-o", tmp_path / "x.wav",
            "--backend", "warp", ok=False)
    assert r.returncode == 2 and "unknown backend" in r.stderr


def test_backends_and_presets_commands():
    out = run("backends").stdout
    assert "torch" in out
    if agf.backends()["cpp"][0]:   # the C++ kernels in use, and the CPU dtypes per family
        from audiogen_fast import _cpp

        assert f"bf16 products: {_cpp.bf16_kernel()}" in out and f"int8 products: {_cpp.int8_kernel()}" in out
        assert "wavernn float32, float16, bfloat16, int8" in out
    assert "W2" in run("presets").stdout


def test_bench_command_writes_results_and_plot(tmp_path):
    r = run("bench", "--config", "tiny-wavenet,tiny-diffwave", "--backend", "torch,cpp", "--seconds", "0.02",
            "--reps", "1", "--out", tmp_path)
    assert "vs eager" in r.stdout
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and files[0].with_suffix(".png").exists()
    res = json.loads(files[0].read_text())
    assert {"device", "commit", "date", "torch", "triton", "records"} <= set(res)
    recs = {(x["config"], x["backend"]) for x in res["records"]}
    assert ("tiny-wavenet", "torch") in recs and ("tiny-wavenet", "cpp") in recs
    for x in res["records"]:
        assert {"config", "backend", "dtype", "batch", "samples", "samples_per_sec", "aggregate_samples_per_sec",
                "rtf", "x_realtime", "vs_torch", "vs_compile"} <= set(x)
        assert x["samples_per_sec"] > 0 and abs(x["rtf"] * x["x_realtime"] - 1) < 1e-9
    eager = [x for x in res["records"] if x["backend"] == "torch"]
    assert all(x["vs_torch"] == 1.0 for x in eager)
    # the report script renders the same file
    import subprocess as sp
    import sys as _sys
    import os as _os

    rep = sp.run([_sys.executable, _os.path.join(_os.path.dirname(__file__), "..", "benchmarks", "report.py"),
                  str(files[0])], capture_output=True, text=True)
    assert rep.returncode == 0 and "| tiny-wavenet | cpp |" in rep.stdout
    png = tmp_path / "report.png"
    rep = sp.run([_sys.executable, _os.path.join(_os.path.dirname(__file__), "..", "benchmarks", "report.py"),
                  "--plot", str(png), str(files[0])], capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_vocode_stream_matches_and_memory_is_bounded(tmp_path):
    """--stream: the same audio as one-shot vocoding (AR model), and peak memory that does not grow
    with the file's length (1 vs 10 minutes through a very small model)."""
    ck = tmp_path / "small.safetensors"
    agf.save(agf.build("tiny-wavenet", layers=2, stacks=1, residual_channels=4, gate_channels=8,
                       skip_channels=4, out_hidden=8), ck)
    sr = 8000
    short = tmp_path / "short.wav"
    sf.write(short, (0.3 * np.sin(2 * np.pi * 200 * np.arange(3 * sr) / sr)).astype(np.float32), sr)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    run("vocode", ck, short, "-o", a, "--quiet", "--seed", "2")
    r = run("vocode", ck, short, "-o", b, "--quiet", "--seed", "2", "--stream", "--chunk-seconds", "0.3")
    assert "first audio after" in r.stdout
    xa, xb = sf.read(a, dtype="float32")[0], sf.read(b, dtype="float32")[0]
    assert len(xa) == len(xb) == 3 * sr
    # the streamed mel equals the one-shot mel to ~1e-7, so a rare sample may differ; nearly all match
    assert np.mean(xa == xb) > 0.99

    def long_wav(path, minutes):
        with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
            rng = np.random.default_rng(0)
            for _ in range(minutes * 60):
                f.write((0.1 * rng.standard_normal(sr)).astype(np.float32))

    peaks = []
    for minutes in (1, 10):
        src = tmp_path / f"long{minutes}.wav"
        long_wav(src, minutes)
        code = ("import resource, sys; from audiogen_fast.cli import main; rc = main(sys.argv[1:]); "
                "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        out = subprocess.run([sys.executable, "-c", code, "vocode", str(ck), str(src), "-o", str(tmp_path / "o.wav"),
                              "--stream", "--quiet", "--chunk-seconds", "2"], capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr
        peaks.append(int(out.stdout.split("MAXRSS")[1].split()[0]))  # KiB
        assert sf.info(tmp_path / "o.wav").frames == minutes * 60 * sr
    print("peak RSS (KiB) for 1 and 10 minutes:", peaks)
    # 10x the audio, not 10x the memory (one-shot vocoding of 10 minutes would hold the 16-channel
    # upsampled mel alone: ~300 MB)
    assert peaks[1] - peaks[0] < 40 * 1024


def test_generate_and_vocode_reject_bad_outputs_before_working(tiny_ckpts, tmp_path):
    """A wrong output path, format or --mel file is an error before any audio is generated."""
    ck = tiny_ckpts["tiny-wavenet"]
    mel = tmp_path / "m.npy"
    np.save(mel, np.zeros((16, 3), np.float32))
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(800, np.float32), 8000)
    cases = [(["generate", ck, "--mel", mel, "-o", tmp_path / "no" / "o.wav"], "does not exist"),
             (["generate", ck, "--mel", mel, "-o", tmp_path / "o.mp3"], "16-bit PCM audio format"),
             (["generate", ck, "--mel", mel, "-o", tmp_path], "it is a folder"),
             (["generate", ck, "--mel", wav, "-o", tmp_path / "o.wav"], "cannot read --mel"),
             (["vocode", ck, wav, "-o", tmp_path / "o"], "16-bit PCM audio format"),
             (["vocode", ck, wav, "-o", tmp_path / "no" / "o.wav", "--stream"], "does not exist")]
    for args, msg in cases:
        r = run(*args, ok=False)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert "wrote" not in r.stdout
    unc = tmp_path / "unc.safetensors"
    agf.save(agf.build("tiny-wavenet", conditional=False), unc)
    r = run("generate", unc, "--seconds", "0", "-o", tmp_path / "o.wav", ok=False)
    assert r.returncode == 2 and "--seconds must be > 0" in r.stderr
    run("generate", ck, "--mel", mel, "-o", tmp_path / "o.flac")  # any 16-bit format soundfile writes
    assert sf.info(tmp_path / "o.flac").frames == 3 * 64


@pytest.mark.parametrize("args,msg", [(["--config", "W9"], "unknown config 'W9'"),
                                      (["--config", "tiny-wavenet", "--batch", "0"], "--batch must be > 0"),
                                      (["--config", "tiny-wavenet", "--seconds", "-1"], "--seconds must be > 0"),
                                      (["--config", "tiny-wavenet", "--device", "tpu"], "unknown device 'tpu'"),
                                      (["--config", "tiny-wavenet", "--streams", "0,2"], "--streams counts must be >= 1"),
                                      (["--config", "tiny-wavenet", "--streams", "two"], "comma list of stream counts"),
                                      (["--config", "tiny-wavenet", "--streams", "2", "--stream"], "separate runs")])
def test_bench_rejects_bad_arguments(args, msg):
    r = run("bench", *args, ok=False)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_bench_defaults_to_every_fast_backend_of_the_device():
    """Without --backend, bench times every backend a family implements for that device (on a GPU
    the CUDA kernels too: "auto" picks them for WaveNet and WaveRNN), against eager."""
    from audiogen_fast import bench
    from audiogen_fast.models import FAMILY_NAMES, family

    impl = set().union(*(family(f).runtime.BACKENDS for f in FAMILY_NAMES))
    gpu = bench.default_providers("cuda")
    assert impl - {"torch", "cpp"} <= set(gpu) and {"torch", "compile"} <= set(gpu) and "cpp" not in gpu
    assert bench.default_providers("cpu") == ["torch", "cpp"]


def test_bench_stream_reports_latency():
    r = run("bench", "--stream", "--config", "tiny-wavenet", "--backend", "torch", "--seconds", "0.2")
    assert "first audio after" in r.stdout and "steady state RTF" in r.stdout


def test_bench_streams_reports_many_streams_and_the_real_time_count(tmp_path):
    """--streams N,M: N streams through open_streams() per count, a record each (batch = streams,
    samples per stream, the loop's share of the time), and how many ran in real time; DiffWave
    (no open_streams) is skipped with the reason."""
    r = run("bench", "--streams", "1,3", "--config", "tiny-wavernn,tiny-diffwave", "--backend", "torch,cpp",
            "--seconds", "0.1", "--out", tmp_path)
    assert "real-time streams here:" in r.stdout
    assert any(line.startswith("tiny-diffwave") and "skipped" in line for line in r.stdout.splitlines())
    res = json.loads(next(tmp_path.glob("*.json")).read_text())
    recs = res["records"]
    assert [(x["config"], x["backend"], x["batch"]) for x in recs] == [("tiny-wavernn", "cpp", 1), ("tiny-wavernn", "cpp", 3)]
    cfg = agf.build("tiny-wavernn").config
    frames = round(0.1 * cfg.sample_rate / cfg.hop_length)
    for x in recs:
        assert x["mode"] == "streams" and x["samples"] == frames * cfg.hop_length
        assert x["aggregate_samples_per_sec"] == pytest.approx(x["batch"] * x["samples_per_sec"])
        assert 0 < x["loop_share"] < 1
    import subprocess as sp
    import sys as _sys
    import os as _os

    rep = sp.run([_sys.executable, _os.path.join(_os.path.dirname(__file__), "..", "benchmarks", "report.py"),
                  str(next(tmp_path.glob("*.json")))], capture_output=True, text=True)
    assert rep.returncode == 0 and "| tiny-wavernn | cpp | float32 | 3 streams |" in rep.stdout


def test_streams_case_runs_every_stream_to_its_end(monkeypatch):
    """bench.streams_case: every stream's whole audio comes out (a count short of it would inflate
    the rate), and the loop timer sees every batched call."""
    from audiogen_fast import bench
    from audiogen_fast.streams import MultiStream

    steps = []
    orig = MultiStream.step
    monkeypatch.setattr(MultiStream, "step", lambda self: steps.append(len(self.active)) or orig(self))
    rec = bench.streams_case("tiny-wavenet", "cpp", streams=2, seconds=0.2)
    cfg = agf.build("tiny-wavenet").config
    assert rec["samples"] == round(0.2 * cfg.sample_rate / cfg.hop_length) * cfg.hop_length and rec["batch"] == 2
    assert set(steps) == {2} and rec["loop_share"] > 0
    with pytest.raises(ValueError, match="streams must be >= 1"):
        bench.streams_case("tiny-wavenet", "cpp", streams=0)


def test_bench_interleaves_providers_so_a_drifting_machine_keeps_the_ratios(monkeypatch):
    """The machine slows 3x after the first round: timed one provider after the other, eager
    would be measured fast and the fast backend slow; interleaved, every round sees both at the
    same speed and the paired ratio is exact."""
    from audiogen_fast import bench

    base = {"torch": 1.0, "cpp": 0.1}          # seconds per call at full speed
    calls = []

    monkeypatch.setattr(bench, "make_case", lambda config, prov, **kw: ((lambda p=prov: p), 1000))

    def fake_time(fn, device="cpu"):
        prov = fn()
        rnd = len(calls) // 2
        calls.append(prov)
        return base[prov] * (1.0 if rnd == 0 else 3.0)
    monkeypatch.setattr(bench, "time_once", fake_time)
    recs = bench.run(["W2"], ["torch", "cpp"], reps=3, log=lambda *_: None)
    cpp = next(r for r in recs if r["backend"] == "cpp")
    assert cpp["vs_torch"] == pytest.approx(10.0)
    assert calls[:2] == ["torch", "cpp"] and calls[2:4] == ["cpp", "torch"]  # order rotated per round
