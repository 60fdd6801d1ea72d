"""2-D convolution: the output-size formula, im2col / col2im, and the ``Conv2d`` Function.

Shapes (NCHW and PyTorch's weight layout)
-----------------------------------------
    x       (N, C_in, H, W)                      input
    weight  (C_out, C_in // groups, kh, kw)      one filter per output channel
    bias    (C_out,) or None
    y       (N, C_out, Ho, Wo)                   Ho = conv_output_size(H, kh, sh, ph), Wo likewise

Forward (cross-correlation, as every deep-learning library computes it)
-----------------------------------------------------------------------
With ``xp`` the input zero-padded by ``ph`` rows and ``pw`` columns on each side,

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * xp[n, g*Cg + c, i*sh + u, j*sw + v]

where ``g = o // (C_out / groups)`` is the group of output channel ``o`` and ``Cg = C_in / groups``.
Each group sees only its own ``Cg`` input channels (``groups=2`` is AlexNet's two-GPU split).

The fast way: im2col + one matrix product
-----------------------------------------
The sum above is a dot product between a filter and one *patch* of the input. ``im2col`` copies
every patch into a column of a matrix:

    cols  (C_in*kh*kw, N*Ho*Wo)      cols[(c, u, v), (n, i, j)] = xp[n, c, i*sh + u, j*sw + v]

so that the whole convolution is ONE matrix product (per group):

    Y = W_mat @ cols                 W_mat = weight.reshape(C_out, Cg*kh*kw)   ->  Y (C_out, N*Ho*Wo)

and ``y`` is ``Y`` reshaped to (C_out, N, Ho, Wo) with the first two axes swapped. With groups,
the rows of ``cols`` and of ``W_mat`` split into ``groups`` blocks and block g multiplies block g.

Why this layout: the patches' pixel axis (n, i, j) is the long one, so the product is a big, fat
GEMM (C_out x Cg*kh*kw times Cg*kh*kw x N*Ho*Wo) that BLAS runs near peak, and copying the patches
reads the input along its rows (the ``j`` axis is contiguous in ``x``), the fast direction.
``cols`` is built without any Python loop: ``as_strided`` gives a 6-D *view* of the padded input,
shape (C, kh, kw, N, Ho, Wo), whose element [c, u, v, n, i, j] *is* xp[n, c, i*sh + u, j*sw + v];
reshaping that view to 2-D makes the one copy.

Backward
--------
Given G = dL/dy, reshaped like Y to G_mat (C_out, N*Ho*Wo):

    dL/dW_mat = G_mat @ cols^T                     (the same columns as forward)
    dL/dcols  = W_mat^T @ G_mat,   dL/dx = col2im(dL/dcols)
    dL/db[o]  = sum_{n, i, j} G[n, o, i, j]

``col2im`` is the adjoint (transpose) of ``im2col``: each column entry is *added* back to the input
pixel it was copied from; a pixel that appeared in several overlapping patches receives the sum.

Memory
------
The column matrix is C_in*kh*kw*N*Ho*Wo numbers: 9x the input for a 3x3 kernel, 25x for 5x5 (VGG's
second layer at batch 32 would need 3.4 GiB). So:

* when it would exceed ``COLUMN_BUDGET_BYTES`` the batch is processed in chunks of samples whose
  columns fit. Each chunk is an exact piece of the same sums, so the result does not depend on
  the chunking;
* forward does not keep the columns for backward: it saves ``x`` and backward rebuilds them
  (im2col is a single copy, cheaper than holding 9-25x the input between the passes);
* the columns are written into one scratch buffer per thread that every conv call reuses (see
  ``_scratch_buffer``): a freshly allocated NumPy array of hundreds of MB costs about as much
  again as filling it, because the operating system maps its pages in one fault at a time.

Speed on the CPU
----------------
* On the CPU the chunks are small (``CPU_CHUNK_BYTES``, a few MB: columns written by im2col are
  still in the cache when the product reads them), bands of output rows when one sample is
  already larger (``_pieces``), and the pieces run on ``minicnn.threads``' threads, each building
  its columns and multiplying them with a one-thread BLAS.
* For stride 1 the columns are laid out on the *padded grid* (``_grid_columns``): a few junk
  columns per row make every patch row one contiguous run, and the copy several times faster.
* dW is computed as ``(cols @ G_mat^T)^T``, the same product in the layout BLAS runs fastest
  for the skinny matrices of small layers, and dx for stride 1 as a convolution where that
  measured faster (``_dx_as_convolution``).
"""
import math
import threading

