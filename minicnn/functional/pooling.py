"""Pooling: max, average and adaptive average, over (kh, kw) windows of NCHW maps.

Shapes
------
    x  (N, C, H, W)   ->   y  (N, C, Ho, Wo),   Ho = conv_output_size(H, kh, sh, ph, ceil_mode=...)

Each channel is pooled on its own; ``stride=None`` means ``stride = kernel_size`` (non-overlapping
windows); AlexNet's 3x3 windows with stride 2 overlap. The window (i, j) covers the rows
``i*sh - ph ... i*sh - ph + kh - 1`` and columns ``j*sw - pw ... j*sw - pw + kw - 1`` of ``x``.
``ceil_mode=True`` adds a last, partial window at the bottom/right when the stride does not divide
the input evenly (GoogLeNet uses it). As in PyTorch, padding may be at most half the kernel.

How it is computed: one vectorised pass per kernel offset
---------------------------------------------------------
For a kernel offset (u, v), the pixels at offset (u, v) of *every* window form a strided slice of
the padded input, ``xp[:, :, u : u + sh*(Ho-1) + 1 : sh, v : v + sw*(Wo-1) + 1 : sw]``, an array of
the output's shape. So a pool is a loop over the kh*kw offsets (9 for 3x3), each step one
whole-array operation; there is no loop over pixels. Backward walks the same slices and *adds*
into them, so a pixel shared by overlapping windows receives the sum of its gradients.

Max pooling
-----------
    y[n, c, i, j] = max_{u, v} xp[n, c, i*sh + u, j*sw + v],  xp padded with -inf (padding never wins)
    dx: g[n, c, i, j] goes to the argmax of window (i, j); forward saves which offset won
        (the first maximum on ties, as PyTorch; a NaN in a window makes its output NaN).

Average pooling (PyTorch's default, ``count_include_pad=True``)
---------------------------------------------------------------
    y[n, c, i, j] = (1 / d[i, j]) * sum_{u, v} xp[n, c, i*sh + u, j*sw + v],  xp padded with 0
    dx: g[n, c, i, j] / d[i, j] added to every pixel of window (i, j)

The divisor counts padding: d = kh*kw for every window that lies within the padded input. A
ceil-mode window that sticks out past the padded border counts only its part inside it:
``d[i, j] = (min(r0 + kh, H + ph) - r0) * (min(q0 + kw, W + pw) - q0)`` with ``r0 = i*sh - ph``,
``q0 = j*sw - pw`` (PyTorch's formula).

Adaptive average pooling
------------------------
Output size fixed, window computed: bin i of ``out`` along an axis of ``size`` covers
``[floor(i*size/out), ceil((i+1)*size/out))`` (PyTorch's bins; they overlap when ``out`` does not
divide ``size``). Averaging over bins is linear and separable, so with the (out, size) matrix
``A[i, r] = 1/len(bin i)`` for ``r`` in bin i (0 elsewhere):

    y = A_h @ x @ A_w^T          dx = A_h^T @ g @ A_w

``output_size=(1, 1)`` is global average pooling (ResNet, GoogLeNet), done as a mean.
"""
import numpy  # host side only: the gradcheck cases' data; op code takes xp from its inputs

from .. import backend
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from .conv import _pair, conv_output_size, pad2d


