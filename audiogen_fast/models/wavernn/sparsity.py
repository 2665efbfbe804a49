"""Block sparsity for WaveRNN: the structure of Sparse WaveRNN (Kalchbrenner et al. 2018, "Efficient
Neural Audio Synthesis": blocks of 16 outputs x 1 input, gradual magnitude pruning, quality kept to
~96% sparsity at 16x1) and LPCNet's block-sparse GRU. The C++ loop skips a pruned model's zero
blocks (csrc/cpu/sparse.h), with the same audio bits as the dense product; this module prunes.

A block is 16 consecutive output units of one gate (rows of a torch weight [out, in], aligned
within each gate of a GRU's [3R, in] matrices) times `cols` input columns (aligned at multiples of
`cols`): 16 x 1 (cols=1) is what the fp32 / fp16 loop skips; 16 x 4 (cols=4) is what the int8 loop
skips (4 inputs are one u8 x s8 dot product's quad; LPCNet prunes its int8 GRU in 8 x 4 blocks for
that reason), and the fp32 / fp16 loop skips it too (it is four 16 x 1 blocks). Pruning is
balanced: every 16-unit row of blocks keeps the same number of blocks (the largest-norm ones), so
the C++ kernel's strips hold equally many blocks and no thread or strip waits on a denser one.
The schedule is Zhu & Gupta's (2017, "To prune, or not to prune"): sparsity
s(t) = s_final * (1 - (1 - (t - t0) / (t1 - t0))^3) between steps t0 and t1, masks refreshed every
`every` steps, weights multiplied by their mask after each optimizer step.
"""
from __future__ import annotations

import torch

BLOCK = 16
COLS = (1, 4)  # the block widths (inputs) the C++ loops skip: 16 x 1 (fp32 / fp16), 16 x 4 (int8 too)
# the matrices pruned: the GRUs (the paper's choice), those and fc1 / fc2, or those and the output
# layer fc3 too ("gru+fc+out": R2's fc3, 512 x 512, is 40% of the int8 weights a step once the rest is
# 90% sparse; whether a model keeps its quality with a sparse output layer is for its trainer to measure)
_GRU = ("rnn1.weight_ih_l0", "rnn1.weight_hh_l0", "rnn2.weight_ih_l0", "rnn2.weight_hh_l0")
TARGETS = {"gru": _GRU, "gru+fc": _GRU + ("fc1.weight", "fc2.weight"),
           "gru+fc+out": _GRU + ("fc1.weight", "fc2.weight", "fc3.weight")}


def _gates(name: str) -> int:
    return 3 if name.startswith("rnn") else 1


def _blocks(w: torch.Tensor, gates: int, cols: int = 1) -> torch.Tensor:
    """w [out, in] as its 16 x cols blocks [gates, nb, 16, nc, cols]: each gate's rows in runs of 16,
    the inputs in runs of cols (the last runs zero-padded)."""
    if cols not in COLS:
        raise ValueError(f"block width (cols) must be one of {COLS}, got {cols}")
    out, n_in = w.shape
    if out % gates:
        raise ValueError(f"{out} rows do not split into {gates} gates")
    rows = out // gates
    nb, nc = -(-rows // BLOCK), -(-n_in // cols)
    g = torch.nn.functional.pad(w.detach().reshape(gates, rows, n_in), (0, nc * cols - n_in, 0, nb * BLOCK - rows))
    return g.reshape(gates, nb, BLOCK, nc, cols)


def block_mask(w: torch.Tensor, sparsity: float, gates: int = 1, cols: int = 1) -> torch.Tensor:
    """Mask [out, in] of w (float 0 / 1) keeping, in every run of 16 output rows within each of
    `gates` equal row groups, the round((1 - sparsity) * blocks) 16 x cols blocks of largest norm."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    out, n_in = w.shape
    norms = _blocks(w.float(), gates, cols).pow(2).sum((2, 4))      # [gates, nb, nc]
    keep = max(1, round((1.0 - sparsity) * norms.shape[2]))
    idx = norms.topk(keep, dim=2).indices
    m = torch.zeros_like(norms).scatter_(2, idx, 1.0)                 # [gates, nb, nc]
    m = m.repeat_interleave(BLOCK, 1).repeat_interleave(cols, 2)      # [gates, rows, inputs], padded
    return m[:, :out // gates, :n_in].reshape(out, n_in).to(w.dtype)


def prune(model, sparsity: float, targets: str = "gru", cols: int = 1) -> dict:
    """Zero all but the largest 16 x cols blocks of the target matrices, in place; returns {name: mask}."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {sorted(TARGETS)}, got {targets!r}")
    params = dict(model.named_parameters())
    masks = {}
    with torch.no_grad():
        for name in TARGETS[targets]:
            p = params[name]
            masks[name] = block_mask(p, sparsity, _gates(name), cols)
            p.mul_(masks[name])
    return masks


def schedule(step: int, final: float, start: int, end: int) -> float:
    """The sparsity at `step` (Zhu & Gupta's cubic ramp from 0 at `start` to `final` at `end`)."""
    if step < start:
        return 0.0
    if step >= end:
        return final
    return final * (1.0 - (1.0 - (step - start) / max(1, end - start)) ** 3)


def block_density(model, targets: str = "gru", cols: int = 1) -> float:
    """Fraction of the target matrices' 16 x cols blocks holding a nonzero weight."""
    params = dict(model.named_parameters())
    nz = tot = 0
    for name in TARGETS[targets]:
        blocks = (_blocks(params[name], _gates(name), cols) != 0).any(4).any(2)
        nz += int(blocks.sum())
        tot += blocks.numel()
    return nz / tot
