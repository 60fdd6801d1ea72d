"""Convolution on the CPU: the reference's im2col + GEMM, arranged for the cache and two cores.

``ThreadedConv2d`` computes exactly what ``minicnn.functional.conv.Conv2d`` computes (tested equal
to it), and the registry uses it for NumPy arrays. What it changes, each measured on the 2-core
reference machine (docs/performance.md):

* **Chunks on threads.** Columns are built a few samples at a time, about ``CPU_CHUNK_BYTES``
  (4 MiB): a chunk that is still in the cache when the product reads it is about twice as fast as
  one 75 MB column matrix. The chunks run on ``threads.parallel_map``'s threads, each with a
  one-thread BLAS; one sample larger than a chunk is cut into bands of output rows (``_pieces``).
* **Scratch buffers** for the columns and the padded input (``scratch.py``).
* **The padded grid** for stride 1 (``_grid_columns``): a few junk columns per row make every
  patch row one contiguous run, and the copy several times faster.
* **Backward** keeps ``x``, not its columns (9-25x the input), and rebuilds them; dW is
  ``(cols @ G^T)^T``, BLAS's faster layout for skinny matrices; dx for stride 1 is a convolution
  of G with the flipped filters where that measured faster (``_dx_as_convolution``), and then dW
  comes from the same columns of G (``_flipped_weight_gradient``).

Results do not depend on the thread count: the pieces depend only on the shapes, and partial
sums are added in a fixed order.
"""
from .. import backend
from ..functional.conv import Conv2d, col2im
from ..functional.geometry import conv_output_size, pad2d
from .registry import register
from .scratch import _scratch_buffer
from .threads import even_slices, matmul, parallel_map


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


CPU_CHUNK_BYTES = 4 * 2 ** 20
"""On the CPU, columns are built a few samples at a time, about 4 MiB of them (at least one
sample): a chunk that stays in the processor's cache is written by im2col and read straight back
by the matrix product, which on this project's 2-core machine made the ResNet-CIFAR convolutions
about twice as fast as one 75 MB column matrix."""


def _samples_per_chunk(column_bytes_per_sample, n):
    """How many samples' columns to build at once: about ``CPU_CHUNK_BYTES`` (cache); at least 1,
    at most ``n``.

    The chunks (at least ``CPU_CHUNK_MULTIPLE`` of them once the columns reach
    ``CPU_SPLIT_BYTES``) are then evened out to a multiple of ``CPU_CHUNK_MULTIPLE`` chunks of
    (nearly) equal size, so that the threads of ``parallel_map`` get equal shares: 128 samples
    at 28 per chunk would be 4 full chunks and a short one (one thread doing 3 of 5), but are
    8 chunks of 16. The chunking depends only on the shapes, never on the thread count.
    """
    chunk = max(1, min(n, CPU_CHUNK_BYTES // max(1, column_bytes_per_sample)))
    if (chunk < n or n * column_bytes_per_sample >= CPU_SPLIT_BYTES):
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

    parts = parallel_map(piece, _pieces(n, ho, rows * ho * wo * dtype.itemsize), xp)
    return y if with_columns is None else (y, parts)


def _pieces(n, ho, column_bytes_per_sample):
    """The pieces of a convolution's work, as (samples, output rows) pairs of slices: chunks of
    whole samples (``_samples_per_chunk``), or, on the CPU, when one sample's columns alone exceed
    ``CPU_CHUNK_BYTES`` (VGG's 64-channel layers at 112x112: 29 MB), bands of output rows of one
    sample whose columns are about that size, so that they are still in the cache when the
    product reads them (a VGG layer's forward: 62 -> 48 ms on two threads)."""
    if column_bytes_per_sample > CPU_CHUNK_BYTES and ho > 1:
        bands = min(ho, -(-column_bytes_per_sample // CPU_CHUNK_BYTES))
        return [(slice(i, i + 1), rows) for i in range(n) for rows in even_slices(ho, bands)]
    chunk = _samples_per_chunk(column_bytes_per_sample, n)
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


class ThreadedConv2d(Conv2d):
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

    def forward(self, x, weight, bias=None):
        y = _correlate(x, weight, bias, self.stride, self.padding, self.groups)
        want_dx, want_dw, _ = self.needed_grads()
        self.x_shape, self.w_shape, self.dtype = x.shape, weight.shape, y.dtype
        self.x = x if want_dw else None
        self.weight = weight if want_dx else None
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = self.groups
        n, c, h, w = self.x_shape
        c_out, cg, kh, kw = self.w_shape
        ph, pw = self.padding
        ho, wo = gy.shape[2:]
        rows = c * kh * kw
        want_dx, want_dw, want_db = self.needed_grads()
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
        chunk = _samples_per_chunk(rows * ho * wo * gy.dtype.itemsize, n)
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




register(Conv2d, ThreadedConv2d, devices=("cpu",))
