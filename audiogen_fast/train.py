"""Training on a folder of wavs: `audiogen-fast train FAMILY --data DIR --out CKPT`.

The mel of every file is computed with the model config's own settings (so vocoding later uses
the features the model learnt from). Each step takes random segments (seg_frames mel frames and
their samples) and minimises the family's teacher-forced loss:
  WaveNet: cross-entropy of the next sample's mu-law class, or the next sample's negative
  log-likelihood under the predicted Gaussian / discretized mixture of logistics;
  WaveRNN: cross-entropy of the next sample's class (RAW), or its NLL under the mixture (MOL) or
  Gaussian (GAUSS) given the previous sample itself;
  DiffWave: MSE of the predicted noise at a random training step (lmnt's objective).
The upsampler of a segment sees `context` frames of mel on each side, as in generation.
Checkpoints: CKPT (native, loadable at once) and CKPT.state.pt (optimizer, step, RNG) to resume;
the loss goes to CKPT.log.jsonl. Resuming is automatic when CKPT.state.pt exists.
"""
from __future__ import annotations

import functools
import glob
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .audio import load_wav, mel_magnitude, mel_spectrogram
from .checkpoint import save
from .emphasis import preemphasize
from .sampling import label_to_float, mulaw_compress, mulaw_encode, mulaw_expand, sample_softmax


class Corpus:
    """All wavs of a folder in memory with their mels (frames aligned to hop-sized sample blocks).

    `folder` may also be a corpus file written by Corpus.save (a .pt of the waveforms and mels
    for one config's audio settings): a GPU machine then trains without soundfile or the wavs."""

    def __init__(self, folder: str, cfg, max_files: int | None = None):
        if os.path.isfile(folder) and folder.endswith(".pt"):
            self._load(folder, cfg, max_files)
            return
        files = sorted(glob.glob(os.path.join(folder, "**", "*.wav"), recursive=True))
        if max_files:
            files = files[:max_files]
        if not files:
            raise FileNotFoundError(f"no .wav files under {folder}")
        self.items = []
        for f in files:
            wav, _ = load_wav(f, sample_rate=cfg.sample_rate)
            mel = mel_spectrogram(wav, cfg)                     # [C, 1 + N // hop]
            n = (mel.shape[1] - 1) * cfg.hop_length             # samples covered by full frames
            if n <= 0:
                continue
            self.items.append((torch.from_numpy(wav[:n].copy()), torch.from_numpy(mel)))
        self.seconds = sum(len(w) for w, _ in self.items) / cfg.sample_rate
        self.cfg = cfg

    @functools.cached_property
    def targets(self):
        """The waveforms the network learns: pre-emphasised where the config says so, then mu-law
        companded where it says so (WaveNet companding_mu; the engine undoes both in that order
        after sampling); the mels stay those of the waveforms themselves. Applied to each whole
        file, so every segment's first sample and `prev` are exact."""
        a, mu = self.cfg.preemphasis, getattr(self.cfg, "companding_mu", 0)

        def domain(w):
            e = preemphasize(w, a)
            return mulaw_compress(e.double().clamp(-1.0, 1.0), mu).to(e.dtype) if mu else e
        return [(domain(w), m) for w, m in self.items]

    def save(self, path: str):
        """Waveforms as int16 where that is exact (16-bit wav files), else float32; mels float32."""
        wavs = []
        for w, _ in self.items:   # the waveforms themselves, never pre-emphasised
            q = w * 32768.0
            exact = bool((q == q.round()).all()) and float(q.abs().max()) <= 32767
            wavs.append(q.round().to(torch.int16) if exact else w)
        torch.save({"audio_settings": _audio_settings(self.cfg), "wavs": wavs, "mels": [m for _, m in self.items]}, path)

    def _load(self, path, cfg, max_files):
        d = torch.load(path, weights_only=True)
        if d["audio_settings"] != _audio_settings(cfg):
            raise ValueError(f"{path} was computed with other audio settings ({d['audio_settings']}) than this "
                             f"model's ({_audio_settings(cfg)}): rebuild it from the wavs")
        wavs = [w.float() / 32768.0 if w.dtype == torch.int16 else w for w in d["wavs"]]
        self.items = list(zip(wavs, d["mels"]))[:max_files or None]
        if not self.items:
            raise FileNotFoundError(f"{path} holds no audio")
        self.seconds = sum(len(w) for w, _ in self.items) / cfg.sample_rate
        self.cfg = cfg

    def batch(self, rng: np.random.Generator, B: int, seg_frames: int, ctx: int):
        """-> audio [B, seg*hop], previous sample [B], mel window [B, C, seg + 2 ctx] (edge-padded)."""
        hop = self.cfg.hop_length
        auds, prevs, mels = [], [], []
        for _ in range(B):
            wav, mel = self.targets[int(rng.integers(len(self.targets)))]
            frames = len(wav) // hop
            seg = min(seg_frames, frames)
            f0 = int(rng.integers(0, frames - seg + 1))
            a = wav[f0 * hop:(f0 + seg) * hop]
            if seg < seg_frames:
                a = F.pad(a, (0, (seg_frames - seg) * hop))
            auds.append(a)
            prevs.append(wav[f0 * hop - 1] if f0 > 0 else torch.tensor(0.0))
            idx = torch.arange(f0 - ctx, f0 + seg_frames + ctx).clamp(0, mel.shape[1] - 1)
            mels.append(mel[:, idx])
        return torch.stack(auds), torch.stack(prevs), torch.stack(mels)