# ------------------------------------------------------------------------------------------------
# Window geometry, shared by max and average pooling
# ------------------------------------------------------------------------------------------------
class _Windows:
    """The geometry of a pool: kernel, stride, padding, output size, and the padded input's shape.

    ``pads`` = (top, bottom, left, right): ``padding`` on every side, plus, in ceil mode, the rows
    and columns that the last partial window needs beyond the bottom/right padding.
    """

    def __init__(self, x_shape, kernel_size, stride, padding, ceil_mode):
        self.kh, self.kw = _pair(kernel_size, "kernel_size")
        self.sh, self.sw = _pair(kernel_size if stride is None else stride, "stride")
        self.ph, self.pw = _pair(padding, "padding")
        h, w = x_shape[2:]
        self.ho = conv_output_size(h, self.kh, self.sh, self.ph, ceil_mode=ceil_mode)
        self.wo = conv_output_size(w, self.kw, self.sw, self.pw, ceil_mode=ceil_mode)
        extra_h = max(0, (self.ho - 1) * self.sh + self.kh - (h + 2 * self.ph))
        extra_w = max(0, (self.wo - 1) * self.sw + self.kw - (w + 2 * self.pw))
        self.pads = (self.ph, self.ph + extra_h, self.pw, self.pw + extra_w)
        self.x_shape = tuple(x_shape)

    def offsets(self):
        """``(k, u, v)`` for every kernel offset, k = u*kw + v."""
        return [(u * self.kw + v, u, v) for u in range(self.kh) for v in range(self.kw)]

    def slice(self, u, v):
        """Index of the padded pixels at offset (u, v) of every window: an (N, C, Ho, Wo) slice."""
        return (slice(None), slice(None),
                slice(u, u + self.sh * (self.ho - 1) + 1, self.sh),
                slice(v, v + self.sw * (self.wo - 1) + 1, self.sw))

    def unpad(self, padded):
        """The interior (N, C, H, W) of a padded-shape array (dropping padding and ceil rows)."""
        top, _, left, _ = self.pads
        h, w = self.x_shape[2:]
        return padded[:, :, top:top + h, left:left + w]

    def padded_zeros(self, xp, dtype):
        top, bottom, left, right = self.pads
        n, c, h, w = self.x_shape
        return xp.zeros((n, c, h + top + bottom, w + left + right), dtype=dtype)


def _unpadded_copy(xp, win, padded):
    """The interior of a padded gradient, as a contiguous array (no copy when nothing was padded)."""
    return xp.ascontiguousarray(win.unpad(padded))


# ------------------------------------------------------------------------------------------------
# Max pooling
# ------------------------------------------------------------------------------------------------
def _lowest(xp, dtype):
    """The value that never wins a max: -inf for floats, the minimum for integers."""
    return -xp.inf if dtype.kind == "f" else xp.iinfo(dtype).min


class MaxPool2d(Function):
    """y = max over each window (padding = -inf);  dx = g routed to each window's argmax.

    forward saves, per output element, the offset k = u*kw + v of its window's maximum (int8 when
    kh*kw < 128): the only thing backward needs besides the shapes.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        self.args = (kernel_size, stride, padding, bool(ceil_mode))

    def forward(self, x):
        xp = backend.get_array_module(x)
        win = _Windows(x.shape, *self.args)
        xpad = pad2d(x, win.pads, value=_lowest(xp, x.dtype))
        best = argbest = None
        for k, u, v in win.offsets():
            candidate = xpad[win.slice(u, v)]
            if best is None:  # offset 0: the running maximum starts as its values
                best = candidate.copy()
                argbest = xp.zeros(best.shape, dtype=xp.int8 if win.kh * win.kw < 128 else xp.int32)
                continue
            xp.copyto(argbest, k, where=candidate > best)  # strictly greater: first maximum keeps ties
            xp.maximum(best, candidate, out=best)          # (maximum propagates NaN, as PyTorch)
        if self.needs_input_grad[0]:
            self.win, self.argbest = win, argbest
        return best

    def backward(self, g):
        xp = backend.get_array_module(g)
        win = self.win
        gpad = win.padded_zeros(xp, g.dtype)
        for k, u, v in win.offsets():
            # the windows whose maximum sat at offset (u, v) send their gradient there; += adds
            # up the gradients of overlapping windows that share a maximum
            gpad[win.slice(u, v)] += xp.where(self.argbest == k, g, 0)
        return _unpadded_copy(xp, win, gpad)


# ------------------------------------------------------------------------------------------------
# Average pooling
# ------------------------------------------------------------------------------------------------
def _divisor(xp, win, dtype):
    """d[i, j], (Ho, Wo): the size of window (i, j) clipped to the padded border (padding counts)."""
    h, w = win.x_shape[2:]

    def counts(n_out, stride, pad, kernel, size):
        start = xp.arange(n_out) * stride - pad
        return xp.minimum(start + kernel, size + pad) - start

    rows = counts(win.ho, win.sh, win.ph, win.kh, h)
    cols = counts(win.wo, win.sw, win.pw, win.kw, w)
    return (rows[:, None] * cols[None, :]).astype(dtype)


class AvgPool2d(Function):
    """y = (sum over each window, padding = 0) / d;  dx = g / d added to every pixel of the window."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        self.args = (kernel_size, stride, padding, bool(ceil_mode))

    def forward(self, x):
        xp = backend.get_array_module(x)
        win = _Windows(x.shape, *self.args)
        xpad = pad2d(x, win.pads, value=0)
        total = None
        for _, u, v in win.offsets():
            part = xpad[win.slice(u, v)]
            if total is None:
                total = part.copy()
            else:
                total += part
        self.win = win
        total /= _divisor(xp, win, total.dtype)
        return total

    def backward(self, g):
        xp = backend.get_array_module(g)
        win = self.win
        share = g / _divisor(xp, win, g.dtype)
        gpad = win.padded_zeros(xp, g.dtype)
        for _, u, v in win.offsets():
            gpad[win.slice(u, v)] += share
        return _unpadded_copy(xp, win, gpad)


