"""Plain-loop pooling: max, average and adaptive average, the tests' oracle (see ``reference.py``).

Each ``*_naive`` forward loops over the output positions; each ``*_naive_backward`` sends ``gy``
back along the same connections.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import IntPair, conv_output_size, pair as _pair


def _pool_geometry(x, kernel_size, stride, padding, ceil_mode):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    h, w = x.shape[2:]
    ho = conv_output_size(h, kh, sh, ph, ceil_mode=ceil_mode)
    wo = conv_output_size(w, kw, sw, pw, ceil_mode=ceil_mode)
    return (kh, kw), (sh, sw), (ph, pw), (ho, wo)


def max_pool2d_naive(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                     ceil_mode: bool = False) -> np.ndarray:
    """y[n, c, i, j] = max of the window at (i*sh - ph, j*sw - pw), padding excluded (never wins)."""
    y, _ = _max_pool2d_naive_with_argmax(x, kernel_size, stride, padding, ceil_mode)
    return y


def _max_pool2d_naive_with_argmax(x, kernel_size, stride, padding, ceil_mode):
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    n, c, h, w = x.shape
    y = np.zeros((n, c, ho, wo), dtype=x.dtype)
    where = np.zeros((n, c, ho, wo, 2), dtype=np.int64)  # (row, col) in x of each maximum
    for s in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    best, at = -math.inf, None
                    for r in range(max(i * sh - ph, 0), min(i * sh - ph + kh, h)):  # real pixels only
                        for q in range(max(j * sw - pw, 0), min(j * sw - pw + kw, w)):
                            if x[s, ch, r, q] > best:   # first maximum wins ties, as PyTorch
                                best, at = x[s, ch, r, q], (r, q)
                    y[s, ch, i, j], where[s, ch, i, j] = best, at
    return y, where


def max_pool2d_naive_backward(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                              ceil_mode: bool, gy: np.ndarray) -> np.ndarray:
    """dx: each gy[n, c, i, j] goes to the position of its window's maximum (added, when windows
    overlap and share a maximum)."""
    _, where = _max_pool2d_naive_with_argmax(x, kernel_size, stride, padding, ceil_mode)
    dx = np.zeros_like(x)
    n, c, ho, wo = gy.shape
    for s in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    r, q = where[s, ch, i, j]
                    dx[s, ch, r, q] += gy[s, ch, i, j]
    return dx


def _avg_window(i, j, geometry, h, w):
    """Rows/cols of the real pixels in window (i, j) and its divisor (PyTorch, count_include_pad):
    the window clipped to the padded border [-p, size + p), padding counted."""
    (kh, kw), (sh, sw), (ph, pw), _ = geometry
    r0, q0 = i * sh - ph, j * sw - pw
    divisor = (min(r0 + kh, h + ph) - r0) * (min(q0 + kw, w + pw) - q0)
    return slice(max(r0, 0), min(r0 + kh, h)), slice(max(q0, 0), min(q0 + kw, w)), divisor


def avg_pool2d_naive(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                     ceil_mode: bool = False) -> np.ndarray:
    """y[n, c, i, j] = (sum of the real pixels of window (i, j)) / divisor (see ``_avg_window``)."""
    geometry = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    n, c, h, w = x.shape
    ho, wo = geometry[3]
    y = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            rows, cols, divisor = _avg_window(i, j, geometry, h, w)
            for s in range(n):
                for ch in range(c):
                    y[s, ch, i, j] = x[s, ch, rows, cols].sum() / divisor
    return y


def avg_pool2d_naive_backward(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                              ceil_mode: bool, gy: np.ndarray) -> np.ndarray:
    """dx: each gy[n, c, i, j] / divisor is added to every real pixel of window (i, j)."""
    geometry = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    n, c, h, w = x.shape
    ho, wo = geometry[3]
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            rows, cols, divisor = _avg_window(i, j, geometry, h, w)
            for s in range(n):
                for ch in range(c):
                    dx[s, ch, rows, cols] += gy[s, ch, i, j] / divisor
    return dx


def _adaptive_bins(size, out):
    """PyTorch's bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_size(x, output_size):
    oh, ow = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    return (x.shape[2] if oh is None else oh), (x.shape[3] if ow is None else ow)


def adaptive_avg_pool2d_naive(x: np.ndarray, output_size: int | tuple[int | None, int | None]) -> np.ndarray:
    """y[n, c, i, j] = mean of x[n, c, rows of bin i, cols of bin j] (``None`` keeps a size)."""
    oh, ow = _adaptive_size(x, output_size)
    y = np.zeros(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for i, (r0, r1) in enumerate(_adaptive_bins(x.shape[2], oh)):
        for j, (q0, q1) in enumerate(_adaptive_bins(x.shape[3], ow)):
            y[:, :, i, j] = x[:, :, r0:r1, q0:q1].mean(axis=(2, 3))
    return y


def adaptive_avg_pool2d_naive_backward(x: np.ndarray, output_size: int | tuple[int | None, int | None],
                                       gy: np.ndarray) -> np.ndarray:
    """dx: gy[n, c, i, j] / (bin area) added to every pixel of bin (i, j)."""
    oh, ow = _adaptive_size(x, output_size)
    dx = np.zeros_like(x)
    for i, (r0, r1) in enumerate(_adaptive_bins(x.shape[2], oh)):
        for j, (q0, q1) in enumerate(_adaptive_bins(x.shape[3], ow)):
            dx[:, :, r0:r1, q0:q1] += gy[:, :, i, j][:, :, None, None] / ((r1 - r0) * (q1 - q0))
    return dx