def _audio_settings(cfg) -> dict:
    from .models.base import AudioConfig
    import dataclasses

    # preemphasis is left out: a corpus file holds the waveforms themselves
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(AudioConfig) if f.name != "preemphasis"}


def _upsampled(model, mel_win, ctx, hop, n):
    net = model.upsample_net
    if net is None:
        return None
    # the unfolded form of the time stage trains ~1.5x faster on the CPU (same function)
    up = net.time_stage_unfolded(net.frame_stage(mel_win)) if net.time_linear else net(mel_win)
    return up[:, :, ctx * hop: ctx * hop + n]


def add_dither(x, std: float):
    """A noise floor (white, std `std`) on the training waveform, inputs and targets alike; the mels
    stay those of the clean audio. Why: synthetic speech (espeak-ng) has stretches of exact digital
    silence, so an autoregressive model learns that a run of exact zeros is followed by zero with
    near certainty; in generation a few sampled zeros mid-word then trap it in silence (seen as
    frames ~60 dB below the input in the middle of words). With a floor, silence is low-level
    noise the model keeps sampling, never a fixed point."""
    return (x + std * torch.randn(x.shape, dtype=x.dtype).to(x.device)).clamp(-1.0, 1.0)


def quiet_spans(past, prob: float, gain_db: float | None = None):
    """past [B, T] teacher-forced inputs -> the same with, in each segment with probability prob,
    one random span (1/8 to 1/2 of the segment) scaled down by a gain in [0, 0.1]; the targets
    stay. Why: trained on true pasts only, a small model leans on the past's level and, once its
    own samples go quiet mid-word, stays quiet however loud the mel is; here it must produce the
    mel's level from a quiet past, as at an onset.
    gain_db: the span's gain is 10^(g/20) with g uniform in [-gain_db, +gain_db] instead (the
    scaled input clipped to [-1, 1]): a past too quiet or too loud by a few dB, as when the
    model's own level wanders, which it must pull back to the mel's."""
    if prob <= 0:
        return past
    B, T = past.shape
    out = past.clone()
    for b in torch.nonzero(torch.rand(B) < prob).flatten().tolist():
        n = int(torch.randint(T // 8, T // 2 + 1, ()))
        t0 = int(torch.randint(0, T - n + 1, ()))
        if gain_db is None:
            out[b, t0:t0 + n] *= 0.1 * float(torch.rand(()))
        else:
            g = 10.0 ** (gain_db * (2.0 * float(torch.rand(())) - 1.0) / 20.0)
            out[b, t0:t0 + n] = (out[b, t0:t0 + n] * g).clamp(-1.0, 1.0)
    return out


def past_noise(past, max_std: float):
    """Noise on the teacher-forced inputs past [B, T] in [-1, 1], added in the 8-bit mu-law domain
    (units: mu-law levels) with a standard deviation drawn per segment uniformly in [0, max_std];
    the targets stay clean. Why: in generation the network reads its own sampled past, which strays
    from the recordings it was trained on by a few levels per sample; LPCNet (Valin & Skoglund,
    2019) trains on such a corrupted input for this reason. (Tried here before the waveforms had a
    dither floor, it deepened the silence trap: noisy input, exactly silent targets.)"""
    if max_std <= 0:
        return past
    mu = 255
    y = mulaw_compress(past, mu)                                                 # companded, [-1, 1]
    std = torch.rand(past.shape[0], 1, dtype=past.dtype).to(past.device) * (max_std * 2.0 / mu)   # levels -> units
    y = (y + std * torch.randn(past.shape, dtype=past.dtype).to(past.device)).clamp(-1.0, 1.0)
    return mulaw_expand(y, mu)


def loss_wavenet(model, audio, prev, mel_win, ctx, quiet_prob: float = 0.0, gain_prob: float = 0.0,
                 gain_db: float = 0.0, noise_std: float = 0.0, self_prob: float = 0.0):
    """Teacher-forced negative log-likelihood per sample: cross-entropy over mu-law classes, or the
    continuous output's NLL (discretized mixture of logistics, single Gaussian). quiet_prob, and
    gain_prob with gain_db: see quiet_spans (quiet spans first, then the +-gain_db ones); then
    noise_std: see past_noise; then self_prob (mu-law): the share of segments whose input is the
    model's own one-step samples (self_past)."""
    cfg = model.config
    T = audio.shape[1]
    past = quiet_spans(torch.cat([prev.unsqueeze(1), audio[:, :-1]], dim=1), quiet_prob)  # previous samples
    if gain_prob > 0:
        past = quiet_spans(past, gain_prob, gain_db)
    past = past_noise(past, noise_std)
    c = _upsampled(model, mel_win, ctx, cfg.hop_length, T)
    if cfg.output == "mulaw":
        Q = cfg.quantize_channels
        target = torch.as_tensor(mulaw_encode(audio, Q))                    # [B, T]
        x = torch.as_tensor(mulaw_encode(past, Q))                          # previous sample's class
        if self_prob > 0:
            x = self_past(model, x, c, self_prob)
        return F.cross_entropy(_teacher_forced(model, x, c), target)
    if self_prob > 0:
        raise ValueError("self_prob is implemented for mu-law WaveNets")
    out = _teacher_forced(model, past, c)                                   # previous sample's value
    if cfg.output == "gaussian":
        return gaussian_nll(out.transpose(1, 2), audio, cfg.log_scale_min)
    return mol_nll(out.transpose(1, 2), audio, cfg.log_scale_min)


def _teacher_forced(model, x, c):
    """The model's parallel forward on inputs x [B, T] with upsampled conditioning c [B, C, T]."""
    h = model.first_conv(model.embed_input(x))
    skips = 0.0
    for layer in model.conv_layers:
        h, s = layer(h, c, None)
        skips = skips + s
    return model.output_stack(skips * math.sqrt(1.0 / len(model.conv_layers)))  # [B, out_channels, T]


def self_past(model, x, c, prob: float):
    """x [B, T] input classes (x[:, t] is the sample before t) -> the same with, in each segment
    with probability prob, every input after the first replaced by the model's own one-step sample:
    x'[t + 1] drawn from the model given x[..t] (no gradient; the generation rule, sample_softmax,
    on fresh uniforms). Why: the default samples STOI 0.94 one step at a time from the true past
    but 0.69 free-running (benchmarks/quality.py --one-step): its own samples stray from the
    recordings (by ~10 mu-law levels on average, heavy-tailed) and it was trained only on clean
    pasts. Here it also learns from pasts with its own kind of error; one extra forward pass."""
    if prob <= 0:
        return x
    pick = torch.nonzero(torch.rand(x.shape[0]) < prob).flatten()
    if len(pick) == 0:
        return x
    with torch.no_grad():
        logits = _teacher_forced(model, x[pick], c[pick] if c is not None else None).transpose(1, 2)   # [b, T, Q]
        drawn = sample_softmax(logits.float(), torch.rand(logits.shape[:2], dtype=torch.float64))
    out = x.clone()
    out[pick, 1:] = drawn[:, :-1].to(x.dtype)
    return out


def gaussian_nll(params, x, log_scale_min):
    """params [..., 2] (mean | log_std, as sample_gaussian reads them), x [...] -> mean NLL (nats).
    The log-std is clamped from below as the sampler clamps it, so training never asks for a
    narrower distribution than generation can draw."""
    mean, log_s = params[..., 0], params[..., 1].clamp(min=log_scale_min)
    return (log_s + 0.5 * math.log(2 * math.pi) + 0.5 * ((x - mean) * torch.exp(-log_s)) ** 2).mean()


def mol_nll(params, x, log_scale_min, bins: int = 65536):
    """params [..., 3M] (logit_probs | means | log_scales, as sample_mol reads them), x [...] in
    [-1, 1] -> mean NLL (nats) of x under the mixture of logistics discretized to `bins` levels
    (PixelCNN++'s likelihood, Salimans et al. 2017): each component's mass on x's bin, the
    outermost bins taking the tails; where a bin's mass underflows, its density times the width."""
    M = params.shape[-1] // 3
    logit, mean, log_s = params[..., :M], params[..., M:2 * M], params[..., 2 * M:].clamp(min=log_scale_min)
    x = x.unsqueeze(-1)
    half = 1.0 / (bins - 1)                                    # half a bin on [-1, 1]
    inv_s = torch.exp(-log_s)
    centered = x - mean
    plus, minus = inv_s * (centered + half), inv_s * (centered - half)
    log_cdf_plus = plus - F.softplus(plus)                     # log sigmoid(plus): the bottom bin
    log_sf_minus = -F.softplus(minus)                          # log (1 - sigmoid(minus)): the top bin
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_s * centered
    log_pdf_mid = mid - log_s - 2.0 * F.softplus(mid)         # log density at the bin centre
    inner = torch.where(delta > 1e-5, torch.log(delta.clamp(min=1e-12)), log_pdf_mid - math.log((bins - 1) / 2))
    log_p = torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_sf_minus, inner))
    return -torch.logsumexp(log_p + F.log_softmax(logit, dim=-1), dim=-1).mean()