import numpy  # host side only: the gradcheck cases' data; op code takes xp from its inputs

from .. import backend
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from ..threads import even_slices, matmul, parallel_map
from . import gpu_kernels

COLUMN_BUDGET_BYTES = 256 * 2 ** 20
"""Largest column matrix (bytes) that conv2d builds at once: 256 MiB. Above it, the batch is
processed in chunks of samples whose columns fit (at least one sample per chunk). The scratch
buffer that holds the columns stays allocated between calls, so this is also the memory conv
keeps per dtype and device. Lower it to save memory; raise it for fewer, larger products."""


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------
def conv_output_size(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Number of positions a window of ``kernel`` takes along an axis of ``size`` elements.

    This is the one place the formula lives; conv and every pooling layer use it.

    Derivation. Pad ``padding`` elements on both sides: the padded axis has ``size + 2*padding``
    elements. A (dilated) window spans ``k = dilation*(kernel - 1) + 1`` elements; the window at
    position ``i`` starts at ``i*stride`` and fits when ``i*stride + k <= size + 2*padding``. So
    ``i`` runs from 0 to ``floor((size + 2*padding - k) / stride)``, and the count is

        out = floor((size + 2*padding - k) / stride) + 1       e.g. AlexNet conv1: (227-11)/4+1 = 55

    ``ceil_mode=True`` (PyTorch's, for pooling) rounds up instead, letting a last, partial window
    hang over the bottom/right border:

        out = ceil((size + 2*padding - k) / stride) + 1

    except that the last window must start inside the input or the left padding: if
    ``(out - 1)*stride >= size + padding`` it would cover only right padding, and is dropped.

    Raises ``ValueError`` when not even one window fits.
    """
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    if room < 0 or stride < 1:
        raise ValueError(f"conv_output_size: a window of {span} does not fit in {size} elements "
                         f"padded by {padding} on each side (stride {stride})")
    if ceil_mode:
        out = -(-room // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = room // stride + 1
    return out


def _pair(value, name="value"):
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``: the (height, width) form of an int-or-pair argument."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    try:
        if any(int(v) != v for v in pair):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}") from None
    return tuple(int(v) for v in pair)


def pad2d(x, pads, value=0.0, out=None):
    """``x`` (N, C, H, W) surrounded by ``value``: ``pads = (top, bottom, left, right)``.

    ``out``: an array of the padded shape to write into (a reused buffer) instead of a new one.
    Without ``out``, returns ``x`` itself when all pads are zero (callers only read the result).
    """
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        if out is None:
            return x
        out[...] = x
        return out
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    if out is None:
        out = xp.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    out[:, :, :top] = value                          # the border strips ...
    out[:, :, top + h:] = value
    out[:, :, top:top + h, :left] = value
    out[:, :, top:top + h, left + w:] = value
    out[:, :, top:top + h, left:left + w] = x        # ... and the interior: each element written once
    return out


# ------------------------------------------------------------------------------------------------
# im2col / col2im
# ------------------------------------------------------------------------------------------------
def _unfold(xpad, kh, kw, sh, sw, ho, wo, out=None):
    """Columns (C*kh*kw, N*Ho*Wo) of an already padded input (N, C, Hp, Wp): see ``im2col``.

    ``out``: an array of that shape to write them into (a reused buffer) instead of a new one.
    """
    xp = backend.get_array_module(xpad)
    n, c = xpad.shape[:2]
    s_n, s_c, s_h, s_w = xpad.strides
    patches = xp.lib.stride_tricks.as_strided(
        xpad, shape=(c, kh, kw, n, ho, wo), strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))
    if out is None:
        return patches.reshape(c * kh * kw, n * ho * wo)  # the one copy
    xp.copyto(out.reshape(c, kh, kw, n, ho, wo), patches)
    return out


def im2col(x, kh, kw, stride=1, padding=0):
    """Every (kh, kw) patch of ``x`` (N, C, H, W) as a column: returns (C*kh*kw, N*Ho*Wo).

    ``cols[(c, u, v), (n, i, j)] = x_padded[n, c, i*sh + u, j*sw + v]`` with rows ordered
    c-major (c, then u, then v: the order of ``weight.reshape(C_out, -1)``) and columns ordered
    (n, i, j). Built from a strided view of the zero-padded input, with a single copy.
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    h, w = x.shape[2:]
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    return _unfold(pad2d(x, (ph, ph, pw, pw)), kh, kw, sh, sw, ho, wo)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column entry back onto the pixel it came from.

    ``cols`` (C*kh*kw, N*Ho*Wo) -> (N, C, H, W) with ``x_shape = (N, C, H, W)``. For each of the
    kh*kw kernel offsets (u, v) the entries ``cols[(c, u, v), (n, i, j)]`` land on the strided
    grid of padded pixels (u + i*sh, v + j*sw): one vectorised ``+=`` per offset, so pixels shared
    by overlapping patches accumulate. The padding border is dropped at the end.

    On the GPU (float32/64) a CUDA kernel does the same sums in one pass instead, one thread per
    pixel gathering its entries (``gpu_kernels.col2im_cuda``).
    """
    xp = backend.get_array_module(cols)
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if backend.has_cuda_kernels(cols):
        return gpu_kernels.col2im_cuda(xp, cols, tuple(x_shape), kh, kw, (sh, sw), (ph, pw))
    n, c, h, w = x_shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    # accumulate channel-major, (C, N, Hp, Wp), so each cols[:, u, v] slab adds without a transpose
    acc = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            acc[:, :, u:u + sh * (ho - 1) + 1:sh, v:v + sw * (wo - 1) + 1:sw] += cols[:, u, v]
    return xp.ascontiguousarray(acc[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


CPU_CHUNK_BYTES = 4 * 2 ** 20
"""On the CPU, columns are built a few samples at a time, about 4 MiB of them (at least one
sample): a chunk that stays in the processor's cache is written by im2col and read straight back
by the matrix product, which on this project's 2-core machine made the ResNet-CIFAR convolutions
about twice as fast as one 75 MB column matrix. GPUs take ``COLUMN_BUDGET_BYTES`` at once."""


def _on_cpu(xp):
    """Whether ``xp`` (None: NumPy) keeps its arrays in host memory: NumPy or the stand-in."""
    return xp is None or xp.__name__ in ("numpy", "standin")


def _samples_per_chunk(column_bytes_per_sample, n, xp=None):
    """How many samples' columns to build at once: at most ``COLUMN_BUDGET_BYTES`` (memory) and,
    on the CPU, about ``CPU_CHUNK_BYTES`` (cache); at least 1, at most ``n``.

    On the CPU the chunks (at least ``CPU_CHUNK_MULTIPLE`` of them once the columns reach
    ``CPU_SPLIT_BYTES``) are then evened out to a multiple of ``CPU_CHUNK_MULTIPLE`` chunks of
    (nearly) equal size, so that the threads of ``parallel_map`` get equal shares: 128 samples
    at 28 per chunk would be 4 full chunks and a short one (one thread doing 3 of 5), but are
    8 chunks of 16. The chunking depends only on the shapes, never on the thread count.
    """
    budget = COLUMN_BUDGET_BYTES
    cpu = _on_cpu(xp)
    if cpu:
        budget = min(budget, CPU_CHUNK_BYTES)
    chunk = max(1, min(n, budget // max(1, column_bytes_per_sample)))
    if cpu and (chunk < n or n * column_bytes_per_sample >= CPU_SPLIT_BYTES):
        count = -(-n // chunk)
        count = -(-count // CPU_CHUNK_MULTIPLE) * CPU_CHUNK_MULTIPLE
        chunk = max(1, -(-n // count))
    return chunk


CPU_CHUNK_MULTIPLE = 4
"""The number of CPU chunks is rounded up to a multiple of this (equal shares for 1, 2 or 4
threads)."""
CPU_SPLIT_BYTES = 1 << 20
"""Columns of at least this many bytes (1 MiB) are split into chunks even when they would fit in
one (a first layer with one input channel: all 128 images' columns are 4 MB), so that the threads
share them."""


_scratch = {}  # (thread id, name, array module, device, dtype) -> 1-D buffer


def _scratch_buffer(like, name, shape, dtype):
    """A scratch array of ``shape``, reused from call to call (its old contents are garbage).

    Fresh large NumPy arrays are slow to fill the first time: the operating system maps their
    pages in one fault at a time, which costs about as much as the copy itself. So conv keeps one
    buffer per ``name`` ("columns", "padded"), thread, device and dtype, and every layer reuses it.
    It only grows, to the largest chunk seen (at most about ``COLUMN_BUDGET_BYTES`` for the
    columns); ``release_buffers()`` frees them. Nothing is kept in it from one call to the next.
    """
    xp = backend.get_array_module(like)
    key = (threading.get_ident(), name, xp.__name__, str(getattr(like, "device", "")), str(dtype))
    size = math.prod(shape)
    buffers = _scratch
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buffers.pop(key, None)  # let the old one go before the bigger one is allocated
        buf = buffers[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def release_buffers():
    """Free the conv scratch buffers of every thread (they are re-created when next needed).
    Call it between steps, not while a convolution runs."""
    _scratch.clear()


# ------------------------------------------------------------------------------------------------
# The Function
# ------------------------------------------------------------------------------------------------
def _needs(fn):
    """``(x, weight, bias)`` flags of ``needs_input_grad`` (False when called without a bias)."""
    return (tuple(getattr(fn, "needs_input_grad", ())) + (False,) * 3)[:3]


def _correlate(x, weight, bias, stride, padding, groups, with_columns=None):
    """The forward computation on arrays: y = conv2d(x, weight, bias), chunk by chunk.

    For each chunk of samples: pad into a reused buffer, im2col into a reused buffer, one GEMM per
    group ``Y = W_mat @ cols``, add the bias, and write Y (C_out, m*Ho*Wo) into y (m, C_out, Ho, Wo).
    Used by ``Conv2d.forward`` and, with flipped filters, by the backward pass for stride 1.

    The pieces are chunks of whole samples, or bands of output rows of one sample when a single
    sample's columns are larger than the CPU's cache-sized chunk (``_pieces``).

    ``with_columns(cols, width, samples, rows)``, when given, is also called with each piece's
    columns (``samples`` and output ``rows`` are the piece's slices); the function then returns
    ``(y, [its results in piece order])``.
    """
    xp = backend.get_array_module(x)
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    g = groups
    dtype = xp.result_type(x.dtype, weight.dtype)
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    rows = c * kh * kw
    w_mat = weight.reshape(g, c_out // g, cg * kh * kw)  # block g: the filters of group g

    y = xp.empty((n, c_out, ho, wo), dtype=dtype)

    def piece(where):  # writes only y[samples, :, out_rows]
        samples, out_rows = where
        xc, pads = _input_rows(x[samples], out_rows, kh, sh, ph, pw)
        m, hb = xc.shape[0], out_rows.stop - out_rows.start
        cols, width = _columns(xc, kh, kw, stride, pads, hb, wo, dtype, c_out)  # (C*kh*kw, m*hb*width)
        yc = matmul(w_mat, cols.reshape(g, rows // g, -1))                  # (g, C_out/g, m*hb*width)
        if bias is not None:
            yc += bias.reshape(g, c_out // g, 1)
        y[samples, :, out_rows] = yc.reshape(c_out, m, hb, width)[..., :wo].transpose(1, 0, 2, 3)
        return None if with_columns is None else with_columns(cols, width, samples, out_rows)

    parts = parallel_map(piece, _pieces(n, ho, rows * ho * wo * dtype.itemsize, xp), xp)
    return y if with_columns is None else (y, parts)


def _pieces(n, ho, column_bytes_per_sample, xp):
    """The pieces of a convolution's work, as (samples, output rows) pairs of slices: chunks of
    whole samples (``_samples_per_chunk``), or, on the CPU, when one sample's columns alone exceed
    ``CPU_CHUNK_BYTES`` (VGG's 64-channel layers at 112x112: 29 MB), bands of output rows of one
    sample whose columns are about that size, so that they are still in the cache when the
    product reads them (a VGG layer's forward: 62 -> 48 ms on two threads)."""
    if _on_cpu(xp) and column_bytes_per_sample > CPU_CHUNK_BYTES and ho > 1:
        bands = min(ho, -(-column_bytes_per_sample // CPU_CHUNK_BYTES))
        return [(slice(i, i + 1), rows) for i in range(n) for rows in even_slices(ho, bands)]
    chunk = _samples_per_chunk(column_bytes_per_sample, n, xp)
    return [(slice(n0, n0 + chunk), slice(0, ho)) for n0 in range(0, n, chunk)]


def _input_rows(xs, out_rows, kh, sh, ph, pw):
    """The input rows that the output rows ``out_rows`` (a slice) read, and the padding they need:
    returns ``(xs[:, :, r0:r1], (top, bottom, left, right))``. The windows of output rows i0..i1-1
    cover padded-input rows i0*sh .. (i1-1)*sh + kh - 1, i.e. input rows from ``first`` to
    ``last - 1`` below; the part outside the image is padding (zeros). For all rows this is the
    whole input with ``ph`` rows of padding on top (and at most ``ph`` below)."""
    h = xs.shape[2]
    first = out_rows.start * sh - ph
    last = (out_rows.stop - 1) * sh - ph + kh
    r0 = max(first, 0)
    r1 = max(min(last, h), r0)
    return xs[:, :, r0:r1], (r0 - first, last - r1, pw, pw)


def _columns(xc, kh, kw, stride, pads, ho, wo, dtype, c_out):
    """im2col of one chunk of samples, in the reusable scratch buffers: returns ``(cols, width)``.

    ``cols`` has ``width`` columns per output row. For stride > 1 that is ``Wo`` and ``cols`` is
    exactly ``im2col``'s (C*kh*kw, m*Ho*Wo) matrix. For stride 1, when the convolution's ``c_out``
    filters are few enough (``GRID_MAX_EXTRA``), the columns are laid out on the *padded grid* (see
    ``_grid_columns``) and ``width`` is the padded width ``Wp = W + left + right``. ``pads`` is
    (top, bottom, left, right): a band of rows (see ``_input_rows``) may need padding on one side.
    """
    (sh, sw), (top, bottom, left, right) = stride, pads
    m, c, h, w = xc.shape
    if (sh, sw) == (1, 1) and c_out * (kw - 1) <= GRID_MAX_EXTRA * wo:
        return _grid_columns(xc, kh, kw, pads, ho, dtype), w + left + right
    if any(pads):
        xc = pad2d(xc, pads, out=_scratch_buffer(xc, "padded", (m, c, h + top + bottom, w + left + right),
                                                 xc.dtype))
    return _unfold(xc, kh, kw, sh, sw, ho, wo,
                   out=_scratch_buffer(xc, "columns", (c * kh * kw, m * ho * wo), dtype)), wo


GRID_MAX_EXTRA = 24
"""The padded grid (stride 1) makes the column copy several times faster but adds (kw - 1)/Wo
junk columns, each costing a multiply-add with every one of the C_out filters. It is used while
``C_out * (kw - 1) / Wo <= GRID_MAX_EXTRA``, the crossover measured on the reference machine:
ResNet-CIFAR's 64 -> 64 on 8x8 (16) gains 7%, AlexNet's 96 -> 256 5x5 on 27x27 (38) loses 13%."""


def _grid_columns(xc, kh, kw, pads, ho, dtype):
    """Stride-1 columns on the padded grid: (C*kh*kw, m*Ho*Wp), ``Wp = W + left + right``.

    Flatten each padded image (Hp, Wp) to one row of Hp*Wp numbers. Output pixel (i, j) reads the
    patch that starts at p = i*Wp + j, and its entry (u, v) sits at p + u*Wp + v. Let j run over
    all Wp columns instead of the Wo valid ones: the extra kw - 1 positions per row are junk (their
    windows wrap into the next row), but now p runs over the consecutive numbers 0 .. Ho*Wp - 1, so

        cols[(c, u, v), (n, p)] = flat[n, c, p + u*Wp + v]

    is a strided view whose inner axis is one contiguous run of Ho*Wp numbers per (c, u, v, n)
    instead of Ho runs of Wo: the copy runs several times faster. The product then has
    Wp/Wo more columns; callers drop the junk outputs (``[..., :Wo]``) and, for dW, multiply
    them by zero gradients. The flat buffer has kw - 1 zeros after the last image, where the
    last junk windows end.
    """
    xp = backend.get_array_module(xc)
    m, c, h, w = xc.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    size = m * c * hp * wp
    flat = _scratch_buffer(xc, "padded", (size + kw - 1,), xc.dtype)
    flat[size:] = 0
    pad2d(xc, pads, out=flat[:size].reshape(m, c, hp, wp))
    e = flat.itemsize
    patches = xp.lib.stride_tricks.as_strided(
        flat, shape=(c, kh, kw, m, ho * wp), strides=(hp * wp * e, wp * e, e, c * hp * wp * e, e))
    cols = _scratch_buffer(xc, "columns", (c * kh * kw, m * ho * wp), dtype)
    xp.copyto(cols.reshape(c, kh, kw, m, ho * wp), patches)
    return cols


def _flipped_transposed(weight, groups):
    """The filters of the transposed convolution: (C_out, C_in/g, kh, kw) -> (C_in, C_out/g, kh, kw),
    swapping in/out channels within each group and rotating each kernel by 180 degrees."""
    xp = backend.get_array_module(weight)
    c_out, cg, kh, kw = weight.shape
    w = weight.reshape(groups, c_out // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return xp.ascontiguousarray(w[..., ::-1, ::-1]).reshape(groups * cg, c_out // groups, kh, kw)


def _dx_as_convolution(x_shape, w_shape, stride, padding, out_hw):
    """Whether backward computes dx as a convolution of G (else as col2im(W_mat^T G_mat)).

    Both do the same multiply-adds when Ho*Wo ~ H*W; what differs is the copying and the shape of
    the product. The convolution copies the columns of G (C_out*kh*kw rows) and multiplies with
    C_in rows; col2im multiplies with C_in*kh*kw rows and then scatters C_in*kh*kw rows back. So
    the convolution wins when C_out <= C_in (ResNet's 16 -> 16 at 32x32: 9.4 ms against 15 ms
    on the reference machine), col2im when the layer widens (AlexNet's 96 -> 256 5x5: 177 ms
    against 230 ms; a 3-channel first layer: 8x) or when the output is much smaller than the
    input (LeNet's 16 -> 120 5x5 on a 5x5 map: 0.27 ms against 8 ms, the convolution would run
    over a mostly-zero padded G). Stride 1 only: a strided convolution's dx is not a convolution.
    """
    c, (c_out, _, kh, kw) = x_shape[1], w_shape
    (sh, sw), (ph, pw) = stride, padding
    h, w = x_shape[2:]
    ho, wo = out_hw
    return ((sh, sw) == (1, 1) and ph < kh and pw < kw and c_out <= c
            and 2 * ho * wo >= h * w)


def _channel_major(a, width):
    """(C, m*H*width) from a chunk ``a`` (m, C, H, W): rows are channels, columns (n, i, j), the
    layout of a matrix that multiplies columns. With ``width > W`` (padded-grid columns) the extra
    junk columns j >= W hold zeros, so the junk windows add nothing to dW."""
    m, c, h, w = a.shape
    if width == w:
        return a.transpose(1, 0, 2, 3).reshape(c, m * h * w)
    out = _scratch_buffer(a, "channel_major", (c, m, h, width), a.dtype)
    out[..., w:] = 0
    out[..., :w] = a.transpose(1, 0, 2, 3)
    return out.reshape(c, m * h * width)


def _sum_in_order(parts):
    """parts[0] + parts[1] + ..., left to right: the same result on any number of threads."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total


def _flipped_weight_gradient(total, w_shape, groups):
    """dW from (g, C_out/g * kh*kw, C_in/g), the product of G's columns (rows (o, u', v')) with x:

        dW[o, c, u, v] = sum_{n, a, b} colsG[(o, kh-1-u, kw-1-v), (n, a, b)] * x[n, c, a, b]

    (G padded by k-1-p, as for dx). So: split the rows, rotate (u', v') by 180 degrees, and put
    the input channel before the kernel axes."""
    c_out, cg, kh, kw = w_shape
    total = total.reshape(groups, c_out // groups, kh, kw, cg)[:, :, ::-1, ::-1]
    return total.transpose(0, 1, 4, 2, 3).reshape(w_shape)


class Conv2d(Function):
    """y = conv2d(x, weight, bias) by im2col and one GEMM per group (see the module docstring).

    forward(x (N, C, H, W), weight (C_out, C/groups, kh, kw), bias (C_out,) or None)
        -> y (N, C_out, Ho, Wo)
    backward(G) -> (dx, dW = G_mat cols^T, db = G summed over n, i, j),
    each computed only when ``needs_input_grad`` asks for it.

    dx, the gradient of the input, is the *transposed* convolution of G. With stride 1 it is an
    ordinary convolution: pad G by (k - 1 - p) and correlate it with the filters rotated by 180
    degrees and with in/out channels swapped,

        dx[n, c, a, b] = sum_{o, u, v} G_pad[n, o, a + u, b + v] * w[o, c, kh-1-u, kw-1-v],

    which reuses the fast forward path. The columns of G_pad built for it also give dW, with
    one more product and no im2col of x (``_flipped_weight_gradient``):

        dW[o, c, u, v] = sum_{n, a, b} G_pad[n, o, a + kh-1-u, b + kw-1-v] * x[n, c, a, b].

    Otherwise (stride > 1, or where ``_dx_as_convolution`` measured col2im faster)
    dx = col2im(W_mat^T G_mat): each column entry goes back to the pixel it was copied from, and
    dW = G_mat cols^T from the rebuilt columns of x.

    Saved for backward: ``x`` (only if dW is needed; its columns are rebuilt there, which costs less
    than keeping a buffer 9-25x the input alive between forward and backward) and ``weight`` (only
    if dx is needed).
    """

    def __init__(self, stride=1, padding=0, groups=1):
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.groups = int(groups)

    def forward(self, x, weight, bias=None):
        y = _correlate(x, weight, bias, self.stride, self.padding, self.groups)
        want_dx, want_dw, _ = _needs(self)
        self.x_shape, self.w_shape, self.dtype = x.shape, weight.shape, y.dtype
        self.x = x if want_dw else None
        self.weight = weight if want_dx else None
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = self.groups
        n, c, h, w = self.x_shape
        c_out, cg, kh, kw = self.w_shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        ho, wo = gy.shape[2:]
        rows = c * kh * kw
        want_dx, want_dw, want_db = _needs(self)
        as_convolution = _dx_as_convolution(self.x_shape, self.w_shape, self.stride, self.padding, (ho, wo))

        gx = gw = None
        if want_dx and as_convolution:
            flipped, pads = _flipped_transposed(self.weight, g), (kh - 1 - ph, kw - 1 - pw)
            if want_dw:   # dW from the same columns of G that the convolution for dx builds
                def dw_part(cols, width, samples, out_rows):  # the rows of dx are rows of x
                    x_mat = _channel_major(self.x[samples, :, out_rows], width)   # (C, m*hb*width)
                    return matmul(cols.reshape(g, (c_out // g) * kh * kw, -1),
                                  x_mat.reshape(g, c // g, -1).transpose(0, 2, 1))
                gx, parts = _correlate(gy, flipped, None, (1, 1), pads, g, with_columns=dw_part)
                gw = _flipped_weight_gradient(_sum_in_order(parts), self.w_shape, g)
            else:
                gx = _correlate(gy, flipped, None, (1, 1), pads, g)
        elif want_dx:
            gx = xp.empty(self.x_shape, dtype=gy.dtype)
        chunk = _samples_per_chunk(rows * ho * wo * gy.dtype.itemsize, n, xp)
        w_mat = None if self.weight is None else self.weight.reshape(g, c_out // g, cg * kh * kw)

        def piece(n0):  # returns this chunk's part of dW; writes only gx[n0:n0 + chunk]
            gc = gy[n0:n0 + chunk]
            m = gc.shape[0]
            part = None
            if loop_dw:   # dW = G_mat @ cols^T, computed as (cols @ G_mat^T)^T: BLAS runs this
                cols, width = _columns(self.x[n0:n0 + m], kh, kw, self.stride, (ph, ph, pw, pw), ho,
                                       wo, self.dtype, c_out)  # layout of the same product up to 2x faster
                g_grid = _channel_major(gc, width)
                part = matmul(cols.reshape(g, rows // g, -1),
                              g_grid.reshape(g, c_out // g, -1).transpose(0, 2, 1))
            if want_dx and not as_convolution:   # dcols = W_mat^T @ G_mat, then col2im
                # G_mat (g, C_out/g, m*Ho*Wo): rows = output channels, columns = (n, i, j)
                g_mat = gc.transpose(1, 0, 2, 3).reshape(g, c_out // g, m * ho * wo)
                gcols = _scratch_buffer(gy, "columns", (g, rows // g, m * ho * wo), gy.dtype)
                xp.matmul(w_mat.transpose(0, 2, 1), g_mat, out=gcols)
                gx[n0:n0 + m] = col2im(gcols.reshape(rows, m * ho * wo), (m, c, h, w), kh, kw,
                                       self.stride, self.padding)
            return part

        loop_dw = want_dw and gw is None
        if loop_dw or (want_dx and not as_convolution):
            parts = parallel_map(piece, range(0, n, chunk), xp)
            if loop_dw:
                gw = _sum_in_order(parts).transpose(0, 2, 1).reshape(self.w_shape)
        gb = gy.sum(axis=(0, 2, 3)) if want_db else None
        return gx, gw, gb


# ------------------------------------------------------------------------------------------------
# Validation and the functional entry point
# ------------------------------------------------------------------------------------------------
def validate_conv2d(layer, x_shape, weight_shape, stride=1, padding=0, groups=1, bias_shape=None):
    """Raise ``ValueError`` (naming ``layer``, expected vs received shape) for an invalid conv."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    sh, sw = _pair(stride, f"{layer}: stride")
    ph, pw = _pair(padding, f"{layer}: padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"{layer}: stride must be positive, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"{layer}: padding must be non-negative, got {(ph, pw)}")
    if len(weight_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D weight (C_out, C_in/groups, kH, kW), "
                         f"got shape {weight_shape}")
    c_out, cg, kh, kw = weight_shape
    if groups < 1 or c_out % groups:
        raise ValueError(f"{layer}: groups={groups} must be positive and divide the "
                         f"{c_out} output channels (weight {weight_shape})")
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D input (N, C, H, W) = (N, {cg * groups}, H, W), "
                         f"got shape {x_shape}")
    n, c, h, w = x_shape
    if c != cg * groups:
        extra = f" with groups={groups}" if groups != 1 else ""
        raise ValueError(f"{layer}: expected input with {cg * groups} channels, shape "
                         f"(N, {cg * groups}, H, W) (weight {weight_shape}{extra}), got shape {x_shape}")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{layer}: input spatial size {(h, w)} padded by {(ph, pw)} is smaller than "
                         f"the kernel {(kh, kw)}: expected an input of at least "
                         f"(N, {c}, {max(kh - 2 * ph, 1)}, {max(kw - 2 * pw, 1)}), got shape {x_shape}")
    if bias_shape is not None and tuple(bias_shape) != (c_out,):
        raise ValueError(f"{layer}: expected a bias of shape ({c_out},), got shape {tuple(bias_shape)}")


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D convolution (cross-correlation) of ``x`` (N, C_in, H, W) with ``weight``
    (C_out, C_in/groups, kH, kW) plus ``bias`` (C_out,): returns (N, C_out, Ho, Wo).

    ``stride`` and ``padding`` (zeros) are ints or (h, w) pairs. Differentiable in all three tensors.
    """
    validate_conv2d("conv2d", x.shape, weight.shape, stride, padding, groups,
                    None if bias is None else bias.shape)
    return Conv2d(stride, padding, groups)(x, weight, bias)


# ------------------------------------------------------------------------------------------------
# Gradient-check cases (``minicnn gradcheck conv2d``)
# ------------------------------------------------------------------------------------------------
def _t(*shape, seed=0):
    """A float64 leaf tensor of standard-normal host data (check cases start on the host)."""
    return Tensor(numpy.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _case(x_shape, w_shape, bias=True, **kw):
    def make():
        inputs = [_t(*x_shape), _t(*w_shape, seed=1)] + ([_t(w_shape[0], seed=2)] if bias else [])
        return (lambda x, w, b=None: conv2d(x, w, b, **kw)), inputs
    return make


register_case("conv2d", "3x3 stride 1 pad 1", _case((2, 3, 5, 5), (4, 3, 3, 3), padding=1))
register_case("conv2d", "3x3 stride 1 pad 1, narrowing (dx as a convolution)",
              _case((2, 4, 5, 5), (3, 4, 3, 3), padding=1))
register_case("conv2d", "3x3 stride 2 pad 0, no bias", _case((2, 2, 7, 6), (3, 2, 3, 3), bias=False, stride=2))
register_case("conv2d", "rect 2x3 kernel, stride (2,1), pad (1,0)",
              _case((1, 2, 6, 5), (3, 2, 2, 3), stride=(2, 1), padding=(1, 0)))
register_case("conv2d", "groups=2, 3x3 pad 1", _case((2, 4, 5, 4), (6, 2, 3, 3), padding=1, groups=2))
register_case("conv2d", "depthwise groups=3, 1x1", _case((2, 3, 4, 4), (3, 1, 1, 1), groups=3))
register_case("conv2d", "5x5 stride 3 pad 2 (overlap + border)", _case((1, 2, 8, 7), (2, 2, 5, 5),
                                                                         stride=3, padding=2))
