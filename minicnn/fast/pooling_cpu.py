"""Pooling on the CPU: separable passes over pieces of the batch, on threads.

``SeparableMaxPool2d``, ``SeparableAvgPool2d`` and ``MatrixAdaptiveAvgPool2d`` compute exactly
what the references in ``minicnn.functional.pooling`` compute (tested equal), faster on NumPy.

How it is computed: separably, first along the width, then along the height
---------------------------------------------------------------------------
A max (or a sum) over a kh x kw window is a max over its kh rows of the max over each row's kw
pixels. So a pool is two 1-D pools, each a loop over kernel offsets whose every step is one
whole-array operation (there is no loop over pixels):

    1. along the width (first: see Ties below): for a column offset v, the pixels at column
       j*sw + v of every window column j, in *every* row of the padded input, form the strided
       slice ``x_pad[:, :, :, v::sw]`` (cut to Wo columns). Reducing the kw slices gives r,
       (N, C, Hp, Wo): each row's reduction over the columns of each window.
    2. along the height: for a row offset u, the rows i*sh + u of r form ``r[:, :, u::sh]`` (cut to
       Ho rows), of the output's shape; reducing the kh slices gives y.

Why two passes and not one loop over the kh*kw offsets (u, v), each step a strided slice of the
output's shape: for stride 1 the passes take kw + kh steps instead of kw*kh (6 instead of 9 for
3x3). For AlexNet's 3x3 stride 2 they touch about as many elements (pass 1 runs over all Hp rows),
yet run about 1.5x faster on the CPU: pass 2's slices are whole contiguous rows, which vectorised
loops read several times faster than the every-other-element slices of a one-loop version.

The intermediate r, the padded input and the other temporaries that do not outlive a call live in
scratch buffers reused from call to call (``scratch._scratch_buffer``; ``scratch.release_buffers()``
frees them): a fresh large array costs a page fault per 4 KiB the first time it is written.

Max pooling
-----------
    y[n, c, i, j] = max_{u, v} x_pad[n, c, i*sh + u, j*sw + v],  x padded with -inf (padding never wins)
    dx: g[n, c, i, j] goes to the argmax of window (i, j) (the first maximum in row-major window
        order on ties, as PyTorch; a NaN in a window makes its output NaN).

Forward records, per output, *where* its maximum sits: the offset ``u*Wp + v`` of the argmax in
the padded input (width Wp) from the window's top-left pixel. Backward turns it into a flat index
(the top-left pixel's index plus the offset) and adds every g there in one scatter-add
(``xp.add.at``, which *sums* repeated indices: a pixel that is the maximum of several overlapping
windows receives the sum of their gradients). (On the GPU, ``gpu.py`` does the
scatter with a CUDA kernel.)

Ties. The first pass keeps, in each row of a window, the first column holding the row's maximum;
the second keeps the first row whose maximum is the window's maximum. Together: the smallest u,
then the smallest v in that row, which is the first maximum in row-major (u, v) order. (Height
first would pick the smallest v, then the smallest u: the order of the passes matters.) A NaN never
wins a comparison, so a window holding one outputs NaN but sends its gradient to a real number of
the window (PyTorch sends it to the NaN).

Average pooling (PyTorch's default, ``count_include_pad=True``)
---------------------------------------------------------------
    y[n, c, i, j] = (1 / d[i, j]) * sum_{u, v} x_pad[n, c, i*sh + u, j*sw + v],  x padded with 0
    dx: g[n, c, i, j] / d[i, j] added to every pixel of window (i, j)

Backward is the forward's two passes transposed, in reverse order: g/d is added into the kh rows
of each window (an (N, C, Hp, Wo) array), then each of those into the kw columns. ``+=`` on a
slice adds, so a pixel shared by overlapping windows receives the sum of their gradients.

The divisor counts padding: d = kh*kw for every window that lies within the padded input. A
ceil-mode window that sticks out past the padded border counts only its part inside it:
``d[i, j] = (min(r0 + kh, H + ph) - r0) * (min(q0 + kw, W + pw) - q0)`` with ``r0 = i*sh - ph``,
``q0 = j*sw - pw`` (PyTorch's formula).
"""
import numpy  # the offset dtypes (host side)

