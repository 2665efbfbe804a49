"""Many independent streams (different mels, seeds, start times) advanced together.

    ms = voc.open_streams()
    a = ms.add(seed=0); b = ms.add(seed=7)
    ms.push(a, mel_chunk); ms.push(b, other_chunk); ...; ms.end(a)
    for sid, audio in ms.step().items(): ...      # one batched loop call per step

Each step takes, from every stream that has one ready, its next block (BLOCK_FRAMES frames) and
runs all of them as one batch through the backend's loop; every stream's audio equals running it
alone (generate() on its whole mel with its seed). WaveNet blocks share one batched call when the
block length is a multiple of every ring buffer's period (true for the standard configs); else
each stream runs on its own.
"""
from __future__ import annotations

import numpy as np
import torch

from . import noise as noise_mod
from .emphasis import Deemphasis
from .models.base import one_torch_thread
from .models.wavenet.cond import cat_cond


class MultiStream:
    def __init__(self, voc):
        from .engine import InputError

        self.voc, self.cfg = voc, voc.config
        self.fam = voc.family.name
        if self.fam not in ("wavenet", "wavernn"):
            raise InputError(f"open_streams() runs autoregressive models; {self.fam} streams with Vocoder.stream()")
        if not self.cfg.conditional:
            raise InputError("open_streams() vocodes mel streams: this model is unconditional")
        self.rt = voc.family.runtime
        # the Vocoder's dtype selects the cpp loop's weight form (fp16 storage, bf16 / int8 products)
        if self.fam == "wavenet":
            self.loop, self.run_kw = self.rt.make_loop(voc._run_model, voc.backend, voc.dtype)
        else:
            self.loop, self.run_kw = self.rt.make_loop(voc._run_model, voc.backend, voc.dtype), {}
        self.streams: dict[int, object] = {}
        self.seeds: dict[int, int] = {}
        self.deemph: dict[int, Deemphasis] = {}
        self._next = 0

    # ---- stream lifecycle ------------------------------------------------------------------
    def add(self, seed: int = 0, speaker=None) -> int:
        seed = self.voc._check_seed(seed)
        model = self.voc._run_model
        kind = self.cfg.noise_kind
        dev = next(model.parameters()).device

        def noise_fn(a, b, seed=seed):
            z = noise_mod.ar_noise(seed, b - a, kind, offset=a)[None]
            t = torch.from_numpy(z).to(dev).float()
            return t.reshape(1, b - a, -1).contiguous() if self.fam == "wavenet" else t

        if self.fam == "wavenet":
            spk = None
            if self.cfg.gin_channels:
                if speaker is None:
                    raise self._err(f"this model has {self.cfg.n_speakers} speakers: pass speaker=")
                if not (0 <= int(speaker) < self.cfg.n_speakers):
                    raise self._err(f"speaker ids must be in [0, {self.cfg.n_speakers}), got {speaker!r}")
                spk = torch.tensor([int(speaker)])
            elif speaker is not None:
                raise self._err("this model has no speaker (global) conditioning")
            sess = self.rt.Session(model, self.loop, 1, noise_fn=noise_fn, speaker=spk, **self.run_kw)
        else:
            if speaker is not None:
                raise self._err("this model has no speaker (global) conditioning")
            sess = self.rt.Session(model, self.loop, 1, noise_fn=noise_fn)
        sid = self._next
        self._next += 1
        self.streams[sid] = sess
        self.seeds[sid] = seed
        if self.cfg.preemphasis:   # each stream's own de-emphasis state (emphasis.py)
            self.deemph[sid] = Deemphasis(self.cfg.preemphasis)
        return sid

    def push(self, sid: int, mel) -> None:
        sess = self._get(sid)
        if sess.ended:
            raise self._err(f"stream {sid} has ended")
        m = self.voc._check_mel(mel, allow_empty=True)
        if m.ndim != 2:
            raise self._err(f"push takes one stream's mel [n_mels, frames], got shape {m.shape}")
        if m.shape[-1]:  # zero frames: nothing new
            sess.feed(torch.from_numpy(m)[None])

    def end(self, sid: int) -> None:
        self._get(sid).end()

    def close(self, sid: int) -> None:
        self.streams.pop(sid, None)
        self.seeds.pop(sid, None)
        self.deemph.pop(sid, None)

    @property
    def active(self) -> list:
        return list(self.streams)

    # ---- one batched step ------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> dict:
        """Run the next ready block of every stream (one batched call per block length).
        Returns {stream id: float32 audio} for the streams that produced audio."""
        ready = []
        for sid, sess in self.streams.items():
            blk = sess.next_block()
            if blk is not None:
                ready.append((sid, sess, blk))
        groups: dict[int, list] = {}
        for item in ready:
            n = item[2][1] - item[2][0]
            groups.setdefault(n, []).append(item)
        out = {}
        # the batches' torch work (concatenations, noise, decoding) on one thread, as the Sessions'
        # conditioning (base.one_torch_thread): libgomp's workers would spin after each parallel
        # region and take cores from the C++ loop that runs next
        with one_torch_thread(self.voc.device):
            for n, items in groups.items():
                if self.fam == "wavenet" and n % items[0][1].ring_period():
                    batches = [[it] for it in items]  # ring positions would not line up: one by one
                else:
                    batches = [items]
                for batch in batches:
                    out.update(self._run_batch(batch))
        return out

    def _run_batch(self, items):
        sessions = [it[1] for it in items]
        states = [s.state for s in sessions]
        cat = [torch.cat([st[i] for st in states]) for i in range(len(states[0]))]
        if self.fam == "wavenet":
            n0s = [it[2][0] for it in items]
            t0 = n0s[0] if len(items) == 1 else 0  # aligned blocks: positions repeat with the ring period
            cond = cat_cond([it[2][2] for it in items])  # dense tensors or FrameConds
            noise = torch.cat([s.noise_fn(it[2][0], it[2][1]) for s, it in zip(sessions, items)])
            res = self.loop.run_chunk(cond, cat[0], cat[1], t0, noise=noise, **self.run_kw)
            audio = self.rt.decode_output(self.cfg, res.long() if self.cfg.output == "mulaw" else res)
        else:
            mel_up = torch.cat([it[2][2] for it in items])
            aux = torch.cat([it[2][3] for it in items])
            noise = torch.cat([s.noise_fn(it[2][0], it[2][1]) for s, it in zip(sessions, items)])
            samples, classes = self.loop.run_chunk(mel_up, aux, cat, noise=noise)
            audio = torch.as_tensor(self.rt.to_audio(self.cfg, samples.cpu(), classes.cpu() if classes is not None else None)).float().numpy()
        for b, (st, s) in enumerate(zip(states, sessions)):
            for i, t in enumerate(st):
                t.copy_(cat[i][b:b + 1])
        out = {it[0]: np.ascontiguousarray(audio[b], dtype=np.float32) for b, it in enumerate(items)}
        return {sid: self.deemph[sid](a[None])[0] if sid in self.deemph else a for sid, a in out.items()}

    def _get(self, sid):
        if sid not in self.streams:
            raise self._err(f"unknown stream {sid!r}")
        return self.streams[sid]

    @staticmethod
    def _err(msg):
        from .engine import InputError

        return InputError(msg)