def loss_wavernn(model, audio, prev, mel_win, ctx):
    cfg = model.config
    if cfg.mode == "RAW":   # input: the previous sample's class as a float, as generation feeds it back
        Q = cfg.n_classes
        cls = torch.as_tensor(mulaw_encode(audio, Q)) if cfg.mu_law else ((audio.clamp(-1, 1) + 1) / 2 * (Q - 1)).round().long()
        first = torch.as_tensor(mulaw_encode(prev, Q)).unsqueeze(1) if cfg.mu_law else ((prev.clamp(-1, 1) + 1) / 2 * (Q - 1)).round().long().unsqueeze(1)
        x = label_to_float(torch.cat([first, cls[:, :-1]], 1), Q)
    else:                   # MOL / GAUSS: the previous sample itself
        audio = audio.clamp(-1.0, 1.0)
        x = torch.cat([prev.clamp(-1.0, 1.0).unsqueeze(1), audio[:, :-1]], 1)
    # the upsampler takes the segment's frames plus pad frames of context on each side (ctx >= pad)
    m, aux = model.upsample(mel_win[:, :, ctx - cfg.pad: mel_win.shape[-1] - (ctx - cfg.pad)])
    A = cfg.aux_dims
    T = audio.shape[1]
    a = [aux[:, :T, i * A:(i + 1) * A] for i in range(4)]
    h = model.I(torch.cat([x.unsqueeze(-1), m[:, :T], a[0]], dim=2))
    res = h
    h, _ = model.rnn1(h)
    h = h + res
    res = h
    h, _ = model.rnn2(torch.cat([h, a[1]], dim=2))
    h = h + res
    h = F.relu(model.fc1(torch.cat([h, a[2]], dim=2)))
    h = F.relu(model.fc2(torch.cat([h, a[3]], dim=2)))
    logits = model.fc3(h)
    if cfg.mode == "MOL":
        return mol_nll(logits, audio, cfg.log_scale_min)
    if cfg.mode == "GAUSS":
        return gaussian_nll(logits, audio, cfg.log_scale_min)
    return F.cross_entropy(logits.transpose(1, 2), cls)


