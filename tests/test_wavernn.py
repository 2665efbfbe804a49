"""WaveRNN: the step loop with hoisted projections computes nn.GRU's function; fold generation."""
import numpy as np
import pytest
import torch

import audiogen_fast as agf
from audiogen_fast import noise as noise_mod
from audiogen_fast.models.wavernn import runtime as rt
from audiogen_fast.sampling import label_to_float, mulaw_decode, sample_softmax
from conftest import HAS_CUDA, random_mel, rel_err


@pytest.mark.parametrize("kw", [dict(), dict(mode="MOL", n_mix=3), dict(mode="GAUSS", log_scale_min=-7.0), dict(rnn_dims=13, fc_dims=11, bits=5, pad=0),
                                dict(mel_pad_value=0.0, res_blocks=0)])
@pytest.mark.parametrize("T", [1, 100])
def test_step_loop_equals_parallel_gru(kw, T):
    model = agf.build("tiny-wavernn", seed=T, **kw)
    cfg = model.config
    g = torch.Generator().manual_seed(T)
    mel = torch.randn(2, cfg.n_mels, -(-T // cfg.hop_length), generator=g)
    x = torch.rand(2, T, generator=g) * 2 - 1
    with torch.no_grad():
        ref = model(x, mel)
        cond = [c[:, :T] for c in model.conditioning(mel)]
    _, outs, _ = rt.run_torch(model, cond, teacher=x)
    assert rel_err(outs, ref) <= 1e-5


def test_gru_step_equals_nn_gru():
    model = agf.build("tiny-wavernn")
    gru = model.rnn1
    x = torch.randn(3, 20, gru.input_size)
    with torch.no_grad():
        ref, h_ref = gru(x)
        h = torch.zeros(3, gru.hidden_size)
        for t in range(20):
            gi = torch.addmm(gru.bias_ih_l0, x[:, t], gru.weight_ih_l0.t())
            h = rt._gru(gi, h, gru.weight_hh_l0, gru.bias_hh_l0)
            assert rel_err(h, ref[:, t]) <= 1e-5


def test_generation_feeds_back_class_values():
    model = agf.build("tiny-wavernn", seed=2)
    cfg = model.config
    mel = torch.from_numpy(random_mel(cfg, 2))[None]
    n = 2 * cfg.hop_length
    u = torch.from_numpy(noise_mod.uniform(3, n))[None]
    with torch.no_grad():
        cond = [c[:, :n] for c in model.conditioning(mel)]
    samples, _, classes = rt.run_torch(model, cond, noise=u)
    teacher = torch.cat([torch.zeros(1, 1), samples[:, :-1]], 1)
    _, outs, _ = rt.run_torch(model, cond, teacher=teacher)
    assert torch.equal(sample_softmax(outs[0], u[0]), classes[0])
    assert torch.equal(samples, label_to_float(classes, cfg.n_classes))
    voc = agf.Vocoder(model, device="cpu")
    assert np.array_equal(voc.generate(mel=mel[0].numpy(), noise=u[0].numpy()), mulaw_decode(classes[0].numpy(), 512))


@pytest.mark.parametrize("classes", [2, 33, 512, 65536])
def test_label_to_float_is_the_ieee_formula_on_every_device(classes):
    """2 k / (classes - 1) - 1 in float32 with a correctly rounded division, on the CPU and on a
    GPU alike (torch's CUDA tensor / scalar multiplies by the reciprocal: 1 ulp off for some k,
    which would make the eager reference itself depend on the device)."""
    k = np.arange(classes)
    want = torch.from_numpy(np.float32(2.0) * k.astype(np.float32) / np.float32(classes - 1) - np.float32(1.0))
    assert torch.equal(label_to_float(torch.from_numpy(k), classes), want)
    if HAS_CUDA:
        assert torch.equal(label_to_float(torch.from_numpy(k).cuda(), classes).cpu(), want)


def test_fold_layout_and_crossfade():
    nf, L = rt.fold_layout(1000, 200, 40)
    assert L == 280 and (nf - 1) * 240 + L >= 1000 and (nf - 2) * 240 + L < 1000
    fin, fout = rt.crossfade_weights(40)
    assert torch.all(fin[:20] == 0) and torch.all(fout[:20] == 1)
    assert torch.allclose(fin[20:] ** 2 + fout[20:] ** 2, torch.ones(20, dtype=fin.dtype))
    # unfold(fold(x)) reproduces a signal exactly where fades sum in power to one for constant-
    # power sources; for a signal that is the same in every segment, the crossfade keeps it.
    x = torch.linspace(-1, 1, 1000).view(1, 1000, 1)
    segs = rt.fold(x, 200, 40)[..., 0]
    y = rt.unfold(segs, 1, 1000, 200, 40)
    step = 240
    # away from overlaps, exactly the input
    for i in range(nf):
        a, b = i * step + (40 if i else 0), min(1000, i * step + 240)
        assert torch.equal(y[0, a:b], x[0, a:b, 0])


def test_fold_generation():
    model = agf.build("tiny-wavernn", seed=5)
    cfg = model.config
    voc = agf.Vocoder(model, device="cpu")
    mel = random_mel(cfg, 20)
    n = 20 * cfg.hop_length
    a = voc.generate(mel=mel, seed=1, fold=(300, 40))
    assert a.shape == (n,) and np.all(np.abs(a) <= 1)
    # the first segment is an unfolded run from the start: equal to plain generation until the
    # first overlap, given the same noise for that segment
    nf, L = rt.fold_layout(n, 300, 40)
    u = noise_mod.uniform(1, nf * L).reshape(nf, L)
    plain = voc.generate(mel=mel, noise=np.concatenate([u[0], np.zeros(n - L, np.float32)]))
    assert np.array_equal(a[:300], plain[:300])
    assert voc.noise_shape(n, fold=(300, 40)) == (nf, L)
    with pytest.raises(agf.InputError):
        voc.generate(mel=mel, seed=1, fold=(300, 1))


@pytest.mark.parametrize("scales", [[4, 16], [5, 5, 11], [1, 3, 2]])
def test_polyphase_smoothing_is_the_stretch_and_conv(scales):
    """UpsampleNetwork.smooth (3 multiply-adds per output) computes fatchord's upsampler: stretch
    by s, then a (2s + 1)-tap conv with zero padding s, per scale; trained (non-constant) taps, and
    the same bits for a row of a batch as for the row alone."""
    hop = int(np.prod(scales))
    model = agf.build("tiny-wavernn", seed=1, upsample_factors=scales, hop_length=hop)
    up = model.upsample
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in up.up_layers:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        m = torch.randn(3, model.config.n_mels, 9, generator=g)
        ref = m.unsqueeze(1)
        for s, conv in zip(scales, up.up_layers):
            ref = conv(torch.repeat_interleave(ref, s, dim=-1))
        got = up.smooth(m)
    assert got.shape == (3, model.config.n_mels, 9 * hop)
    assert rel_err(got, ref.squeeze(1)) <= 2e-6
    assert torch.equal(up.smooth(m[1:2]), got[1:2])


def test_polyphase_smoothing_trains_the_taps():
    model = agf.build("tiny-wavernn", seed=1)
    m = torch.randn(1, model.config.n_mels, 6)
    model.upsample.smooth(m).square().sum().backward()
    assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in model.upsample.up_layers)
    model.zero_grad()
    model.upsample(m)[0].square().sum().backward()   # the composed filter generation and training use
    assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in model.upsample.up_layers)


