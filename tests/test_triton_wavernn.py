"""Triton WaveRNN loop (audiogen_fast/ops/wavernn_loop.py) against the eager step loop.

Without a GPU these run in the Triton interpreter (tiny shapes, fp32); with one, on the GPU,
and the tests marked gpu add R2 and half precision.
"""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from conftest import HAS_CUDA, rel_err, triton_device

pytest.importorskip("triton")
from audiogen_fast.models.wavernn import runtime as rt  # noqa: E402
from audiogen_fast.sampling import sample_softmax  # noqa: E402

DEV = triton_device()
VARIANTS = {"raw9": dict(), "mol": dict(mode="MOL", n_mix=3), "gauss": dict(mode="GAUSS", log_scale_min=-7.0), "odd": dict(rnn_dims=13, fc_dims=11, bits=5, pad=0)}


def _cond(model, B, T, seed):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(B, model.config.n_mels, -(-T // model.config.hop_length), generator=g).to(DEV)
    with torch.no_grad():
        return [c[:, :T].contiguous() for c in model.conditioning(mel)]


def _boundary_flips_only(model, cond, ref_cls, got_cls, u, tol=1e-4):
    """Sampled classes must be equal; a first difference must be a uniform within `tol` of a CDF
    boundary of the reference's own distribution (a rounding flip between fp32 and float64)."""
    for b in range(ref_cls.shape[0]):
        diff = (ref_cls[b].cpu() != got_cls[b].cpu()).nonzero()
        if len(diff) == 0:
            continue
        i = int(diff[0])
        cfg = model.config
        prev = torch.cat([torch.zeros(1), (2.0 * ref_cls[b, :i].float().cpu() / (cfg.n_classes - 1) - 1.0)])
        _, logits, _ = rt.run_torch(model, [c[b:b + 1, :i + 1] for c in cond], teacher=prev[None].to(DEV))
        cdf = torch.cumsum(torch.softmax(logits[0, i].double().cpu(), -1), -1)
        dist = (cdf - float(u[b, i])).abs().min().item()
        assert dist < tol, f"stream {b} step {i}: classes differ although the uniform is {dist:.2e} from any boundary"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_teacher_forced_outputs_match_eager(variant):
    model = agf.build("tiny-wavernn", seed=3, **VARIANTS[variant]).to(DEV)
    B, T = 2, 17
    cond = _cond(model, B, T, 1)
    x = (torch.rand(B, T, generator=torch.Generator().manual_seed(2)) * 2 - 1).to(DEV)
    _, ref, _ = rt.run_torch(model, cond, teacher=x)
    _, out, _ = rt.run_triton(model, cond, teacher=x, chunk=6)   # several chunks: state carried
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("variant", ["raw9", "odd"])
def test_sampled_classes_match_eager(variant):
    model = agf.build("tiny-wavernn", seed=4, **VARIANTS[variant]).to(DEV)
    cfg = model.config
    B, T = 2, 21
    cond = _cond(model, B, T, 3)
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (5, 6)])).to(DEV)
    ref_s, _, ref_c = rt.run_torch(model, cond, noise=nz)
    got_s, _, got_c = rt.run_triton(model, cond, noise=nz, chunk=8)
    _boundary_flips_only(model, cond, ref_c, got_c, nz.cpu())
    same = (ref_c.cpu() == got_c.cpu()).all(dim=1)
    for b in range(B):  # where the classes agree, the sample values are label_to_float exactly
        if same[b]:
            assert torch.equal(got_s[b].cpu(), ref_s[b].cpu())


@pytest.mark.parametrize("variant", ["mol", "gauss"])
def test_continuous_samples_close(variant):
    model = agf.build("tiny-wavernn", seed=2, **VARIANTS[variant]).to(DEV)
    B, T = 2, 15
    cond = _cond(model, B, T, 4)
    nz = torch.from_numpy(np.stack([rt.draw_noise(model.config, s, T) for s in range(B)])).to(DEV)
    ref, _, _ = rt.run_torch(model, cond, noise=nz)
    got, _, _ = rt.run_triton(model, cond, noise=nz)
    assert rel_err(got, ref) <= 1e-5


