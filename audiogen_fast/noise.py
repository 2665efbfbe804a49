"""The one seeded noise source every backend shares (the noise contract of DESIGN.md).

Noise is counter-based: value i of stream s for seed k is a pure function hash(k, s, i)
(SplitMix64 finalizer), so

* the same seed gives the same noise on every machine, process and backend;
* any slice [i0, i1) can be drawn without drawing what comes before it (streaming, chunked
  generation and GPU kernels that want to draw their own noise all agree with one-shot draws);
* row b of a batch drawn with seeds [s0, s1, ...] equals a run alone with seed s_b.

Layouts (per seed; a batch stacks them on a new axis 0, diffusion on axis 1):
  softmax (mu-law) AR models: uniforms [T] in [0, 1)                       (stream 0)
  mixture of logistics:       uniforms [T, 2]: u1 (stream 0), u2 (stream 1)
  single Gaussian:            standard normals [T]                         (stream 2)
  diffusion:                  standard normals [S, T]: row i from stream 100 + i;
                              row 0 is x_T, row i >= 1 the z added after the i-th step
  WaveRNN fold generation:    the folded rows use the same streams, indexed fold * L + j
"""
from __future__ import annotations

import numpy as np

_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

STREAM_U1 = 0
STREAM_U2 = 1
STREAM_GAUSS = 2
STREAM_DIFFUSION = 100


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def check_seed(seed) -> int:
    """seed as an int: a signed or unsigned 64-bit integer (a negative seed is its two's
    complement: hash() values work); TypeError for a non-integer, ValueError for a larger one
    (it would silently wrap onto another seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not -(1 << 63) <= int(seed) <= _M64:
        raise ValueError(f"seed must be a 64-bit integer, in [-2**63, 2**64), got {int(seed)}")
    return int(seed)


def _key(seed: int, stream: int) -> np.uint64:
    s = np.array([check_seed(seed) & _M64], dtype=np.uint64)
    t = np.array([(int(stream) * 0xD1B54A32D192ED03) & _M64], dtype=np.uint64)
    return _mix(_mix(s) ^ t)[0]


def _bits(seed: int, stream: int, n: int, offset: int = 0) -> np.ndarray:
    if n < 0 or offset < 0:
        raise ValueError("noise: n and offset must be >= 0")
    idx = np.arange(offset, offset + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix(_key(seed, stream) + (idx + np.uint64(1)) * _GOLDEN)


def uniform(seed: int, n: int, stream: int = STREAM_U1, offset: int = 0) -> np.ndarray:
    """n float32 uniforms in [0, 1) (24 random bits each, exactly representable)."""
    b = _bits(seed, stream, n, offset)
    return ((b >> np.uint64(40)).astype(np.float64) * (1.0 / (1 << 24))).astype(np.float32)


def normal(seed: int, n: int, stream: int = STREAM_GAUSS, offset: int = 0) -> np.ndarray:
    """n float32 standard normals (Box-Muller in float64 on two 53-bit uniforms per value)."""
    idx = np.arange(offset, offset + n, dtype=np.uint64)
    key = _key(seed, stream)
    with np.errstate(over="ignore"):
        h1 = _mix(key + (np.uint64(2) * idx + np.uint64(1)) * _GOLDEN)
        h2 = _mix(key + (np.uint64(2) * idx + np.uint64(2)) * _GOLDEN)
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))  # (0, 1)
    u2 = (h2 >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)


# ---- layouts of the noise contract -------------------------------------------------------

def ar_noise(seed: int, n: int, output: str, offset: int = 0) -> np.ndarray:  # noqa: D401
    """Noise for one autoregressive stream of n samples: [n] or [n, 2] (mixture)."""
    if output == "softmax":
        return uniform(seed, n, STREAM_U1, offset)
    if output == "mol":
        return np.stack([uniform(seed, n, STREAM_U1, offset), uniform(seed, n, STREAM_U2, offset)], axis=-1)
    if output == "gaussian":
        return normal(seed, n, STREAM_GAUSS, offset)
    raise ValueError(f"unknown output distribution {output!r} (expected softmax, mol or gaussian)")


def diffusion_noise(seed: int, steps: int, n: int, offset: int = 0) -> np.ndarray:
    """[steps, n] standard normals: row 0 is x_T, row i the z added after denoising step i."""
    return np.stack([normal(seed, n, STREAM_DIFFUSION + i, offset) for i in range(steps)])
