"""Plain-loop reference implementations: the teaching version of each layer, and the tests' oracle.

Everything here is deliberately *slow and obvious*: host NumPy code (``numpy.ndarray`` in and out,
never device arrays), explicit Python loops over the output positions, each line a direct
transcription of the formula in the op's docstring. Read these first; then read the vectorised
versions in ``conv.py`` and ``pooling.py``, which must (and, per the tests, do) give the same numbers.
The pooling loops are in ``reference_pooling.py`` (imported here too).

Each ``*_naive`` forward has a ``*_naive_backward`` that takes the forward's arguments plus the
upstream gradient ``gy`` (dL/dy) and returns the input gradients, obtained by looping over the same
positions and sending ``gy`` back along the same connections ("every output position added
``w * x`` into y, so it adds ``w * gy`` into dx and ``x * gy`` into dw").
"""
from __future__ import annotations

import numpy as np

from .geometry import IntPair, conv_output_size, pad2d, pair as _pair
from .reference_pooling import (adaptive_avg_pool2d_naive, adaptive_avg_pool2d_naive_backward,  # noqa: F401
                                avg_pool2d_naive, avg_pool2d_naive_backward, max_pool2d_naive,
                                max_pool2d_naive_backward)


# ------------------------------------------------------------------------------------------------
# convolution
# ------------------------------------------------------------------------------------------------
def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: IntPair = 1,
                 padding: IntPair = 0, groups: int = 1) -> np.ndarray:
    """y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, g*Cg + c, i*sh + u, j*sw + v]."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    per_group = c_out // groups
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)
    x_pad = pad2d(x, (ph, ph, pw, pw))
    y = np.zeros((n, c_out, ho, wo), dtype=np.result_type(x, w))
    for s in range(n):
        for o in range(c_out):
            g = o // per_group                      # the group of output channel o
            channels = slice(g * cg, (g + 1) * cg)  # ... sees only these input channels
            for i in range(ho):
                for j in range(wo):
                    patch = x_pad[s, channels, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[s, o, i, j] = np.sum(patch * w[o]) + (0 if b is None else b[o])
    return y


def conv2d_naive_backward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: IntPair, padding: IntPair,
                          groups: int, gy: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Returns ``(dx, dw, db)`` (``db`` None when ``b`` is None) for ``conv2d_naive``."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    per_group = c_out // groups
    ho, wo = gy.shape[2:]
    x_pad = pad2d(x, (ph, ph, pw, pw))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for s in range(n):
        for o in range(c_out):
            g = o // per_group
            channels = slice(g * cg, (g + 1) * cg)
            for i in range(ho):
                for j in range(wo):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    dx_pad[s, channels, rows, cols] += w[o] * gy[s, o, i, j]
                    dw[o] += x_pad[s, channels, rows, cols] * gy[s, o, i, j]
    dx = dx_pad[:, :, ph:ph + h, pw:pw + wd]
    db = None if b is None else gy.sum(axis=(0, 2, 3))
    return dx, dw, db


# ------------------------------------------------------------------------------------------------
# local response normalization
# ------------------------------------------------------------------------------------------------
def local_response_norm_naive(a: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
                              k: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(b, s)`` channel by channel: ``s_c = k + alpha/size * sum of a_c'^2`` over the window
    ``c' = c - size//2 ... c + (size-1)//2`` (clipped to the channels), ``b_c = a_c * s_c^-beta``.
    ``a`` is (N, C, *); the sums are taken in float64 and both results cast back to ``a``'s dtype."""
    C, sq = a.shape[1], a.astype(np.float64) ** 2
    s = np.empty_like(sq)
    for c in range(C):
        window = sq[:, max(0, c - size // 2):min(C, c + (size - 1) // 2 + 1)]
        s[:, c] = k + alpha / size * window.sum(axis=1)
    return (a * s ** -beta).astype(a.dtype), s.astype(a.dtype)