@pytest.mark.parametrize("scales", [[4, 8, 8], [5, 5, 11], [1, 3, 2], [2]])
def test_smoothed_frames_are_the_stages_composed(scales):
    """smooth_frames (the stages composed into one K-term filter per frame, samples first) computes
    smooth()'s frames: within fp32 rounding in the interior, smooth()'s own bits where the filter
    would reach past the mel's ends (the stages' zero padding), and the same bits for a frame
    whatever window it is computed from (so a block's conditioning equals the whole mel's)."""
    hop = int(np.prod(scales))
    up = agf.build("tiny-wavernn", seed=1, upsample_factors=scales, hop_length=hop).upsample
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for conv in up.up_layers:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        m = torch.randn(2, 7, 12, generator=g)
        ref = up.smooth(m).transpose(1, 2)                       # [2, 12 * hop, 7]
        whole = up.smooth_frames(m, 0, 12)
        lo, K = up.span
        assert whole.shape == ref.shape and whole.is_contiguous()
        assert rel_err(whole, ref) <= 1e-6
        edge = list(range(-lo)) + list(range(12 - (lo + K - 1), 12))
        assert edge and all(torch.equal(whole[:, f * hop:(f + 1) * hop], ref[:, f * hop:(f + 1) * hop]) for f in edge)
        c = up.context
        for f0, f1 in [(0, 1), (3, 9), (5, 12), (11, 12)]:
            assert torch.equal(up.smooth_frames(m, f0, f1), whole[:, f0 * hop:f1 * hop])
            s = max(0, f0 - c)   # a window with the context on each side, as Session takes
            assert torch.equal(up.smooth_frames(m[:, :, s:f1 + c], f0 - s, f1 - s), whole[:, f0 * hop:f1 * hop])
        assert torch.equal(up.smooth_frames(m[1:], 2, 10), whole[1:, 2 * hop:10 * hop])