from .. import backend
from ..functional.geometry import adaptive_output_size, pad2d
from ..functional.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .registry import register
from .scratch import _scratch_buffer
from .threads import batch_pieces, matmul, parallel_map


# ------------------------------------------------------------------------------------------------
# Window geometry, shared by max and average pooling
# ------------------------------------------------------------------------------------------------
class _Windows:
    """The geometry of a pool on inputs of ``x_shape``: kernel, stride, padding, output size, and
    the padded input's shape. ``pads`` = (top, bottom, left, right), from the reference's
    ``window_geometry`` (ceil mode's extra rows and columns included).
    """

    def __init__(self, x_shape, pool):
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = pool.kernel, pool.stride, pool.padding
        h, w = x_shape[2:]
        (self.ho, self.wo), self.pads = pool.window_geometry(h, w)
        self.x_shape = tuple(x_shape)
        top, bottom, left, right = self.pads
        self.padded_shape = (*self.x_shape[:2], h + top + bottom, w + left + right)

    def columns(self, v):
        """Pass 1's index: column v of every window, in every padded row: an (N, C, Hp, Wo) slice."""
        return (slice(None), slice(None), slice(None), slice(v, v + self.sw * (self.wo - 1) + 1, self.sw))

    def rows(self, u):
        """Pass 2's index: row u of every window, in an (N, C, Hp, Wo) array: an (N, C, Ho, Wo) slice."""
        return (slice(None), slice(None), slice(u, u + self.sh * (self.ho - 1) + 1, self.sh))

    def corners(self, xp, out):
        """``out[...]`` = the flat index, in the padded input, of each window's top-left pixel:
        (N, C, Ho, Wo), an int64 array."""
        n, c, hp, wp = self.padded_shape
        planes = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * (hp * wp)
        rows = xp.arange(self.ho, dtype=xp.int64).reshape(-1, 1) * (self.sh * wp)
        cols = xp.arange(self.wo, dtype=xp.int64) * self.sw
        return xp.add(planes, rows + cols, out=out)

    def unpad(self, padded):
        """The interior (N, C, H, W) of a padded-shape array (dropping padding and ceil rows)."""
        top, _, left, _ = self.pads
        h, w = self.x_shape[2:]
        return padded[:, :, top:top + h, left:left + w]

    def padded_zeros(self, xp, dtype):
        return xp.zeros(self.padded_shape, dtype=dtype)


def _padded_buffer(x, win):
    """A reused scratch array for the padded input (None when nothing is padded: pad2d returns x)."""
    return _scratch_buffer(x, "pool_padded", win.padded_shape, x.dtype) if any(win.pads) else None


# ------------------------------------------------------------------------------------------------
# Max pooling
# ------------------------------------------------------------------------------------------------
def _lowest(xp, dtype):
    """The value that never wins a max: -inf for floats, the minimum for integers."""
    return -xp.inf if dtype.kind == "f" else xp.iinfo(dtype).min


def _offset_dtype(largest):
    """The smallest signed integer type holding the window offsets 0 ... ``largest``."""
    return numpy.int8 if largest < 2 ** 7 else numpy.int16 if largest < 2 ** 15 else numpy.int32