def _diffwave_cond(model, mel_win, ctx, T):
    """mel_win [B, M, frames + 2 ctx] -> the segment's upsampled mel [B, M, T] (None: unconditional)."""
    if model.spectrogram_upsampler is None:
        return None
    hop = model.config.hop_length
    return model.spectrogram_upsampler(mel_win)[:, :, ctx * hop: ctx * hop + T]


def loss_diffwave(model, audio, prev, mel_win, ctx):
    cfg = model.config
    betas = torch.tensor(cfg.noise_schedule, dtype=torch.float64)
    alpha_cum = torch.cumprod(1 - betas, 0).float().to(audio.device)
    B, T = audio.shape
    t = torch.randint(0, len(betas), (B,)).to(audio.device)
    noise = torch.randn_like(audio)
    a = alpha_cum[t].unsqueeze(1)
    noisy = a.sqrt() * audio + (1 - a).sqrt() * noise
    pred = model.denoise(noisy, t, _diffwave_cond(model, mel_win, ctx, T)).squeeze(1)
    return F.mse_loss(pred, noise)


def stft_resolutions(cfg) -> tuple:
    """(n_fft, hop) pairs of the sampler objective's STFT loss, scaled to the model's own n_fft N:
    (N/2, N/8), (N, N/4), (N/4, N/16); at 16 kHz with N = 1024 windows of 32 / 64 / 16 ms, near the
    25 / 50 / 10 ms of Parallel WaveGAN's three resolutions at 24 kHz."""
    N = cfg.n_fft
    return ((N // 2, N // 8), (N, N // 4), (N // 4, N // 16))


def stft_magnitude_loss(x, y, resolutions):
    """Multi-resolution STFT loss (Yamamoto et al., Parallel WaveGAN, 2020): per (n_fft, hop)
    with a Hann window of n_fft, spectral convergence ||Y| - |X||_F / ||Y||_F (norms over the batch) plus the L1 distance
    of the log magnitudes; averaged over the resolutions. x, y [B, T] (x generated, y target),
    computed in float32 whatever autocast says. Blind to phase, so it can ask a stochastic sampler
    for the target's spectrum without asking for its exact waveform."""
    x, y = x.float(), y.float()
    total = 0.0
    for n_fft, hop in resolutions:
        win = torch.hann_window(n_fft, device=x.device)
        X = torch.stft(x, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        Y = torch.stft(y, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-5)
        # over the whole batch: per segment, a near-silent target (espeak-ng has digital silence)
        # would divide by ~0 (losses of 100s seen)
        sc = torch.linalg.vector_norm(Y - X) / torch.linalg.vector_norm(Y).clamp(min=1e-5)
        total = total + sc + F.l1_loss(torch.log(X), torch.log(Y))
    return total / len(resolutions)


def log_mel(x, cfg):
    """ln(max(mel magnitude, 1e-5)) of x [B, T] with the model's own analysis (audio.mel_magnitude,
    mel_spectrogram's "log" normalisation), differentiable -> [B, n_mels, frames]."""
    return torch.log(mel_magnitude(x.float(), cfg).clamp(min=1e-5))


def sample_diffwave(model, cond, noise, schedule):
    """The generation loop of models/diffwave/runtime.run_torch with gradients: noise [S, B, T]
    (noise[0] is x_T, noise[i] the z added after executed step i), cond [B, M, T] upsampled mel
    or None -> audio [B, T]. Same update (runtime._update), same float32 coefficients; a test
    checks it gives generate()'s audio for the same noise."""
    from .models.diffwave.runtime import _update

    S = len(schedule)
    x = noise[0]
    for i in range(S):
        n = S - 1 - i
        step = torch.tensor([float(schedule.steps[n])], device=x.device)
        x = _update(x, model.denoise(x, step, cond).squeeze(1), schedule, i, noise, x.dtype)
    return x


def loss_diffwave_sampler(model, audio, prev, mel_win, ctx, margin: int = 0, mel_weight: float = 0.0):
    """Fine-tuning objective for the sampler that generate() runs (the config's default
    schedule): the whole denoise loop unrolled from fresh noise on each segment, back-propagated,
    scored by stft_magnitude_loss against the recording. Why: trained only on lmnt's noise-
    prediction MSE, the small CPU-trained model's few-step samples are noisy and ~7 dB quiet; this
    asks the loop itself for the recording's spectrum. The network, the schedule and generate()
    stay as they are. margin: frames on each side of the segment that the loop runs on but the
    loss leaves out (in generation a segment's neighbours are audio, not the zero padding of
    the segment's edge). mel_weight > 0 adds that times the L1 distance of the two log-mels
    (log_mel: the model's own mel analysis, HiFi-GAN's mel loss), the measure the quality report's
    log-mel L1 takes. Costs about S forward + backward passes per step."""
    from .models.diffwave.reference import Schedule

    cfg = model.config
    B, T = audio.shape
    schedule = Schedule.from_config(cfg)
    noise = torch.randn((len(schedule), B, T), dtype=audio.dtype).to(audio.device)
    out = sample_diffwave(model, _diffwave_cond(model, mel_win, ctx, T), noise, schedule)
    m = margin * cfg.hop_length
    if m:
        out, audio = out[:, m:T - m], audio[:, m:T - m]
    loss = stft_magnitude_loss(out, audio, stft_resolutions(cfg))
    if mel_weight:
        loss = loss + mel_weight * F.l1_loss(log_mel(out, cfg), log_mel(audio.float(), cfg))
    return loss


LOSSES = {"wavenet": loss_wavenet, "wavernn": loss_wavernn, "diffwave": loss_diffwave}
OBJECTIVES = {"diffwave": {"noise": loss_diffwave, "sampler": loss_diffwave_sampler}}


def context_frames(cfg) -> int:
    if cfg.family == "wavenet":
        from .models.wavenet.runtime import upsample_context

        return upsample_context(cfg)
    if cfg.family == "wavernn":
        return cfg.pad + 2
    return 2  # DiffWave's transposed convs: one frame each side suffices, 2 for margin


PRUNE_EVERY = 100  # at most this many steps between mask refreshes while the sparsity ramps up


def train(model, data: str, out: str, steps: int, batch: int = 8, seg_frames: int = 16, lr: float = 1e-3,
          lr_final: float = 1e-4, save_every: int = 200, seed: int = 0, threads: int | None = None, log=print,
          progress: bool = True, max_files: int | None = None, device: str = "cpu", amp: bool = False,
          dither: float = 0.0, quiet_prob: float = 0.0, past_gain_db: float = 0.0, past_noise_std: float = 0.0,
          self_past_prob: float = 0.0, stop_at: int | None = None, objective: str | None = None,
          margin_frames: int = 0, mel_weight: float = 0.0, sparsity: float = 0.0, prune_start: int | None = None,
          prune_end: int | None = None, prune_targets: str = "gru", prune_cols: int = 1):
    """Train (or resume) and write the checkpoint every save_every steps and at the end.
    device "cuda": the model and each batch on the GPU; amp: bf16 autocast for the forward pass
    (weights, optimizer and checkpoints stay fp32), on a GPU or on the CPU (where oneDNN runs the
    bf16 convolutions and matrix products on AVX512-BF16 if the CPU has it: the C=32 DiffWave's
    step 0.58 s vs 0.92 s in fp32 on this 2-core Zen 4; slower than fp32 on CPUs without it).
    dither: see add_dither; quiet_prob (WaveNet):
    see quiet_spans. stop_at: stop (and save) at this step while the learning-rate schedule still
    runs to `steps`, for training in stages with different options. past_gain_db > 0 (WaveNet):
    in half the segments one span of the input is scaled by up to +-past_gain_db dB (quiet_spans).
    past_noise_std > 0 (WaveNet): noise of up to that many mu-law levels on the input (past_noise).
    self_past_prob > 0 (mu-law WaveNet): that share of segments trains on the model's own one-step
    samples as input (self_past). objective (DiffWave): "noise" (lmnt's noise-prediction MSE, the
    default) or "sampler" (loss_diffwave_sampler: the generation loop unrolled, an STFT loss; for
    fine-tuning a model trained on "noise", with --init); margin_frames, mel_weight: its margin and
    its log-mel L1 weight. sparsity > 0 (WaveRNN): prune the GRU matrices (prune_targets "gru+fc":
    and fc1 / fc2; "gru+fc+out": and fc3) to that share of zero 16 x prune_cols blocks (16 x 1:
    skipped by the C++ loop's float32 / float16 products; 16 x 4: by its int8 products too), ramping
    up between steps prune_start and prune_end (default 20% and 60% of steps;
    models/wavernn/sparsity.py)."""
    if threads:
        torch.set_num_threads(threads)
    amp_device = "cuda" if str(device).startswith("cuda") else "cpu"
    model.to(device)
    cfg = model.config
    state_path, log_path = out + ".state.pt", out + ".log.jsonl"
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = 0
    rng = np.random.default_rng(seed)
    # torch's own draws (the DiffWave objectives' noise) come from its global generator: seeded here
    # so that a run is reproducible (a resumed run restores the generator's state below)
    torch.manual_seed(seed)
    if os.path.exists(state_path) and os.path.exists(out):
        from .checkpoint import load_model

        loaded = load_model(out)
        if loaded.config != cfg:
            raise ValueError(f"{out} holds a different config than the one asked for: remove it or pass the same preset")
        model.load_state_dict(loaded.state_dict())
        st = torch.load(state_path, weights_only=True)
        opt.load_state_dict(st["optimizer"])
        step = int(st["step"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        log(f"resuming {out} at step {step}")
    loss_fn = LOSSES[cfg.family]
    extra = {}
    if objective is not None:
        choices = OBJECTIVES.get(cfg.family, {})
        if objective not in choices:
            raise ValueError(f"objective {objective!r} is not one of {cfg.family}'s: {sorted(choices) or 'none to choose'}")
        loss_fn = choices[objective]
    if margin_frames:
        if loss_fn is not loss_diffwave_sampler:
            raise ValueError("margin_frames is for the DiffWave 'sampler' objective")
        if not 0 <= 2 * margin_frames < seg_frames:
            raise ValueError(f"margin_frames {margin_frames} leaves no loss frames of the {seg_frames}-frame segment")
        extra["margin"] = margin_frames
    if mel_weight:
        if loss_fn is not loss_diffwave_sampler:
            raise ValueError("mel_weight is for the DiffWave 'sampler' objective")
        if not (mel_weight > 0 and math.isfinite(mel_weight)):
            raise ValueError(f"mel_weight must be a positive number, got {mel_weight}")
        extra["mel_weight"] = float(mel_weight)
    if loss_fn is loss_diffwave_sampler and (seg_frames - 2 * margin_frames) * cfg.hop_length <= cfg.n_fft // 2:
        raise ValueError(f"the sampler objective's STFT loss needs more than n_fft / 2 = {cfg.n_fft // 2} samples "
                         f"of loss per segment: raise seg_frames ({seg_frames}) or lower margin_frames")
    if (quiet_prob or past_gain_db or past_noise_std or self_past_prob) and cfg.family != "wavenet":
        raise ValueError("quiet_prob, past_gain_db, past_noise_std and self_past_prob are implemented for WaveNet "
                         "training only")
    if past_gain_db < 0 or past_noise_std < 0 or not 0 <= self_past_prob <= 1:
        raise ValueError(f"past_gain_db and past_noise_std must be >= 0 and self_past_prob in [0, 1], got "
                         f"{past_gain_db}, {past_noise_std}, {self_past_prob}")
    if self_past_prob and cfg.output != "mulaw":
        raise ValueError("self_past_prob is implemented for mu-law WaveNets")
    if quiet_prob:
        extra["quiet_prob"] = quiet_prob
    if past_gain_db:
        extra.update(gain_prob=0.5, gain_db=past_gain_db)
    if past_noise_std:
        extra.update(noise_std=past_noise_std)
    if self_past_prob:
        extra.update(self_prob=self_past_prob)
    prune_step = None  # sparsity: called with the step count after each optimizer step
    if sparsity:
        from .models.wavernn import sparsity as sp

        if cfg.family != "wavernn":
            raise ValueError("sparsity (block pruning) is implemented for WaveRNN training only")
        if not 0.0 < sparsity < 1.0 or prune_targets not in sp.TARGETS or prune_cols not in sp.COLS:
            raise ValueError(f"sparsity must be in (0, 1), prune_targets one of {sorted(sp.TARGETS)} and prune_cols "
                             f"one of {sp.COLS}, got {sparsity}, {prune_targets!r}, {prune_cols}")
        p0 = int(0.2 * steps) if prune_start is None else prune_start
        p1 = int(0.6 * steps) if prune_end is None else prune_end
        if not 0 <= p0 <= p1 <= steps:
            raise ValueError(f"need 0 <= prune_start <= prune_end <= steps, got {p0}, {p1}, {steps}")
        params = dict(model.named_parameters())
        masks = None
        every = max(1, min(PRUNE_EVERY, (p1 - p0) // 10))  # at least ~10 refreshes on a ramp

        def _prune_step(step):
            # masks from the weights' block norms every `every` steps of the ramp (and at its end,
            # and on resuming); between refreshes the same masks, applied after every optimizer step
            nonlocal masks
            if step < p0:
                return
            if masks is None or (step <= p1 and ((step - p0) % every == 0 or step == p1)):
                masks = sp.prune(model, sp.schedule(step, sparsity, p0, p1), prune_targets, prune_cols)
            else:
                with torch.no_grad():
                    for name, m in masks.items():
                        params[name].mul_(m)
        prune_step = _prune_step
    corpus = Corpus(data, cfg, max_files=max_files)
    log(f"{len(corpus.items)} files, {corpus.seconds / 60:.1f} min of audio; {sum(p.numel() for p in model.parameters()):,} parameters")
    ctx = context_frames(cfg)
    model.train()
    end = min(steps, stop_at) if stop_at else steps
    it = range(step, end)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, initial=step, total=steps, unit="step")
    t_start, recent = time.time(), []
    with open(log_path, "a") as logf:
        for step in it:
            frac = step / max(1, steps - 1)
            for g in opt.param_groups:  # exponential decay from lr to lr_final
                g["lr"] = lr * (lr_final / lr) ** frac
            audio, prev, mel = (t.to(device, non_blocking=True) for t in corpus.batch(rng, batch, seg_frames, ctx))
            if dither:
                audio, prev = add_dither(audio, dither), add_dither(prev, dither)
            with torch.autocast(amp_device, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(model, audio, prev, mel, ctx, **extra).float()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if prune_step:
                prune_step(step + 1)
            recent.append(loss.item())
            if progress:
                it.set_postfix(loss=f"{np.mean(recent[-50:]):.3f}")
            if (step + 1) % 10 == 0:
                logf.write(json.dumps({"step": step + 1, "loss": float(np.mean(recent[-10:])),
                                       "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t_start}) + "\n")
                logf.flush()
            if (step + 1) % save_every == 0 or step + 1 == end:
                _checkpoint(model, opt, step + 1, rng, out, state_path)
    model.eval()
    return model


def _checkpoint(model, opt, step, rng, out, state_path):
    model.eval()
    tmp = out + ".tmp"
    save(model, tmp)
    os.replace(tmp, out)
    torch.save({"step": step, "optimizer": opt.state_dict(), "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state()}, state_path + ".tmp")
    os.replace(state_path + ".tmp", state_path)
    model.train()
