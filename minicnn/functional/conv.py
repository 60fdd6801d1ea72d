"""2-D convolution as im2col, one matrix product, and col2im (docs/layers/convolution.md).

Shapes (NCHW, PyTorch's weight layout)
    x (N, C, H, W)   weight (C_out, C/g, kh, kw)   bias (C_out,)   y (N, C_out, Ho, Wo)
    Ho = (H + 2*ph - kh) // sh + 1, Wo likewise (``geometry.conv_output_size``); g = groups.

Forward (cross-correlation, as every deep-learning library computes it), x_pad = x zero-padded:
    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, g(o)*C/g + c, i*sh + u, j*sw + v]

im2col copies every patch into a column, so the sum is ONE matrix product per group:
    cols[(c, u, v), (n, i, j)] = x_pad[n, c, i*sh + u, j*sw + v]       (C*kh*kw, N*Ho*Wo)
    Y = W_mat @ cols,   W_mat = weight.reshape(C_out, C/g*kh*kw)       (C_out, N*Ho*Wo)
With groups, the rows of cols and of W_mat split into g blocks and block k multiplies block k.

Backward, with G_mat = dL/dy laid out like Y:
    dW_mat = G_mat @ cols^T        dcols = W_mat^T @ G_mat        dx = col2im(dcols)
    db[o]  = sum_{n, i, j} G[n, o, i, j]
col2im is im2col's adjoint: each column entry is *added* back onto the pixel it was copied from,
so a pixel shared by overlapping patches receives the sum of their gradients.

This file is the reference: short and exact. ``minicnn/fast/`` replaces ``Conv2d`` by faster
subclasses (cache-sized chunks spread over the cores, CUDA kernels) that are tested equal to it.
"""
from __future__ import annotations

import numpy  # host side only: the gradient-check cases' data

from .. import backend
from ..function import Function
from ..tensor import Tensor
from .geometry import Array, IntPair, conv_output_size, pad2d, pair
from .validation import validate_conv2d


def im2col(x: Array, kh: int, kw: int, stride: IntPair = 1, padding: IntPair = 0) -> Array:
    """Every (kh, kw) patch of ``x`` (N, C, H, W) as a column: returns (C*kh*kw, N*Ho*Wo).

    Rows are ordered (c, u, v) like ``weight.reshape(C_out, -1)``; columns (n, i, j). ``as_strided``
    gives a 6-D *view* of the padded input whose element [c, u, v, n, i, j] is
    x_pad[n, c, i*sh + u, j*sw + v]; reshaping it to 2-D makes the one copy (no Python loop).
    """
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    x_pad = pad2d(x, (ph, ph, pw, pw))
    s_n, s_c, s_h, s_w = x_pad.strides
    patches = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(c, kh, kw, n, ho, wo), strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))
    return patches.reshape(c * kh * kw, n * ho * wo)