def _running_max(xp, candidates, best, tags=None, winner=None):
    """``best[...]`` = the elementwise max of same-shape ``candidates``; ``winner[...]`` = the tag of
    the first candidate that holds it (skipped when ``tags`` is None: no gradient needed).

    ``tags[k]`` (a number, or an integer array of the candidates' shape) tags candidate k, and tags
    increase with k. A later candidate takes over only where it is strictly greater (so the first
    maximum keeps ties), and its tag is larger than every earlier one, so "write the tag where it
    is greater" is ``winner = maximum(winner, better * tag)``: on the CPU the integer multiply and
    max run many times faster than a masked write (``copyto(winner, tag, where=better)``).
    ``xp.maximum`` propagates NaN; ``NaN > best`` is false, so a NaN never becomes the winner.
    """
    best[...] = candidates[0]
    if tags is not None:
        winner[...] = tags[0]  # candidate 0 wins until beaten
        better = _scratch_buffer(best, "pool_better", best.shape, bool)
        step = _scratch_buffer(best, "pool_step", best.shape, winner.dtype)
    for k in range(1, len(candidates)):
        if tags is not None:
            xp.greater(candidates[k], best, out=better)
            xp.multiply(better, tags[k], out=step)
            xp.maximum(winner, step, out=winner)
        xp.maximum(best, candidates[k], out=best)


class SeparableMaxPool2d(MaxPool2d):
    """y = max over each window (padding = -inf);  dx = g routed to each window's argmax.

    forward saves, per output element, the offset ``u*Wp + v`` of its window's maximum from the
    window's top-left pixel in the padded input (int8 when it fits): the only thing backward needs
    besides the shapes. Both passes are in the module docstring; ``_forward_samples`` and
    ``_backward_samples`` do them for a piece of the batch (the pieces run on several threads).
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        win = _Windows(x.shape, self)
        n, c, hp, wp = win.padded_shape
        track = self.needs_input_grad[0]
        tag = _offset_dtype((win.kh - 1) * wp + win.kw - 1)
        y = xp.empty((n, c, win.ho, win.wo), dtype=x.dtype)
        winner = xp.empty(y.shape, dtype=tag) if track else None
        parallel_map(lambda b: self._forward_samples(xp, x[b], y[b], None if winner is None else winner[b],
                                                     tag), batch_pieces(x, xp), xp)
        if track:
            self.win, self.winner = win, winner
        return y

    def _forward_samples(self, xp, x, y, winner, tag):
        """y (and winner, when not None) of the samples in ``x``: the two passes."""
        win = _Windows(x.shape, self)
        xpad = pad2d(x, win.pads, value=_lowest(xp, x.dtype), out=_padded_buffer(x, win))
        n, c, hp, wp = win.padded_shape
        track = winner is not None
        # pass 1, along the width: r (N, C, Hp, Wo), and in which column v of its window it sits
        r = _scratch_buffer(x, "pool_rows", (n, c, hp, win.wo), x.dtype)
        r_col = _scratch_buffer(x, "pool_row_winner", r.shape, tag) if track else None
        _running_max(xp, [xpad[win.columns(v)] for v in range(win.kw)], r,
                     [tag(v) for v in range(win.kw)] if track else None, r_col)
        # pass 2, along the height: y (N, C, Ho, Wo); the winner of row u is at offset u*Wp + v
        _running_max(xp, [r[win.rows(u)] for u in range(win.kh)], y,
                     [r_col[win.rows(u)] + tag(u * wp) for u in range(win.kh)] if track else None, winner)

    def backward(self, g):
        xp = backend.get_array_module(g)
        gx = xp.empty(self.win.x_shape, dtype=g.dtype)
        parallel_map(lambda b: self._backward_samples(xp, g[b], self.winner[b], gx[b]),
                     batch_pieces(g, xp), xp)
        return gx

    def _backward_samples(self, xp, g, winner, gx):
        """gx[...] = the samples' gradient: every g added at its window's argmax."""
        win = _Windows((g.shape[0],) + self.win.x_shape[1:], self)
        if any(win.pads):
            gpad = win.padded_zeros(xp, g.dtype)
        else:  # the padded input is the input: scatter straight into gx
            gpad = gx
            gpad[...] = 0
        index = win.corners(xp, out=_scratch_buffer(g, "pool_index", g.shape, xp.int64))
        index += winner                                 # the flat index in gpad of each argmax
        xp.add.at(gpad.reshape(-1), index.reshape(-1), g.reshape(-1))  # sums repeated indices
        if gpad is not gx:
            gx[...] = win.unpad(gpad)


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


def _sum(parts, out):
    """``out[...]`` = the elementwise sum of same-shape arrays."""
    out[...] = parts[0]
    for part in parts[1:]:
        out += part
    return out


class SeparableAvgPool2d(AvgPool2d):
    """y = (sum over each window, padding = 0) / d;  dx = g / d added to every pixel of the window.

    ``_forward_samples`` and ``_backward_samples`` do the two passes (and their transposes) for a
    piece of the batch; the pieces run on several threads.
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.win = win = _Windows(x.shape, self)
        y = xp.empty(x.shape[:2] + (win.ho, win.wo), dtype=x.dtype)
        parallel_map(lambda b: self._forward_samples(xp, x[b], y[b]), batch_pieces(x, xp), xp)
        return y

    def _forward_samples(self, xp, x, y):
        win = _Windows(x.shape, self)
        xpad = pad2d(x, win.pads, value=0, out=_padded_buffer(x, win))
        n, c, hp, wp = win.padded_shape
        # pass 1, along the width: r (N, C, Hp, Wo), each row's sum over the columns of each window
        r = _sum([xpad[win.columns(v)] for v in range(win.kw)],
                 out=_scratch_buffer(x, "pool_rows", (n, c, hp, win.wo), x.dtype))
        # pass 2, along the height: the window sums, (N, C, Ho, Wo)
        _sum([r[win.rows(u)] for u in range(win.kh)], out=y)
        y /= _divisor(xp, win, y.dtype)

    def backward(self, g):
        xp = backend.get_array_module(g)
        gx = xp.empty(self.win.x_shape, dtype=g.dtype)
        parallel_map(lambda b: self._backward_samples(xp, g[b], gx[b]), batch_pieces(g, xp), xp)
        return gx

    def _backward_samples(self, xp, g, gx):
        win = _Windows((g.shape[0],) + self.win.x_shape[1:], self)
        share = g / _divisor(xp, win, g.dtype)
        n, c, hp, wp = win.padded_shape
        g_rows = _scratch_buffer(g, "pool_rows", (n, c, hp, win.wo), g.dtype)
        g_rows[...] = 0                                       # pass 2 transposed: into the kh rows
        for u in range(win.kh):
            g_rows[win.rows(u)] += share
        gpad = win.padded_zeros(xp, g.dtype) if any(win.pads) else gx
        gpad[...] = 0                                         # pass 1 transposed: into the kw columns
        for v in range(win.kw):
            gpad[win.columns(v)] += g_rows
        if gpad is not gx:
            gx[...] = win.unpad(gpad)