# ------------------------------------------------------------------------------------------------
# Adaptive average pooling
# ------------------------------------------------------------------------------------------------
def _adaptive_output_size(x_shape, output_size):
    """``output_size`` (int, pair, None entries = keep the input's size) -> (oh, ow)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or an (h, w) pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    return (x_shape[2] if oh is None else int(oh)), (x_shape[3] if ow is None else int(ow))


def _bin_matrix(xp, size, out, dtype):
    """A (out, size): row i averages bin i = [floor(i*size/out), ceil((i+1)*size/out))."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)  # ceil division
    r = xp.arange(size)
    inside = (r[None, :] >= start[:, None]) & (r[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """y = A_h @ x @ A_w^T (bin averages);  dx = A_h^T @ g @ A_w. Global (1, 1) pooling: a mean."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        oh, ow = _adaptive_output_size(x.shape, self.output_size)
        self.x_shape = x.shape
        if (oh, ow) == (1, 1):  # global average pooling
            self.a_h = self.a_w = None
            return x.mean(axis=(2, 3), keepdims=True)
        self.a_h, self.a_w = _bin_matrix(xp, h, oh, x.dtype), _bin_matrix(xp, w, ow, x.dtype)
        return xp.matmul(xp.matmul(self.a_h, x), self.a_w.T)

    def backward(self, g):
        xp = backend.get_array_module(g)
        n, c, h, w = self.x_shape
        if self.a_h is None:
            return xp.broadcast_to(g / (h * w), self.x_shape).copy()
        return xp.matmul(xp.matmul(self.a_h.T, g), self.a_w)


# ------------------------------------------------------------------------------------------------
# Validation (the nn layers call these with their own names) and the functional entry points
# ------------------------------------------------------------------------------------------------
def _check_rank(layer, x_shape):
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")


def check_pool2d_args(layer, kernel_size, stride=None, padding=0):
    """Normalise and check a pool's arguments: returns ``(kh, kw), (sh, sw), (ph, pw)``.

    Raises ``ValueError`` naming ``layer`` for a non-positive kernel or stride, or a padding that
    is negative or more than half the kernel (PyTorch's rule: a window must hold a real pixel).
    """
    kh, kw = _pair(kernel_size, f"{layer}: kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, f"{layer}: stride")
    ph, pw = _pair(padding, f"{layer}: padding")
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"{layer}: kernel_size and stride must be positive, got kernel_size "
                         f"{(kh, kw)}, stride {(sh, sw)}")
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{layer}: padding {(ph, pw)} must be non-negative and at most half the "
                         f"kernel size {(kh, kw)}")
    return (kh, kw), (sh, sw), (ph, pw)


def validate_pool2d(layer, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Raise ``ValueError`` (naming ``layer``, expected vs received shape) for an invalid pool."""
    x_shape = tuple(x_shape)
    (kh, kw), _, (ph, pw) = check_pool2d_args(layer, kernel_size, stride, padding)
    _check_rank(layer, x_shape)
    n, c, h, w = x_shape
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{layer}: input spatial size {(h, w)} padded by {(ph, pw)} is smaller than "
                         f"the kernel {(kh, kw)}: expected an input of at least "
                         f"(N, C, {max(kh - 2 * ph, 1)}, {max(kw - 2 * pw, 1)}), got shape {x_shape}")


def validate_adaptive_pool2d(layer, x_shape, output_size):
    """Raise ``ValueError`` (naming ``layer``) for a non-4-D input or a non-positive output size."""
    _check_rank(layer, x_shape)
    oh, ow = _adaptive_output_size(x_shape, output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"{layer}: output_size must be positive, got {output_size!r}")


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over (kh, kw) windows of ``x`` (N, C, H, W); ``stride=None`` means ``kernel_size``.
    Padding never wins. Returns (N, C, Ho, Wo)."""
    validate_pool2d("max_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d(kernel_size, stride, padding, ceil_mode)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Mean over (kh, kw) windows of ``x`` (N, C, H, W), padding counted in the divisor (PyTorch's
    ``count_include_pad=True``). Returns (N, C, Ho, Wo)."""
    validate_pool2d("avg_pool2d", x.shape, kernel_size, stride, padding, ceil_mode)
    return AvgPool2d(kernel_size, stride, padding, ceil_mode)(x)


def adaptive_avg_pool2d(x, output_size):
    """Average ``x`` (N, C, H, W) over PyTorch's adaptive bins to (N, C, *output_size); an int means
    a square output, ``None`` keeps that axis's size."""
    validate_adaptive_pool2d("adaptive_avg_pool2d", x.shape, output_size)
    return AdaptiveAvgPool2d(output_size)(x)


# ------------------------------------------------------------------------------------------------
# Gradient-check cases (``minicnn gradcheck max_pool2d`` ...)
# ------------------------------------------------------------------------------------------------
def _t(*shape, seed=0):
    """A float64 leaf tensor of standard-normal host data."""
    return Tensor(numpy.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _tie_free(*shape, seed=0):
    """Distinct values at least 0.1 apart (a shuffled 0.1-grid): finite differences of a max are
    only defined away from ties, and eps = 1e-6 never reorders such values."""
    values = numpy.random.default_rng(seed).permutation(int(numpy.prod(shape))) * 0.1
    return Tensor((values - values.mean()).reshape(shape), requires_grad=True)


def _pool_case(fn, x, *args, **kwargs):
    return lambda: ((lambda t: fn(t, *args, **kwargs)), [x()])


for _name, _args, _kw in [("2x2 stride 2", (2,), {}),
                          ("3x3 stride 2 overlapping (AlexNet)", (3, 2), {}),
                          ("3x3 stride 1 pad 1", (3, 1, 1), {}),
                          ("3x3 stride 2 ceil_mode (GoogLeNet)", (3, 2), {"ceil_mode": True}),
                          ("rect (2,3) stride (1,2) pad (1,1) ceil", ((2, 3), (1, 2), (1, 1)),
                           {"ceil_mode": True})]:
    register_case("max_pool2d", _name, _pool_case(max_pool2d, lambda: _tie_free(2, 2, 7, 6), *_args, **_kw))
    register_case("avg_pool2d", _name, _pool_case(avg_pool2d, lambda: _t(2, 2, 7, 6), *_args, **_kw))
register_case("adaptive_avg_pool2d", "7x6 -> 3x4 (overlapping bins)",
              _pool_case(adaptive_avg_pool2d, lambda: _t(2, 2, 7, 6), (3, 4)))
register_case("adaptive_avg_pool2d", "5x5 -> (None, 2)", _pool_case(adaptive_avg_pool2d, lambda: _t(1, 3, 5, 5),
                                                                    (None, 2)))
register_case("adaptive_avg_pool2d", "global (1, 1)", _pool_case(adaptive_avg_pool2d, lambda: _t(2, 3, 4, 5), 1))
