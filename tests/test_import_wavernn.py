"""Importing fatchord/WaveRNN and Coqui TTS WaveRNN checkpoints.

The source model below is written here from fatchord's published layout (module and parameter
names, Stretch2d modules interleaved with the smoothing convs in up_layers, the training-step
buffer, zero-padded generation mels) so that the test compares two independent implementations.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import audiogen_fast as agf
from audiogen_fast.models.wavernn import runtime as rt


class Stretch(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):  # [B, 1, C, T] -> nearest-neighbour stretch of time
        b, c, h, w = x.shape
        return x.unsqueeze(-1).repeat(1, 1, 1, 1, self.s).view(b, c, h, w * self.s)


class Res(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(d, d, 1, bias=False), nn.Conv1d(d, d, 1, bias=False)
        self.batch_norm1, self.batch_norm2 = nn.BatchNorm1d(d), nn.BatchNorm1d(d)

    def forward(self, x):
        return x + self.batch_norm2(self.conv2(F.relu(self.batch_norm1(self.conv1(x)))))


class MelRes(nn.Module):
    def __init__(self, blocks, feat, comp, out, pad):
        super().__init__()
        self.conv_in = nn.Conv1d(feat, comp, 2 * pad + 1, bias=False)
        self.batch_norm = nn.BatchNorm1d(comp)
        self.layers = nn.ModuleList(Res(comp) for _ in range(blocks))
        self.conv_out = nn.Conv1d(comp, out, 1)

    def forward(self, x):
        x = F.relu(self.batch_norm(self.conv_in(x)))
        for f in self.layers:
            x = f(x)
        return self.conv_out(x)


class Up(nn.Module):
    def __init__(self, feat, factors, comp, blocks, out, pad):
        super().__init__()
        total = int(np.prod(factors))
        self.indent = pad * total
        self.resnet = MelRes(blocks, feat, comp, out, pad)
        self.resnet_stretch = Stretch(total)
        self.up_layers = nn.ModuleList()
        for s in factors:
            conv = nn.Conv2d(1, 1, (1, 2 * s + 1), padding=(0, s), bias=False)
            self.up_layers.append(Stretch(s))
            self.up_layers.append(conv)

    def forward(self, m):
        aux = self.resnet_stretch(self.resnet(m).unsqueeze(1)).squeeze(1)
        x = m.unsqueeze(1)
        for f in self.up_layers:
            x = f(x)
        x = x.squeeze(1)[:, :, self.indent:-self.indent]
        return x.transpose(1, 2), aux.transpose(1, 2)


class FatchordWaveRNN(nn.Module):
    def __init__(self, rnn, fc, bits, pad, factors, feat, comp, res_out, blocks, mol=False, n_out=None):
        super().__init__()
        self.aux = res_out // 4
        self.pad = pad
        self.upsample = Up(feat, factors, comp, blocks, res_out, pad)
        self.I = nn.Linear(feat + self.aux + 1, rnn)
        self.rnn1 = nn.GRU(rnn, rnn, batch_first=True)
        self.rnn2 = nn.GRU(rnn + self.aux, rnn, batch_first=True)
        self.fc1 = nn.Linear(rnn + self.aux, fc)
        self.fc2 = nn.Linear(fc + self.aux, fc)
        self.fc3 = nn.Linear(fc, n_out or (30 if mol else 2 ** bits))
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))

    def forward(self, x, mels):  # mels already padded by `pad` frames of zeros on each side
        mels, aux = self.upsample(mels)
        a = self.aux
        a1, a2, a3, a4 = (aux[:, :, i * a:(i + 1) * a] for i in range(4))
        x = self.I(torch.cat([x.unsqueeze(-1), mels, a1], dim=2))
        res = x
        x, _ = self.rnn1(x)
        x = x + res
        res = x
        x, _ = self.rnn2(torch.cat([x, a2], dim=2))
        x = x + res
        x = F.relu(self.fc1(torch.cat([x, a3], dim=2)))
        x = F.relu(self.fc2(torch.cat([x, a4], dim=2)))
        return self.fc3(x)


HP = dict(voc_mode="RAW", voc_upsample_factors=(4, 4, 4), voc_rnn_dims=24, voc_fc_dims=20, voc_compute_dims=12,
          voc_res_out_dims=16, voc_res_blocks=2, voc_pad=2, bits=9, mu_law=True, sample_rate=16000, n_fft=1024,
          num_mels=20, hop_length=64, win_length=256, fmin=40)


def fatchord_model(mol=False, seed=0, n_out=None):
    torch.manual_seed(seed)
    m = FatchordWaveRNN(24, 20, 9, 2, (4, 4, 4), 20, 12, 16, 2, mol=mol, n_out=n_out)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
        for conv in m.upsample.up_layers[1::2]:
            conv.weight.uniform_(0.0, 0.2)
    return m.eval()


@pytest.mark.parametrize("mol", [False, True])
def test_fatchord_flat_state_dict(mol, tmp_path):
    src = fatchord_model(mol=mol, seed=int(mol))
    path = tmp_path / "latest_weights.pyt"
    torch.save(src.state_dict(), path)
    with pytest.raises(agf.CheckpointError, match="hparams"):
        agf.load_model(path)  # the flat dict has no upsample factors / hop length
    hp = dict(HP, voc_mode="MOL" if mol else "RAW")
    model = agf.load_model(path, hparams=hp)
    cfg = model.config
    assert cfg.mode == ("MOL" if mol else "RAW") and cfg.rnn_dims == 24 and cfg.res_blocks == 2
    assert cfg.upsample_factors == [4, 4, 4] and cfg.hop_length == 64 and cfg.mel_pad_value == 0.0
    # the same function: teacher-forced outputs of the source (fed fatchord's zero-padded mel) and ours
    T = 5 * 64
    mel = torch.rand(2, 20, 5)
    x = torch.rand(2, T) * 2 - 1
    with torch.no_grad():
        ref = src(x, F.pad(mel, (2, 2)))
        out = model(x, mel)
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
        # and the fast loops agree with it too
        cond = [c[:, :T] for c in model.conditioning(mel)]
    _, inc, _ = rt.run_cpp(model, cond, teacher=x) if agf.backends()["cpp"][0] else rt.run_torch(model, cond, teacher=x)
    assert (inc - ref).abs().max() / ref.abs().max() <= 1e-5


def test_coqui_checkpoint_config_is_read(tmp_path):
    src = fatchord_model(seed=3)
    sd = {k: v for k, v in src.state_dict().items() if k != "step"}
    config = {"audio": {"sample_rate": 16000, "hop_length": 64, "win_length": 256, "fft_size": 1024, "num_mels": 20,
                        "mel_fmin": 0.0, "mel_fmax": 8000.0},
              "model_args": {"rnn_dims": 24, "fc_dims": 20, "mode": 9, "mulaw": True, "pad": 2,
                             "upsample_factors": [4, 4, 4], "feat_dims": 20, "compute_dims": 12, "res_out_dims": 16,
                             "num_res_blocks": 2, "use_aux_net": True, "use_upsample_net": True}}
    path = tmp_path / "coqui.pth"
    torch.save({"model": sd, "config": config, "step": 100, "optimizer": {}}, path)
    voc = agf.load(path, device="cpu")
    assert voc.config.hop_length == 64 and voc.config.fmax == 8000.0 and voc.config.bits == 9
    a = voc.generate(mel=np.random.default_rng(0).random((20, 3)).astype(np.float32), seed=0)
    assert a.shape == (192,) and np.all(np.abs(a) <= 1)
    config["model_args"]["mode"] = "gauss"   # a 512-row fc3 is no Gaussian head
    torch.save({"model": sd, "config": config}, path)
    with pytest.raises(agf.CheckpointError, match="gauss output has 512 rows"):
        agf.load_model(path)
    config["model_args"]["mode"] = "laplace"
    torch.save({"model": sd, "config": config}, path)
    with pytest.raises(agf.CheckpointError, match="'laplace' is not supported"):
        agf.load_model(path)


def test_coqui_gauss_mode(tmp_path):
    """Coqui's mode "gauss": fc3 gives (mean, log_std); a sample is mean + exp(max(log_std, -7)) z,
    clamped to [-1, 1] (its sample_from_gaussian), and is the next step's input."""
    src = fatchord_model(seed=4, n_out=2)
    with torch.no_grad():
        src.fc3.bias[1] = -2.0   # a spread of ~0.14: the samples are not stuck at the clamp
    sd = {k: v for k, v in src.state_dict().items() if k != "step"}
    config = {"audio": {"sample_rate": 16000, "hop_length": 64, "win_length": 256, "fft_size": 1024, "num_mels": 20},
              "model_args": {"rnn_dims": 24, "fc_dims": 20, "mode": "gauss", "pad": 2, "upsample_factors": [4, 4, 4],
                             "feat_dims": 20, "compute_dims": 12, "res_out_dims": 16, "num_res_blocks": 2}}
    path = tmp_path / "coqui_gauss.pth"
    torch.save({"model": sd, "config": config}, path)
    model = agf.load_model(path)
    cfg = model.config
    assert cfg.mode == "GAUSS" and cfg.n_classes == 2 and cfg.log_scale_min == -7.0 and cfg.noise_kind == "gaussian"
    mel = torch.from_numpy(np.random.default_rng(1).random((1, 20, 4)).astype(np.float32))
    T = 4 * 64
    x = torch.rand(1, T, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        ref = src(x, F.pad(mel, (2, 2)))
        assert torch.allclose(model(x, mel), ref, atol=1e-5, rtol=1e-5)
    # sampling: the sampled chain is Coqui's rule applied to the teacher-forced outputs of its own past
    z = torch.from_numpy(rt.draw_noise(cfg, 3, T)).float()[None]
    with torch.no_grad():
        cond = [c[:, :T] for c in model.conditioning(mel)]
    s, _, cls = rt.run_torch(model, cond, noise=z)
    assert cls is None
    _, outs, _ = rt.run_torch(model, cond, teacher=torch.cat([torch.zeros(1, 1), s[:, :-1]], 1))
    o = outs[0].double()
    want = (o[:, 0] + torch.exp(o[:, 1].clamp(min=-7.0)) * z[0].double()).clamp(-1, 1).float()
    assert torch.equal(s[0], want)
    assert 0.05 < float(s.std()) and float((s.abs() < 1).float().mean()) > 0.9
    voc = agf.load(path, backend="torch")
    assert np.array_equal(voc.generate(mel=mel[0].numpy(), seed=3), s[0].numpy())


def test_wrong_hparams_are_named(tmp_path):
    src = fatchord_model()
    path = tmp_path / "w.pyt"
    torch.save(src.state_dict(), path)
    with pytest.raises(agf.CheckpointError, match="hop_length"):
        agf.load_model(path, hparams=dict(HP, hop_length=100))  # factors 4*4*4 != 100
