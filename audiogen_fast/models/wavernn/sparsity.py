"""Block sparsity for WaveRNN: the structure of Sparse WaveRNN (Kalchbrenner et al. 2018, "Efficient
Neural Audio Synthesis": blocks of 16 outputs x 1 input, gradual magnitude pruning, quality kept to
~96% sparsity at 16x1) and LPCNet's block-sparse GRU. The C++ loop skips a pruned model's zero
blocks (csrc/cpu/sparse.h), with the same audio bits as the dense product; this module prunes.

A block is 16 consecutive output units of one gate (rows of a torch weight [out, in], aligned
within each gate of a GRU's [3R, in] matrices) times one input column. Pruning is balanced: every
16-unit row of blocks keeps the same number of inputs (the largest-norm blocks), so the C++
kernel's strips hold equally many blocks and no thread or strip waits on a denser one.
The schedule is Zhu & Gupta's (2017, "To prune, or not to prune"): sparsity
s(t) = s_final * (1 - (1 - (t - t0) / (t1 - t0))^3) between steps t0 and t1, masks refreshed every
`every` steps, weights multiplied by their mask after each optimizer step.
"""
from __future__ import annotations

import torch

BLOCK = 16
# the GRUs' matrices (by far the bulk of R2's multiply-adds: 4 x 1536 x 512 of 4.0 M); "fc" adds
# fc1 and fc2 (fc3, the logits, stays dense)
TARGETS = {"gru": ("rnn1.weight_ih_l0", "rnn1.weight_hh_l0", "rnn2.weight_ih_l0", "rnn2.weight_hh_l0"),
           "gru+fc": ("rnn1.weight_ih_l0", "rnn1.weight_hh_l0", "rnn2.weight_ih_l0", "rnn2.weight_hh_l0",
                      "fc1.weight", "fc2.weight")}


def _gates(name: str) -> int:
    return 3 if name.startswith("rnn") else 1


def _blocks(w: torch.Tensor, gates: int) -> torch.Tensor:
    """w [out, in] as its 16 x 1 blocks [gates, nb, 16, in]: each gate's rows in runs of 16 (the last
    run zero-padded)."""
    out, n_in = w.shape
    if out % gates:
        raise ValueError(f"{out} rows do not split into {gates} gates")
    rows = out // gates
    nb = -(-rows // BLOCK)
    g = w.detach().reshape(gates, rows, n_in)
    if nb * BLOCK > rows:
        g = torch.cat([g, g.new_zeros(gates, nb * BLOCK - rows, n_in)], 1)
    return g.reshape(gates, nb, BLOCK, n_in)


def block_mask(w: torch.Tensor, sparsity: float, gates: int = 1) -> torch.Tensor:
    """Mask [out, in] of w (float 0 / 1) keeping, in every run of 16 output rows within each of
    `gates` equal row groups, the round((1 - sparsity) * in) input columns of largest block norm."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    out, n_in = w.shape
    keep = max(1, round((1.0 - sparsity) * n_in))
    norms = _blocks(w.float(), gates).pow(2).sum(2)                  # [gates, nb, in]
    idx = norms.topk(keep, dim=2).indices
    m = torch.zeros_like(norms).scatter_(2, idx, 1.0)                 # [gates, nb, in]
    m = m.repeat_interleave(BLOCK, 1)[:, :out // gates]                # [gates, rows, in]
    return m.reshape(out, n_in).to(w.dtype)


def prune(model, sparsity: float, targets: str = "gru") -> dict:
    """Zero all but the largest blocks of the target matrices, in place; returns {name: mask}."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {sorted(TARGETS)}, got {targets!r}")
    params = dict(model.named_parameters())
    masks = {}
    with torch.no_grad():
        for name in TARGETS[targets]:
            p = params[name]
            masks[name] = block_mask(p, sparsity, _gates(name))
            p.mul_(masks[name])
    return masks


def schedule(step: int, final: float, start: int, end: int) -> float:
    """The sparsity at `step` (Zhu & Gupta's cubic ramp from 0 at `start` to `final` at `end`)."""
    if step < start:
        return 0.0
    if step >= end:
        return final
    return final * (1.0 - (1.0 - (step - start) / max(1, end - start)) ** 3)


def block_density(model, targets: str = "gru") -> float:
    """Fraction of the target matrices' 16 x 1 blocks holding a nonzero weight."""
    params = dict(model.named_parameters())
    nz = tot = 0
    for name in TARGETS[targets]:
        blocks = (_blocks(params[name], _gates(name)) != 0).any(2)
        nz += int(blocks.sum())
        tot += blocks.numel()
    return nz / tot