def _bin_matrix(xp, size, out, dtype):
    """A (out, size): row i averages bin i = [floor(i*size/out), ceil((i+1)*size/out))."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)  # ceil division
    r = xp.arange(size)
    inside = (r[None, :] >= start[:, None]) & (r[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class MatrixAdaptiveAvgPool2d(AdaptiveAvgPool2d):
    """y = A_h @ x @ A_w^T (bin averages);  dx = A_h^T @ g @ A_w. Global (1, 1) pooling: a mean."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        oh, ow = adaptive_output_size(x.shape, self.output_size)
        self.x_shape = x.shape
        if (oh, ow) == (1, 1):  # global average pooling
            self.a_h = self.a_w = None
            return x.mean(axis=(2, 3), keepdims=True)
        self.a_h, self.a_w = _bin_matrix(xp, h, oh, x.dtype), _bin_matrix(xp, w, ow, x.dtype)
        return matmul(matmul(self.a_h, x), self.a_w.T)

    def backward(self, g):
        xp = backend.get_array_module(g)
        n, c, h, w = self.x_shape
        if self.a_h is None:
            return xp.broadcast_to(g / (h * w), self.x_shape).copy()
        return matmul(matmul(self.a_h.T, g), self.a_w)


register(MaxPool2d, SeparableMaxPool2d, devices=("cpu",))
register(AvgPool2d, SeparableAvgPool2d, devices=("cpu",))
register(AdaptiveAvgPool2d, MatrixAdaptiveAvgPool2d, devices=("cpu",))
