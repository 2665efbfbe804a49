"""Importing r9y9/wavenet_vocoder checkpoints (audiogen_fast/models/wavenet/convert.py).

The source model here is written from r9y9's published layout: weight-normalised Conv1d layers named
first_conv, conv_layers.N.{conv, conv1x1c, conv1x1g, conv1x1_out, conv1x1_skip},
last_conv_layers.{1,3}, the upsample_net variants (UpsampleNetwork / ConvInUpsampleNetwork with
Stretch2d modules between the convs) and v0.1.1's upsample_conv, and the checkpoint dict
{'state_dict', 'optimizer', 'global_step', 'global_epoch'}.
"""
import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import audiogen_fast as agf
from audiogen_fast.models.wavenet import runtime as rt

warnings.filterwarnings("ignore", message=".*weight_norm.*")


def WN(m):
    return nn.utils.weight_norm(m)


class Stretch(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return torch.repeat_interleave(x, self.s, dim=-1)


class Layer(nn.Module):
    def __init__(self, R, G, S, K, d, C, gin):
        super().__init__()
        self.conv = WN(nn.Conv1d(R, G, K, padding=(K - 1) * d, dilation=d))
        self.conv1x1c = WN(nn.Conv1d(C, G, 1, bias=False)) if C > 0 else None
        self.conv1x1g = WN(nn.Conv1d(gin, G, 1, bias=False)) if gin > 0 else None
        self.conv1x1_out = WN(nn.Conv1d(G // 2, R, 1))
        self.conv1x1_skip = WN(nn.Conv1d(G // 2, S, 1))

    def forward(self, x, c, g):
        res = x
        x = self.conv(x)[:, :, : res.size(-1)]
        a, b = x.split(x.size(1) // 2, dim=1)
        for cond, proj in ((c, self.conv1x1c), (g, self.conv1x1g)):
            if proj is not None:
                ca, cb = proj(cond).split(a.size(1), dim=1)
                a, b = a + ca, b + cb
        x = torch.tanh(a) * torch.sigmoid(b)
        return (self.conv1x1_out(x) + res) * math.sqrt(0.5), self.conv1x1_skip(x)


class R9(nn.Module):
    def __init__(self, hp, layout):
        super().__init__()
        L, stacks = hp["layers"], hp["stacks"]
        R, G, S, K, C = hp["residual_channels"], hp["gate_channels"], hp["skip_out_channels"], hp["kernel_size"], hp["cin_channels"]
        out, gin = hp["out_channels"], max(0, hp.get("gin_channels", -1))
        self.scalar = hp["input_type"] in ("raw", "mulaw")
        self.out = out
        self.first_conv = WN(nn.Conv1d(1 if self.scalar else out, R, 1))
        self.conv_layers = nn.ModuleList(Layer(R, G, S, K, 2 ** (i % (L // stacks)), C, gin) for i in range(L))
        self.last_conv_layers = nn.ModuleList([nn.ReLU(), WN(nn.Conv1d(S, S, 1)), nn.ReLU(), WN(nn.Conv1d(S, out, 1))])
        self.embed_speakers = nn.Embedding(hp["n_speakers"], gin) if gin > 0 else None
        scales = hp["upsample_params"]["upsample_scales"]
        fk = hp["upsample_params"].get("freq_axis_kernel_size", 1)
        self.layout = layout
        if layout == "legacy":
            mods = []
            for s in scales:
                mods += [WN(nn.ConvTranspose2d(1, 1, (fk, s), padding=((fk - 1) // 2, 0), stride=(1, s))), nn.ReLU()]
            self.upsample_conv = nn.ModuleList(mods)
        else:
            net = nn.Module()
            ups = nn.Module()
            ups.up_layers = nn.ModuleList()
            act = hp["upsample_params"].get("upsample_activation", "none")
            for s in scales:
                ups.up_layers.append(Stretch(s))
                ups.up_layers.append(WN(nn.Conv2d(1, 1, (fk, 2 * s + 1), padding=((fk - 1) // 2, s), bias=False)))
                if act != "none":   # r9y9: getattr(nn, name)(**params) after each conv
                    ups.up_layers.append(getattr(nn, act)(**hp["upsample_params"].get("upsample_activation_params", {})))
            if layout == "convin":
                net.conv_in = nn.Conv1d(C, C, 2 * hp["cin_pad"] + 1, bias=False)
                net.upsample = ups
            else:
                net.up_layers = ups.up_layers
            self.upsample_net = net

    def upsample(self, c):
        if self.layout == "legacy":
            x = c.unsqueeze(1)
            for f in self.upsample_conv:
                x = f(x)
            return x.squeeze(1)
        layers = self.upsample_net.upsample.up_layers if self.layout == "convin" else self.upsample_net.up_layers
        if self.layout == "convin":
            c = self.upsample_net.conv_in(c)
        x = c.unsqueeze(1)
        for f in layers:
            x = f(x)
        return x.squeeze(1)

    def forward(self, x, c, g=None):
        c = self.upsample(c)
        gg = self.embed_speakers(g).unsqueeze(-1) if g is not None else None  # [B, gin, 1], broadcast over time
        x = self.first_conv(x)
        skips = 0
        for f in self.conv_layers:
            x, h = f(x, c, gg)
            skips = skips + h
        x = skips * math.sqrt(1.0 / len(self.conv_layers))
        for f in self.last_conv_layers:
            x = f(x)
        return x


BASE = dict(layers=6, stacks=2, residual_channels=8, gate_channels=16, skip_out_channels=12, kernel_size=3,
            cin_channels=10, cin_pad=0, gin_channels=-1, n_speakers=None, sample_rate=16000, num_mels=10,
            fft_size=256, hop_size=16, fmin=0, fmax=8000, upsample_params={"upsample_scales": [4, 4]},
            log_scale_min=-7.0)
CASES = {
    "mulaw-convin": (dict(input_type="mulaw-quantize", quantize_channels=256, out_channels=256, cin_pad=2), "convin"),
    "mol-legacy": (dict(input_type="raw", out_channels=30, output_distribution="Logistic",
                        upsample_params={"upsample_scales": [4, 4], "freq_axis_kernel_size": 3}), "legacy"),
    "gauss-speakers": (dict(input_type="raw", out_channels=2, output_distribution="Normal", kernel_size=2,
                            gin_channels=4, n_speakers=3), "plain"),
    # input_type "mulaw": the mixture over companded samples; an activation in the upsampler
    "companded-leaky": (dict(input_type="mulaw", quantize_channels=256, out_channels=30, output_distribution="Logistic",
                             upsample_params={"upsample_scales": [4, 4], "upsample_activation": "LeakyReLU",
                                              "upsample_activation_params": {"negative_slope": 0.4}}), "plain"),
    # PReLU's slopes are weights in up_layers between the convs' (ConvInUpsampleNetwork's nesting)
    "prelu-convin": (dict(input_type="raw", out_channels=2, output_distribution="Normal", cin_pad=1,
                          upsample_params={"upsample_scales": [4, 4], "upsample_activation": "PReLU"}), "convin"),
}


def source(name, seed=0):
    kw, layout = CASES[name]
    hp = dict(BASE, **kw)
    torch.manual_seed(seed)
    m = R9(hp, layout).eval()
    with torch.no_grad():
        for mod in m.modules():
            if hasattr(mod, "weight_g"):
                mod.weight_g.uniform_(0.5, 1.5)  # g and ||v|| differ: the fold must be right
            if isinstance(mod, nn.ConvTranspose2d):
                mod.bias.uniform_(-0.1, 0.1)
            if isinstance(mod, nn.PReLU):
                mod.weight.uniform_(-0.5, 0.5)   # each slope its own: the mapping must be right
    return m, hp


@pytest.mark.parametrize("name", list(CASES))
def test_r9y9_checkpoint_computes_the_source_function(name, tmp_path):
    src, hp = source(name, seed=len(name))
    path = tmp_path / "checkpoint_step000100000.pth"
    sd = {("module." + k if name == "gauss-speakers" else k): v for k, v in src.state_dict().items()}
    torch.save({"state_dict": sd, "optimizer": {}, "global_step": 100000, "global_epoch": 12}, path)
    with pytest.raises(agf.CheckpointError, match="hparams"):
        agf.load_model(path)
    hp_file = tmp_path / "hparams.json"
    hp_file.write_text(json.dumps(hp))
    model = agf.load_model(path, hparams=str(hp_file))
    cfg = model.config
    B, frames = 2, 3
    T = frames * 16
    mel = torch.rand(B, 10, frames)
    g = torch.tensor([2, 0]) if cfg.gin_channels else None
    if cfg.output == "mulaw":
        x = torch.randint(0, 256, (B, T))
        x_src = F.one_hot(x, 256).transpose(1, 2).float()
        assert cfg.initial_class == 127 and rt.initial_input(cfg) == 127
    else:
        x = torch.rand(B, T) * 2 - 1
        x_src = x.unsqueeze(1)
    p = hp.get("cin_pad", 0) if CASES[name][1] == "convin" else 0
    mel_src = torch.cat([mel[:, :, :1].expand(-1, -1, p), mel, mel[:, :, -1:].expand(-1, -1, p)], -1) if p else mel
    with torch.no_grad():
        ref = src(x_src, mel_src, g)
        out = model(x, mel, g)
    err = ((out - ref).abs().max() / ref.abs().max()).item()
    print(name, err)
    assert err <= 1e-5
    # and the generation loops compute it too (incremental, teacher-forced)
    _, inc = rt.run_torch(model, T, mel=mel, speaker=g, teacher=x)
    assert ((inc - ref.transpose(1, 2)).abs().max() / ref.abs().max()).item() <= 1e-5


def _saved(name, tmp_path, seed=0):
    src, hp = source(name, seed)
    path = tmp_path / f"{name}.pth"
    torch.save({"state_dict": src.state_dict(), "global_step": 1}, path)
    return src, hp, path


def test_companded_input_type_is_expanded_after_sampling(tmp_path):
    """input_type 'mulaw': the network samples companded values (mu = quantize_channels - 1, r9y9's
    preprocessing), reads them back as its input, and the audio is their mu-law expansion, on every
    CPU backend and one-shot or streamed."""
    _, hp, path = _saved("companded-leaky", tmp_path)
    model = agf.load_model(path, hparams=hp)
    cfg = model.config
    assert cfg.companding_mu == 255 and cfg.output == "mol" and cfg.upsample_activation == "LeakyReLU"
    assert not model.upsample_net.time_linear    # the activation rules out frame-rate conditioning
    mel = torch.rand(10, 20) * 2 - 1
    noise = torch.from_numpy(rt.draw_noise(cfg, 0, 20 * 16)).float()[None]   # generate(seed=0)'s noise
    samples, _ = rt.run_torch(model, 20 * 16, mel=mel[None], noise=noise)
    y = samples.double().clamp(-1, 1)
    want = (torch.sign(y) * ((1 + 255.0) ** y.abs() - 1) / 255.0).float().numpy()[0]
    # the companding matters: the expanded audio is far from the raw samples
    assert float(abs(want - samples.numpy()[0]).max()) > 0.05
    for backend in ("torch", "cpp"):
        voc = agf.load(path, hparams=hp, backend=backend)
        audio = voc.generate(mel=mel.numpy(), seed=0)
        err = float(abs(audio - want).max() / abs(want).max())
        print(backend, err)
        # torch: the same computation; cpp: continuous samples to the fp32 tolerance (DESIGN 3)
        assert err == 0.0 if backend == "torch" else err <= 1e-5, backend
        streamed = np.concatenate(list(voc.stream([mel[:, :7].numpy(), mel[:, 7:].numpy()], seed=0)))
        assert np.array_equal(streamed, audio), backend


def test_unsupported_and_inconsistent_hparams(tmp_path):
    _, hp, path = _saved("mulaw-convin", tmp_path)
    with pytest.raises(agf.CheckpointError, match="input_type 'companded'"):
        agf.load_model(path, hparams=dict(hp, input_type="companded"))
    _, hp2, path2 = _saved("companded-leaky", tmp_path)
    gelu = dict(hp2["upsample_params"], upsample_activation="GELU", upsample_activation_params={})
    with pytest.raises(agf.CheckpointError, match="upsample_activation must be one of"):
        agf.load_model(path2, hparams=dict(hp2, upsample_params=gelu))
    prelu = dict(hp2["upsample_params"], upsample_activation="PReLU", upsample_activation_params={})
    with pytest.raises(agf.CheckpointError, match="missing.*acts"):   # the checkpoint has no slopes
        agf.load_model(path2, hparams=dict(hp2, upsample_params=prelu))
    with pytest.raises(agf.ConfigError, match="companding_mu is for the continuous outputs"):
        agf.build("tiny-wavenet", companding_mu=255)          # a mu-law softmax is already mu-law
    with pytest.raises(agf.ConfigError, match="upsample_activation_params must be numbers"):
        agf.build("tiny-wavenet", upsample_activation="LeakyReLU", upsample_activation_params={"negative_slope": "0.4"})
    with pytest.raises(agf.ConfigError, match="num_parameters 1"):
        agf.build("tiny-wavenet", upsample_activation="PReLU", upsample_activation_params={"num_parameters": 80})
    with pytest.raises(agf.ConfigError, match="upsample_activation is for upsample_mode 'conv'"):
        agf.build("tiny-wavenet", upsample_mode="convt", upsample_activation="ReLU")
    slope = dict(hp2["upsample_params"], upsample_activation_params={"slope": 0.4})
    with pytest.raises(agf.CheckpointError, match="'slope'.*LeakyReLU"):
        agf.load_model(path2, hparams=dict(hp2, upsample_params=slope))
    with pytest.raises(agf.CheckpointError, match="layers"):
        agf.load_model(path, hparams={k: v for k, v in hp.items() if k != "layers"})
    with pytest.raises(agf.CheckpointError, match="mis-shaped|missing"):
        agf.load_model(path, hparams=dict(hp, residual_channels=16))
    with pytest.raises(agf.CheckpointError, match="hop_length"):
        agf.load_model(path, hparams=dict(hp, hop_size=100))
