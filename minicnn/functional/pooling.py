"""Pooling: max, average and adaptive average over windows of NCHW maps (docs/layers/pooling.md).

Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = conv_output_size(H, kh, sh, ph, ceil_mode).
Each channel is pooled on its own; ``stride=None`` means ``stride = kernel_size``. ``ceil_mode``
adds a last, partial window at the bottom/right (GoogLeNet); it is padded like the border.

How: view the N*C channels as N*C one-channel images, pad them, and reuse convolution's im2col,
which puts window k's kh*kw pixels in column k: a pool is then a reduction down the columns.
    max:   y[k] = max_r cols[r, k]       (padding = -inf never wins)
           dx: g[k] goes to the row r*(k) of the maximum (the first one on ties, as PyTorch)
    avg:   y[k] = sum_r cols[r, k] / d[k] (padding = 0, counted in d: PyTorch's default)
           dx: g[k] / d[k] goes to every pixel of window k
Backward builds dcols and folds it back with col2im, which sums where windows overlap.
The divisor: a ceil-mode window that hangs past the padded border counts only its part inside it,
d = (min(r0 + kh, H + ph) - r0) * (min(q0 + kw, W + pw) - q0), r0 = i*sh - ph, q0 = j*sw - pw.

Adaptive average: output size fixed; bin i of ``out`` along an axis of ``size`` covers rows
[floor(i*size/out), ceil((i+1)*size/out)) (PyTorch's bins). y = the mean of each bin;
dx: g / (bin size) added to every pixel of the bin. (1, 1) is global average pooling.

``minicnn/fast/`` replaces these by separable passes on the CPU's cores and CUDA kernels, tested equal.
"""
from __future__ import annotations

import numpy  # host side only: the gradient-check cases' data

from .. import backend
from ..function import Function
from ..tensor import Tensor
from .conv import col2im, im2col
from .geometry import IntPair, adaptive_output_size, conv_output_size, pad2d, pair
from .validation import validate_adaptive_pool2d, validate_pool2d


class _Pool2d(Function):
    """The window geometry shared by max and average pooling, and the pad + im2col step."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 ceil_mode: bool = False):
        self.kernel = pair(kernel_size, "kernel_size")
        self.stride = pair(kernel_size if stride is None else stride, "stride")
        self.padding, self.ceil_mode = pair(padding, "padding"), bool(ceil_mode)

    def window_geometry(self, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """``(Ho, Wo), (top, bottom, left, right)``: the output size for an (H, W) map, and the
        padding its windows need: ``padding`` on every side, plus, in ceil mode, the rows and
        columns that a last, partial window reaches past the bottom/right padding."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        ho = conv_output_size(h, kh, sh, ph, ceil_mode=self.ceil_mode)
        wo = conv_output_size(w, kw, sw, pw, ceil_mode=self.ceil_mode)
        extra_h = max(0, (ho - 1) * sh + kh - (h + 2 * ph))   # room for ceil-mode windows
        extra_w = max(0, (wo - 1) * sw + kw - (w + 2 * pw))
        return (ho, wo), (ph, ph + extra_h, pw, pw + extra_w)

    def _columns(self, x, pad_value):
        """cols (kh*kw, N*C*Ho*Wo) of the padded input; remembers the shapes for backward."""
        n, c, h, w = self.x_shape = x.shape
        (self.ho, self.wo), pads = self.window_geometry(h, w)
        x_pad = pad2d(x.reshape(n * c, 1, h, w), pads, pad_value)
        self.padded_shape = x_pad.shape
        return im2col(x_pad, *self.kernel, self.stride)

    def _fold(self, dcols):
        """col2im back to the padded one-channel images, then cut out (N, C, H, W)."""
        (kh, kw), (ph, pw) = self.kernel, self.padding
        n, c, h, w = self.x_shape
        dx_pad = col2im(dcols, self.padded_shape, kh, kw, self.stride)
        return dx_pad[:, 0, ph:ph + h, pw:pw + w].reshape(n, c, h, w)