def test_sampler_rule_matches_reference_sampler():
    """The kernel's inverse-CDF rule on a case with known answer: a one-hot distribution picks
    its class for any uniform (guards the cumsum / count convention)."""
    logits = torch.full((1, 8), -1e4)
    logits[0, 5] = 0.0
    assert int(sample_softmax(logits, torch.tensor([0.999]))) == 5
    model = agf.build("tiny-wavernn", seed=1, bits=3).to(DEV)
    with torch.no_grad():
        model.fc3.weight.zero_()
        model.fc3.bias.fill_(-1e4)
        model.fc3.bias[5] = 0.0
    cond = _cond(model, 1, 6, 0)
    nz = torch.rand(1, 6, generator=torch.Generator().manual_seed(0)).to(DEV)
    _, _, cls = rt.run_triton(model, cond, noise=nz)
    assert cls.cpu().tolist() == [[5] * 6]


def test_stream_and_engine_equal_to_generate():
    """The Triton loop through the engine's streaming session gives what generate() gives."""
    if not HAS_CUDA:
        pytest.skip("the engine runs the triton backend only on a CUDA device")
    model = agf.build("tiny-wavernn", seed=6)
    mel = np.random.default_rng(0).standard_normal((model.config.n_mels, 20)).astype(np.float32)
    voc = agf.Vocoder(model, device="cuda", backend="triton")
    a = voc.generate(mel=mel, seed=1)
    b = np.concatenate(list(voc.stream(iter([mel[:, :7], mel[:, 7:]]), seed=1)), -1)
    assert a.shape == b.shape
    assert np.array_equal(a, b)


def test_launch_wrapper_rejects_bad_state():
    model = agf.build("tiny-wavernn").to(DEV)
    loop = rt.triton_loop(model)
    cfg = model.config
    h1, h2, x = loop.new_state(2)
    mel = torch.zeros(2, 4, cfg.n_mels, device=DEV)
    aux = torch.zeros(2, 4, 4 * cfg.aux_dims, device=DEV)
    with pytest.raises(ValueError, match="h1"):
        loop.run_chunk(mel, aux, (h1[:1].contiguous(), h2, x), noise=torch.zeros(2, 4, device=DEV))
    with pytest.raises(ValueError, match="noise or teacher"):
        loop.run_chunk(mel, aux, (h1, h2, x))
    with pytest.raises(ValueError, match="teacher"):
        loop.run_chunk(mel, aux, (h1, h2, x), teacher=torch.zeros(2, 5, device=DEV))


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_r2_on_gpu():
    model = agf.build("R2", seed=0).cuda()
    B, T = 2, 200
    cond = _cond(model, B, T, 0)
    x = (torch.rand(B, T, generator=torch.Generator().manual_seed(0)) * 2 - 1).cuda()
    _, ref, _ = rt.run_torch(model, cond, teacher=x)
    _, out, _ = rt.run_triton(model, cond, teacher=x)
    assert rel_err(out, ref) <= 1e-5
    nz = torch.from_numpy(np.stack([rt.draw_noise(model.config, s, T) for s in (0, 1)])).cuda()
    _, _, ref_c = rt.run_torch(model, cond, noise=nz)
    _, _, got_c = rt.run_triton(model, cond, noise=nz)
    _boundary_flips_only(model, cond, ref_c, got_c, nz.cpu())


def test_auto_does_not_pick_an_unverified_kernel(monkeypatch):
    """While the WaveRNN Triton loop is unverified, "auto" must not choose it, even where triton
    is available (faked here) and the CUDA kernel is not, while naming it still works."""
    import importlib

    from audiogen_fast.models import family

    bk = importlib.import_module("audiogen_fast.backends")
    fam = family("wavernn")
    assert "triton" in bk.family_backends(fam) and "triton" in bk.unverified(fam)
    monkeypatch.setattr(bk, "backends", lambda: {b: (True, "") for b in bk.PREFERENCE})
    assert bk.resolve("auto", fam, "cuda") == "cuda"  # verified kernels are picked
    monkeypatch.setattr(bk, "backends", lambda: {b: (b != "cuda", "") for b in bk.PREFERENCE})
    assert bk.resolve("auto", fam, "cuda") == "torch"
    assert bk.resolve("triton", fam, "cuda") == "triton"
    assert bk.resolve("auto", family("wavenet"), "cuda") == "triton"
