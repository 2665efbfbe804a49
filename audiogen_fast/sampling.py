"""Reference sampling and mu-law codec (eager torch). csrc/cpu/sampling.h is its C++ twin.

Every backend turns the network outputs plus the injected noise into samples with these rules
(see DESIGN.md "Noise contract"); they are written in float64 so that the rounding of one
implementation against another (~1e-16) never decides a sample — only genuine differences in
the logits can, and those only when a uniform falls within rounding of a CDF boundary.
"""
from __future__ import annotations

import numpy as np
import torch

# ---- mu-law (mu = classes - 1; encode rounds half up; computed in float64) ---------------


def mulaw_compress(x: torch.Tensor, mu: int) -> torch.Tensor:
    """The mu-law curve, unquantized: x in [-1, 1] -> y in [-1, 1], in x's dtype."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / np.log1p(mu)


def mulaw_expand(y: torch.Tensor, mu: int) -> torch.Tensor:
    """mulaw_compress's inverse, in y's dtype."""
    return torch.sign(y) * (torch.pow(1.0 + mu, y.abs()) - 1.0) / mu


def mulaw_encode(x, classes: int = 256):
    """float audio in [-1, 1] -> int64 classes in [0, classes - 1]. numpy or torch in, same out."""
    mu = classes - 1
    y = mulaw_compress(torch.as_tensor(x).double().clamp(-1.0, 1.0), mu)
    k = torch.floor((y + 1.0) * 0.5 * mu + 0.5).long().clamp(0, mu)
    return k.numpy() if isinstance(x, np.ndarray) else k


def mulaw_decode(k, classes: int = 256):
    """int classes -> float32 audio in [-1, 1]. numpy or torch in, same out."""
    mu = classes - 1
    kt = torch.as_tensor(k)
    y = 2.0 * kt.double() / mu - 1.0
    x = mulaw_expand(y, mu).float()
    return x.numpy() if isinstance(k, np.ndarray) else x


_LABEL_VALUES: dict = {}


def label_to_float(k: torch.Tensor, classes: int) -> torch.Tensor:
    """Class index -> its value in [-1, 1] (fatchord's label_2_float): 2 k / (classes - 1) - 1 in
    float32 with an IEEE division, the same on every device. (On CUDA, torch divides a tensor by
    a Python scalar by multiplying with its reciprocal, 1 ulp off for some k, so the values are
    computed once on the CPU and looked up; the kernels divide with round-to-nearest too.)"""
    key = (int(classes), k.device)
    table = _LABEL_VALUES.get(key)
    if table is None:
        table = (2.0 * torch.arange(classes, dtype=torch.float32) / float(classes - 1) - 1.0).to(k.device)
        _LABEL_VALUES[key] = table
    return table[k.long()]


# ---- samplers ---------------------------------------------------------------------------


def sample_softmax(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """logits [..., C], u [...] in [0, 1) -> int64 [...]: smallest k with CDF_k > u."""
    l = logits.double()
    e = torch.exp(l - l.max(dim=-1, keepdim=True).values)
    c = torch.cumsum(e, dim=-1)
    target = u.double().unsqueeze(-1) * c[..., -1:]
    return (c <= target).sum(dim=-1).clamp(max=logits.shape[-1] - 1)


def sample_mol(params: torch.Tensor, u: torch.Tensor, log_scale_min: float) -> torch.Tensor:
    """params [..., 3M] (logit_probs | means | log_scales), u [..., 2] -> float32 [...] in [-1, 1]."""
    m = params.shape[-1] // 3
    k = sample_softmax(params[..., :m], u[..., 0]).unsqueeze(-1)
    mean = torch.gather(params[..., m:2 * m], -1, k).squeeze(-1).double()
    log_s = torch.gather(params[..., 2 * m:3 * m], -1, k).squeeze(-1).double().clamp(min=float(np.float32(log_scale_min)))
    u2 = u[..., 1].double().clamp(1e-5, 1.0 - 1e-5)
    x = mean + torch.exp(log_s) * (torch.log(u2) - torch.log(1.0 - u2))
    return x.clamp(-1.0, 1.0).float()


def sample_gaussian(params: torch.Tensor, z: torch.Tensor, log_scale_min: float) -> torch.Tensor:
    """params [..., 2] (mean | log_std), z [...] standard normal -> float32 [...] in [-1, 1]."""
    log_s = params[..., 1].double().clamp(min=float(np.float32(log_scale_min)))
    x = params[..., 0].double() + torch.exp(log_s) * z.double()
    return x.clamp(-1.0, 1.0).float()