def col2im(cols: Array, x_shape: tuple[int, int, int, int], kh: int, kw: int, stride: IntPair = 1,
           padding: IntPair = 0) -> Array:
    """The adjoint of ``im2col``: (C*kh*kw, N*Ho*Wo) -> (N, C, H, W), summing overlaps.

    For each kernel offset (u, v), the entries cols[(c, u, v), (n, i, j)] land on the strided grid
    of padded pixels (u + i*sh, v + j*sw): one vectorised ``+=`` per offset. The padding is cut
    off at the end.
    """
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    xp = backend.get_array_module(cols)
    n, c, h, w = x_shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    acc = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)   # channel-major, like cols
    for u in range(kh):
        for v in range(kw):
            acc[:, :, u:u + sh * (ho - 1) + 1:sh, v:v + sw * (wo - 1) + 1:sw] += cols[:, u, v]
    return xp.ascontiguousarray(acc[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


class Conv2d(Function):
    """y = conv2d(x, weight, bias): im2col, one GEMM per group, plus the bias.

    forward(x, weight, bias or None) -> y; saves the columns and the weight.
    backward(G) -> (dx = col2im(W_mat^T G_mat), dW = G_mat cols^T, db = sum of G over n, i, j),
    each computed only when it is needed.

    The steps where faster implementations differ are methods that ``minicnn/fast/`` overrides:
    ``unfold`` (im2col), ``fold`` (col2im), ``matmul`` (the GEMMs) and ``bias_grad`` (db's sum).
    """

    def __init__(self, stride: IntPair = 1, padding: IntPair = 0, groups: int = 1):
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        self.groups = int(groups)

    def forward(self, x, weight, bias=None):
        xp = backend.get_array_module(x)
        n, g = x.shape[0], self.groups
        c_out, cg, kh, kw = weight.shape
        ho = conv_output_size(x.shape[2], kh, self.stride[0], self.padding[0])
        wo = conv_output_size(x.shape[3], kw, self.stride[1], self.padding[1])
        self.cols = self.unfold(x, kh, kw)                            # (C*kh*kw, N*Ho*Wo)
        self.x_shape, self.weight = x.shape, weight
        w_mat = weight.reshape(g, c_out // g, cg * kh * kw)          # block k: group k's filters
        y = self.matmul(w_mat, self.cols.reshape(g, cg * kh * kw, n * ho * wo))  # (g, C_out/g, N*Ho*Wo)
        y = y.reshape(c_out, n, ho, wo).transpose(1, 0, 2, 3)        # (N, C_out, Ho, Wo), a view
        if bias is None:
            return xp.ascontiguousarray(y)
        out = xp.empty(y.shape, dtype=xp.result_type(y.dtype, bias.dtype))  # (N, C_out, Ho, Wo) in order:
        return xp.add(y, bias.reshape(1, c_out, 1, 1), out=out)      # one copy, adding the bias

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        want_dx, want_dw, want_db = self.needed_grads()
        g = self.groups
        c_out, cg, kh, kw = self.weight.shape
        g_mat = gy.transpose(1, 0, 2, 3).reshape(g, c_out // g, -1)   # (g, C_out/g, N*Ho*Wo)
        dx = dw = db = None
        if want_dw:   # dW = G_mat @ cols^T, written straight into dW's own (weight-shaped) array
            dw = xp.empty(self.weight.shape, dtype=self.weight.dtype)
            cols = self.cols.reshape(g, cg * kh * kw, -1)
            self.matmul(g_mat, cols.transpose(0, 2, 1), out=dw.reshape(g, c_out // g, cg * kh * kw))
        if want_dx:   # dcols = W_mat^T @ G_mat, folded back onto the pixels by col2im
            w_mat = self.weight.reshape(g, c_out // g, cg * kh * kw)
            dx = self.fold(self.matmul(w_mat.transpose(0, 2, 1), g_mat).reshape(g * cg * kh * kw, -1))
        if want_db:
            db = self.bias_grad(gy)
        return dx, dw, db

    # -- the steps a fast path replaces ------------------------------------------------------------
    def unfold(self, x, kh, kw):
        """im2col: the (C*kh*kw, N*Ho*Wo) columns of ``x`` for this convolution's windows."""
        return im2col(x, kh, kw, self.stride, self.padding)

    def fold(self, dcols):
        """col2im: (C*kh*kw, N*Ho*Wo) columns back onto the input's shape, summing overlaps."""
        kh, kw = self.weight.shape[2:]
        return col2im(dcols, self.x_shape, kh, kw, self.stride, self.padding)

    def matmul(self, a, b, out=None):
        """The GEMMs: ``a @ b`` for stacks of g matrices, (g, m, k) @ (g, k, n) -> (g, m, n)."""
        return backend.get_array_module(a).matmul(a, b, out=out)

    def bias_grad(self, gy):
        """db: the sum of G over every axis but the channels'."""
        return gy.sum(axis=(0, 2, 3))

    def needed_grads(self):
        """``(dx, dW, db)`` flags: which gradients backward computes (no bias, no db)."""
        return (tuple(getattr(self, "needs_input_grad", (True, True, True))) + (False,) * 3)[:3]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0, groups: int = 1) -> Tensor:
    """Convolve ``x`` (N, C, H, W) with ``weight`` (C_out, C/groups, kh, kw), plus ``bias``.

    ``stride`` and ``padding`` (zeros) are ints or (h, w) pairs. Returns (N, C_out, Ho, Wo).
    """
    validate_conv2d("conv2d", x.shape, weight.shape, stride, padding, groups,
                    None if bias is None else bias.shape)
    return Conv2d(stride, padding, groups)(x, weight, bias)


def _case(x_shape, w_shape, bias=True, **kw):
    """A gradient-check case: float64 standard-normal x, weight (and bias)."""
    def make():
        shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
        inputs = [Tensor(numpy.random.default_rng(seed).standard_normal(s), requires_grad=True)
                  for seed, s in enumerate(shapes)]
        return (lambda x, w, b=None: conv2d(x, w, b, **kw)), inputs
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("conv2d", "3x3 stride 1 pad 1", _case((2, 3, 5, 5), (4, 3, 3, 3), padding=1)),
    ("conv2d", "3x3 stride 1 pad 1, narrowing", _case((2, 4, 5, 5), (3, 4, 3, 3), padding=1)),
    ("conv2d", "3x3 stride 2 pad 0, no bias", _case((2, 2, 7, 6), (3, 2, 3, 3), bias=False, stride=2)),
    ("conv2d", "rect 2x3 kernel, stride (2,1), pad (1,0)",
     _case((1, 2, 6, 5), (3, 2, 2, 3), stride=(2, 1), padding=(1, 0))),
    ("conv2d", "groups=2, 3x3 pad 1", _case((2, 4, 5, 4), (6, 2, 3, 3), padding=1, groups=2)),
    ("conv2d", "depthwise groups=3, 1x1", _case((2, 3, 4, 4), (3, 1, 1, 1), groups=3)),
    ("conv2d", "5x5 stride 3 pad 2 (overlap + border)",
     _case((1, 2, 8, 7), (2, 2, 5, 5), stride=3, padding=2)),
]