def test_the_composed_filter_follows_the_taps():
    """frame_filter() is kept between generation calls: a change of the taps (a loaded checkpoint,
    an optimiser step, weights made under inference mode) must be seen."""
    up = agf.build("tiny-wavernn", seed=1).upsample
    m = torch.randn(1, up.resnet.conv_in.in_channels, 9)
    with torch.inference_mode():
        a = up.smooth_frames(m, 2, 7)
        up.up_layers[0].weight.mul_(2.0)
        b = up.smooth_frames(m, 2, 7)
        assert rel_err(b, up.smooth(m)[:, :, 2 * up.total:7 * up.total].transpose(1, 2)) <= 1e-6
        up.up_layers[1].weight = torch.nn.Parameter(torch.ones_like(up.up_layers[1].weight), requires_grad=False)
        c = up.smooth_frames(m, 2, 7)
        assert rel_err(c, up.smooth(m)[:, :, 2 * up.total:7 * up.total].transpose(1, 2)) <= 1e-6
    assert not torch.allclose(a, b) and not torch.allclose(b, c)


@pytest.mark.parametrize("kw", [dict(), dict(mode="MOL", n_mix=3), dict(mode="GAUSS", log_scale_min=-7.0)])
def test_compiled_step_baseline_is_the_eager_loop(kw):
    """run_compiled (bench's "compile" provider): the step module it compiles is the eager loop's step
    bit for bit (mode=None); compiled by inductor on the CPU (RAW), the same classes: its fused
    kernels round differently (~1e-7), which moves a class only when a uniform falls that close to
    a CDF boundary (about 1e-4 over these 300 steps)."""
    model = agf.build("tiny-wavernn", seed=1, **kw).eval()
    cfg = model.config
    T = 300  # <= HOIST_BLOCK: both loops hoist the projections of the same rows in one product
    mel = torch.randn(2, cfg.n_mels, -(-T // cfg.hop_length), generator=torch.Generator().manual_seed(0))
    nz = torch.from_numpy(np.stack([rt.draw_noise(cfg, s, T) for s in (3, 4)]))
    with torch.no_grad():
        cond = [c[:, :T] for c in model.conditioning(mel)]
    s_ref, _, c_ref = rt.run_torch(model, cond, noise=nz)
    s, c = rt.run_compiled(model, mel, nz, mode=None)
    assert torch.equal(s, s_ref) and (c is None) == (c_ref is None) and (c is None or torch.equal(c, c_ref))
    if cfg.mode == "RAW":
        s, c = rt.run_compiled(model, mel, nz, mode="default")
        assert torch.equal(c, c_ref) and torch.equal(s, s_ref)