class MaxPool2d(_Pool2d):
    """y = max over each window;  dx = g routed to each window's (first) maximum."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        lowest = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        cols = self._columns(x, lowest)                       # (kh*kw, N*C*Ho*Wo)
        self.argmax = cols.argmax(axis=0)                     # first maximum on ties
        y = cols.max(axis=0)                                  # a NaN in the window gives NaN
        return y.reshape(self.x_shape[:2] + (self.ho, self.wo))

    def backward(self, g):
        xp = backend.get_array_module(g)
        dcols = xp.zeros((self.kernel[0] * self.kernel[1], g.size), dtype=g.dtype)
        dcols[self.argmax, xp.arange(g.size)] = g.reshape(-1)
        return self._fold(dcols)


class AvgPool2d(_Pool2d):
    """y = window sum / d (padding counts as zeros);  dx = g / d spread over the window."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        cols = self._columns(x, 0)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        h, w = self.x_shape[2:]
        r0, q0 = xp.arange(self.ho) * sh - ph, xp.arange(self.wo) * sw - pw
        rows, columns = xp.minimum(r0 + kh, h + ph) - r0, xp.minimum(q0 + kw, w + pw) - q0
        self.divisor = (rows[:, None] * columns[None, :]).astype(x.dtype)       # d, (Ho, Wo)
        y = cols.sum(axis=0).reshape(self.x_shape[:2] + (self.ho, self.wo))
        return y / self.divisor

    def backward(self, g):
        xp = backend.get_array_module(g)
        share = (g / self.divisor).reshape(1, -1)
        return self._fold(xp.broadcast_to(share, (self.kernel[0] * self.kernel[1], share.size)))


def _bins(size, out):
    """PyTorch's adaptive bins along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    """y[..., i, j] = mean of bin (i, j);  dx = g / (bin size) added over the bin."""

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        self.output_size = output_size

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.x_shape = x.shape
        oh, ow = adaptive_output_size(x.shape, self.output_size)
        self.bins = [(r, q) for r in _bins(x.shape[2], oh) for q in _bins(x.shape[3], ow)]
        y = xp.stack([x[:, :, r0:r1, q0:q1].mean(axis=(2, 3)) for (r0, r1), (q0, q1) in self.bins], -1)
        return y.reshape(x.shape[:2] + (oh, ow))

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.zeros(self.x_shape, dtype=g.dtype)
        g = g.reshape(g.shape[:2] + (-1,))
        for k, ((r0, r1), (q0, q1)) in enumerate(self.bins):
            dx[:, :, r0:r1, q0:q1] += (g[:, :, k] / ((r1 - r0) * (q1 - q0)))[:, :, None, None]
        return dx


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False) -> Tensor:
    """Max over (kh, kw) windows of ``x`` (N, C, H, W); padding never wins. -> (N, C, Ho, Wo)."""
    validate_pool2d("max_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d(kernel_size, stride, padding, ceil_mode)(x)


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False) -> Tensor:
    """Mean over (kh, kw) windows of ``x``, padding counted in the divisor. -> (N, C, Ho, Wo)."""
    validate_pool2d("avg_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return AvgPool2d(kernel_size, stride, padding, ceil_mode)(x)


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """Average ``x`` over PyTorch's adaptive bins to (N, C, *output_size); ``None`` keeps an axis."""
    validate_adaptive_pool2d("adaptive_avg_pool2d", x.shape, output_size)
    return AdaptiveAvgPool2d(output_size)(x)


def _case(fn, *args, tie_free=False, shape=(2, 2, 7, 6), **kwargs):
    """A case on float64 data; ``tie_free``: values 0.1 apart, so no window has a tie (a max's
    finite differences are defined only away from ties)."""
    def make():
        x = numpy.random.default_rng(0).standard_normal(shape)
        if tie_free:
            x = (numpy.random.default_rng(0).permutation(x.size) * 0.1).reshape(shape)
        return (lambda t: fn(t, *args, **kwargs)), [Tensor(x, requires_grad=True)]
    return make


_WINDOWS = [("2x2 stride 2", (2,), {}), ("3x3 stride 2 overlapping (AlexNet)", (3, 2), {}),
            ("3x3 stride 1 pad 1", (3, 1, 1), {}),
            ("3x3 stride 2 ceil_mode (GoogLeNet)", (3, 2), {"ceil_mode": True}),
            ("rect (2,3) stride (1,2) pad (1,1) ceil", ((2, 3), (1, 2), (1, 1)), {"ceil_mode": True})]
GRADCHECK_CASES = (  # (op, case, make): make() returns (fn, inputs) for gradcheck
    [("max_pool2d", name, _case(max_pool2d, *a, tie_free=True, **k)) for name, a, k in _WINDOWS]
    + [("avg_pool2d", name, _case(avg_pool2d, *a, **k)) for name, a, k in _WINDOWS]
    + [("adaptive_avg_pool2d", "7x6 -> 3x4 (overlapping bins)", _case(adaptive_avg_pool2d, (3, 4))),
       ("adaptive_avg_pool2d", "5x5 -> (None, 2)",
        _case(adaptive_avg_pool2d, (None, 2), shape=(1, 3, 5, 5))),
       ("adaptive_avg_pool2d", "global (1, 1)", _case(adaptive_avg_pool2d, 1, shape=(2, 3, 4, 5)))])
