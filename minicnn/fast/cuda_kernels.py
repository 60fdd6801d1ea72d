r"""Hand-written CUDA kernels for the ops whose whole-array (NumPy-style) code is slow on a GPU.

The kernels are CUDA files in ``kernels/``, one per family: ``convolution.cu``, ``pooling.cu``,
``normalization.cu`` (batch norm), ``lrn.cu``, ``activation.cu``, ``losses.cu``, ``dropout.cu``,
``optimizers.cu`` (``windows.cuh``: a helper of convolution's and pooling's). This module loads
them by name, compiles each on first use and launches them from the wrappers below.

Why these kernels exist
-----------------------
The array code in ``conv.py`` and ``lrn.py`` runs unchanged on CuPy, but it is written
as a sequence of whole-array operations, and on a GPU each one is a kernel launch that reads and
writes all of its operands in global memory. The first two kernels show why:

* ``col2im`` (conv's input gradient when the stride is above 1) zeroes a padded buffer, then does
  kh*kw strided scatter-adds into it (one per kernel offset (u, v): 121 launches for AlexNet's
  11x11 conv1), then copies the interior out with a transpose.
* local response normalization computes ``a*a``, then about ``size`` shifted slice-adds for the
  window sum, then ``s**-beta`` and the product, each a full-size temporary; backward does the
  same again.

The kernels do each op in ONE pass: every thread computes its own output element(s) from
the inputs and writes them once. No temporaries, no zeroing, no atomics.

Thread mapping
--------------
Most kernels are "one thread per output element", with a *grid-stride loop*:

    for (i = global thread id; i < total; i += number of threads in the grid)

so a grid of any size covers any ``total`` (the launch caps the grid at 65535 blocks of 256).
Element ``i`` is decoded from its C-order index into coordinates:

* ``col2im``: one thread per input pixel ``(n, c, h, w)``. It *gathers* every column entry that
  lands on its pixel (the NumPy code *scatters* each column entry onto its pixel). A gather writes
  each output exactly once, so no two threads touch the same address: it needs no atomic adds and
  is deterministic (the sum is always taken in the same (u, v) order, the NumPy code's order).
* LRN forward and backward: one thread per element ``(n, c, p)`` of the input viewed as
  (N, C, S), with S the product of the trailing dimensions (H*W for an image). The thread loops
  over the ``size`` channels of its window. That costs ``size`` reads per output instead of one,
  but neighbouring threads read neighbouring positions ``p`` (coalesced), and a value read again
  by the thread of the next channel comes from the cache; in exchange, the sum is taken in the
  same order as ``lrn._window_sum`` (so float64 results match the CPU's to rounding),
  and there are N*C*S threads to keep the GPU busy (a thread per (n, p) walking the channels with
  a running sum would give AlexNet's (4, 96, 55, 55) only 12,100 threads, far fewer than a GPU
  holds at once).
* ``im2col``: one thread per (channel, column) writes the kh*kw entries of its window;
  neighbouring threads write neighbouring columns (coalesced).
* Batch norm's per-channel sums are reductions, not one output per thread: many blocks per
  channel add chunks of it (``minicnn_bn_partial_sums``), then a block per channel adds its
  chunks' sums in a fixed order (``minicnn_bn_sums``). Two launches, and every multiprocessor
  busy even when there are only 16 channels.

One source, two compilers, two dtypes, two index types
------------------------------------------------------
Each kernel is a plain ``extern "C" __global__`` function written over a float type ``T`` and an
integer type ``I`` for its sizes and indices. ``source(family, dtype, index)`` prepends
``typedef float T;`` or ``typedef double T;`` and ``typedef int I;`` or ``typedef long long I;``
to the file (its ``#include "windows.cuh"`` inserted, and ``#line`` directives, so that a compiler's
message names the .cu file and its line); CuPy compiles the result with NVRTC. ``_launch`` picks
``I`` per launch (``index_type``): ``int`` whenever every index fits in 31 bits, as almost always.
On a GPU a 64-bit division or modulo is a software routine of several dozen instructions, a 32-bit
one a few; a kernel that decodes
``(n, c, h, w)`` from ``i`` does several per element, so this alone can decide its speed.
The tests (``tests/fast/test_cuda_kernel_sources.py``, through ``minicnn.testing.cuda_on_cpu``) compile the
same text as ordinary C++ on the CPU, with a few lines that define ``__global__`` away and fix
``blockIdx = threadIdx = 0``, ``blockDim = gridDim = 1``: the grid-stride loop then visits every
``i`` in turn, and the kernels are checked against the NumPy code on machines without a GPU.
``tests/fast/test_cuda_kernels_in_blocks.py`` also runs them as blocks of 256 threads taking
turns between barriers (``cuda_on_cpu.BLOCKS_SHIM``), which the block sums need.

Compiled on first use
---------------------
The wrappers take the ``cupy`` module as their first argument and build a kernel the first time
it is needed (its family's file once per dtype and index type, ``cupy.RawModule``; each kernel
cached in ``_kernels``, the one cache). This module never imports
CuPy: importing minicnn must work on machines without it.
"""
import collections
import math
import re
from pathlib import Path

import numpy  # host side only: the typed scalar arguments of the kernel launches

# ------------------------------------------------------------------------------------------------
# Kernel sources: one .cu file per family in kernels/, over the float type T and index type I
# ------------------------------------------------------------------------------------------------
KERNELS = Path(__file__).parent / "kernels"
"""The folder of the kernel sources (package data)."""

FAMILIES = {
    "convolution": ("minicnn_im2col", "minicnn_col2im"),
    "pooling": ("minicnn_max_pool_forward", "minicnn_max_pool_backward",
                "minicnn_avg_pool_forward", "minicnn_avg_pool_backward"),
    "normalization": ("minicnn_bn_partial_sums", "minicnn_bn_sums", "minicnn_bn_finalize",
                      "minicnn_bn_forward", "minicnn_bn_backward"),
    "lrn": ("minicnn_lrn_forward", "minicnn_lrn_backward"),
    "activation": ("minicnn_relu_backward",),
    "losses": ("minicnn_cross_entropy_forward", "minicnn_cross_entropy_backward"),
    "dropout": ("minicnn_dropout",),
    "optimizers": ("minicnn_sgd_step", "minicnn_adam_step"),
}
"""Kernel file (``kernels/<family>.cu``) -> the kernels it defines."""

_C_TYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
_INDEX_TYPES = {numpy.dtype(numpy.int32): "int", numpy.dtype(numpy.int64): "long long"}


def family_of(name):
    """The family (file) of kernel ``name``."""
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise ValueError(f"cuda_kernels: no kernel {name!r} in {sorted(FAMILIES)}")


def _read(path):
    """``path``'s text, each ``#include "file"`` replaced by that file (from the same folder), with
    ``#line`` directives: the compilers' messages name the .cu file and its line."""
    if not path.is_file():
        raise FileNotFoundError(f"cuda_kernels: no kernel source {path}")
    lines = [f'#line 1 "{path.as_posix()}"']
    for number, line in enumerate(path.read_text().splitlines(), 1):
        included = re.fullmatch(r'\s*#include "([\w.]+)"\s*', line)
        if included:
            lines += [_read(path.parent / included.group(1)), f'#line {number + 1} "{path.as_posix()}"']
        else:
            lines.append(line)
    return "\n".join(lines)


def source(family, dtype, index=numpy.int64):
    """The complete source of ``kernels/<family>.cu`` for ``dtype`` and the index type ``index``:
    ``typedef <float|double> T; typedef <int|long long> I;``, then the file."""
    dtype, index = numpy.dtype(dtype), numpy.dtype(index)
    if dtype not in _C_TYPES:
        raise TypeError(f"{family}.cu: only float32 and float64 are supported, got {dtype}")
    return f"typedef {_C_TYPES[dtype]} T;\ntypedef {_INDEX_TYPES[index]} I;\n" + _read(KERNELS / f"{family}.cu") + "\n"


# ------------------------------------------------------------------------------------------------
# Compiling and launching
# ------------------------------------------------------------------------------------------------
_kernels = {}  # (kernel name, dtype, index dtype) -> the compiled kernel: the one cache, filled on first use

BLOCK = 256
"""Threads per block."""
MAX_BLOCKS = 65535
"""Most blocks a launch uses; the grid-stride loop covers the rest."""
INT32_LIMIT = 2**31 - 1


def _kernel(cupy, name, dtype, index=numpy.int64):
    """The compiled kernel ``name`` for ``dtype`` and ``index``: its family's file compiled by CuPy
    on first use (``cupy.RawModule``, which compiles a source text once), then cached."""
    key = (name, numpy.dtype(dtype), numpy.dtype(index))
    kernel = _kernels.get(key)
    if kernel is None:
        module = cupy.RawModule(code=source(family_of(name), dtype, index))
        kernel = _kernels[key] = module.get_function(name)
    return kernel


def index_type(total, args):
    """The kernels' integer type ``I`` for a launch over ``total`` threads with ``args``: int32 when
    every index the kernel computes fits, else int64.

    Every index a kernel forms lies within one of its arrays or below one of its integer
    arguments, and the grid-stride loop stops one stride past ``total``; int32 suffices when all
    of these stay below 2**31. On a GPU, 32-bit division and products are several times cheaper
    than 64-bit ones (64-bit division is a software routine), and a kernel like im2col does
    several per element (CuPy's own elementwise kernels make the same choice)."""
    largest = total + BLOCK * MAX_BLOCKS
    for arg in args:
        kind = type(arg)
        if kind is _Ints:
            largest = max(largest, arg.largest)
        elif kind not in _SCALARS:  # an array
            largest = max(largest, arg.size)
    return _INT32 if largest <= INT32_LIMIT else _INT64


_INT32, _INT64 = numpy.dtype(numpy.int32), numpy.dtype(numpy.int64)
_SCALARS = {numpy.float32, numpy.float64, numpy.uint64}


class _Ints:
    """A run of integer arguments of a kernel (Python ints), made by ``_ints``: ``_launch`` passes
    them as the kernel's index type."""
    __slots__ = ("values", "largest")

    def __init__(self, values):
        self.values = values
        self.largest = max(max(values), -min(values)) if values else 0


def _ints(*values):
    """Integer arguments of a kernel, in the argument tuple: ``(x, y) + _ints(n, c) + ...``."""
    return (_Ints(tuple(map(int, values))),)


_TYPED = {}  # (values, index dtype) -> the typed scalars: the same shapes come back every step
TYPED_KEPT = 4096


def _typed(ints, index):
    key = (ints.values, index)
    typed = _TYPED.get(key)
    if typed is None:
        if len(_TYPED) >= TYPED_KEPT:
            _TYPED.clear()
        typed = _TYPED[key] = tuple(map(index.type, ints.values))
    return typed


def _launch(cupy, name, dtype, total, args):
    """Run kernel ``name`` over ``total`` threads: blocks of ``BLOCK`` threads, a capped grid, the
    integer arguments (``_ints``) typed as ``index_type`` says (CuPy needs typed scalars)."""
    if total == 0:
        return
    index = index_type(total, args)
    kernel = _kernel(cupy, name, dtype, index)
    blocks = min(-(-total // BLOCK), MAX_BLOCKS)
    flat = []
    for arg in args:
        if type(arg) is _Ints:
            flat.extend(_typed(arg, index))
        else:
            flat.append(arg)
    kernel((blocks,), (BLOCK,), tuple(flat))


def _float_dtype(name, *arrays):
    """The common dtype of ``arrays``: float32 or float64 (anything else is refused)."""
    dtype = numpy.dtype(arrays[0].dtype)
    if dtype not in _C_TYPES or any(numpy.dtype(x.dtype) != dtype for x in arrays):
        raise TypeError(f"{name}: expected float32 or float64 arrays of one dtype, "
                        f"got {[str(x.dtype) for x in arrays]}")
    return dtype


# ------------------------------------------------------------------------------------------------
# The ops
# ------------------------------------------------------------------------------------------------
def col2im_cuda(cupy, cols, x_shape, kh, kw, stride, padding):
    """``conv.col2im`` on the GPU: ``cols`` (C*kh*kw, N*Ho*Wo) -> x (N, C, H, W), a new array.

    ``stride`` and ``padding`` are (h, w) pairs (``conv._pair``'s form); ``cols`` is a CuPy
    float32/float64 array. Same result as ``conv.col2im``, with the sum over (u, v) taken in the
    same order.
    """
    dtype = _float_dtype("col2im_cuda", cols)
    n, c, h, w = (int(d) for d in x_shape)
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1  # conv.conv_output_size
    if cols.shape != (c * kh * kw, n * ho * wo):
        raise ValueError(f"col2im_cuda: expected cols of shape {(c * kh * kw, n * ho * wo)} for "
                         f"x {tuple(x_shape)}, got {tuple(cols.shape)}")
    cols = cupy.ascontiguousarray(cols)
    x = cupy.empty((n, c, h, w), dtype=dtype)
    _launch(cupy, "minicnn_col2im", dtype, x.size,
            (cols, x) + _ints(n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo))
    return x


def _lrn_dims(a):
    """(N, C, S) of an (N, C, *) array: S is the product of the trailing dimensions."""
    return int(a.shape[0]), int(a.shape[1]), math.prod(int(d) for d in a.shape[2:])


def lrn_forward_cuda(cupy, a, size, alpha, beta, k):
    """Local response normalization forward on the GPU: returns ``(b, s)``, both shaped like ``a``.

    ``a`` is a CuPy (N, C, *) float32/float64 array; ``b`` is the output and
    ``s = k + alpha/size * (window sum of a^2)``, which backward needs (with ``a``).
    """
    dtype = _float_dtype("lrn_forward_cuda", a)
    a = cupy.ascontiguousarray(a)
    n, c, s_len = _lrn_dims(a)
    b, s = cupy.empty_like(a), cupy.empty_like(a)
    _launch(cupy, "minicnn_lrn_forward", dtype, a.size,
            (a, b, s) + _ints(n, c, s_len, size // 2, (size - 1) // 2)
            + (dtype.type(alpha / size), dtype.type(beta), dtype.type(k)))
    return b, s


def lrn_backward_cuda(cupy, a, s, g, size, alpha, beta):
    """Local response normalization backward on the GPU: ``da`` from the forward's ``a`` and ``s``
    and the output gradient ``g`` (all CuPy arrays of one shape and dtype, float32/float64)."""
    dtype = _float_dtype("lrn_backward_cuda", a, s, g)
    if not a.shape == s.shape == g.shape:
        raise ValueError(f"lrn_backward_cuda: a, s and g must have one shape, got "
                         f"{tuple(a.shape)}, {tuple(s.shape)}, {tuple(g.shape)}")
    a, s, g = (cupy.ascontiguousarray(x) for x in (a, s, g))
    n, c, s_len = _lrn_dims(a)
    da = cupy.empty_like(a)
    _launch(cupy, "minicnn_lrn_backward", dtype, a.size,
            (a, s, g, da) + _ints(n, c, s_len, (size - 1) // 2, size // 2)  # the mirrored window
            + (dtype.type(-2.0 * alpha * beta / size), dtype.type(beta)))
    return da


def _channels(x):
    """(N, C, S) of an (N, C, *) array: S is the product of the trailing dimensions (1 for (N, C))."""
    return int(x.shape[0]), int(x.shape[1]), math.prod(int(d) for d in x.shape[2:])


BN_PART_SIZE = 8 * BLOCK
"""Values of a channel per block of ``minicnn_bn_partial_sums`` (eight per thread): sets how many
parts a channel is cut into."""
BN_MAX_PARTS = 1024
"""Most parts per channel (bounds the scratch and ``minicnn_bn_sums``'s work per channel)."""


def _bn_sums(cupy, dtype, a, b, mean, inv_std, sum1, sum2, mode, constants):
    """The per-channel sums of an (N, C, *) array in two launches (``mode``: 0 statistics, 1
    batch norm's gradient sums, 2 plain sums; see ``kernels/normalization.cu``): partial sums of
    chunks of each channel (``minicnn_bn_partial_sums``, enough blocks to fill the GPU), then a
    block per channel adds its parts and finishes (``minicnn_bn_sums``)."""
    n, c, s_len = _channels(a)
    m = n * s_len
    parts = max(1, min(-(-m // BN_PART_SIZE), BN_MAX_PARTS))
    if m == 0:  # nothing to add (and no S to divide by)
        partial = cupy.zeros((2, c * parts), dtype=numpy.float64)
    else:
        partial = cupy.empty((2, c * parts), dtype=numpy.float64)  # double precision, as the sums
        _launch(cupy, "minicnn_bn_partial_sums", dtype, c * parts * BLOCK,
                (a, b, mean, partial[0], partial[1]) + _ints(n, c, s_len, parts, -(-m // parts), mode))
    _launch(cupy, "minicnn_bn_sums", dtype, c * BLOCK,  # a block per channel
            (partial[0], partial[1], inv_std, sum1, sum2) + _ints(c, parts, m, mode) + constants)


def channel_sums_cuda(cupy, g):
    """``g.sum(axis=(0, 2, 3, ...))`` of an (N, C, *) CuPy array, with batch norm's two-pass
    reduction (``_bn_sums``, mode 2): a convolution's bias gradient. CuPy's own reduction gives
    each channel one block, which leaves most of a GPU idle when there are few channels."""
    dtype = _float_dtype("channel_sums_cuda", g)
    g = cupy.ascontiguousarray(g)
    sums = cupy.empty(g.shape[1], dtype=dtype)
    _bn_sums(cupy, dtype, g, g, sums, sums, sums, sums, 2,
             _bn_constant_arguments(dtype, sums, None, None, None, None, sums, sums, 0.0, 0.0))
    return sums


def bn_statistics_cuda(cupy, x, gamma, beta, running_mean, running_var, eps, momentum):
    """Training batch norm's statistics and constants over an (N, C, *) CuPy array (``_bn_sums``,
    in double precision): ``(mean, var, inv_std, scale, shift)``, each (C,); the running
    estimates, when given, are updated in place (``bn_finalize_cuda``'s rule)."""
    dtype = _float_dtype("bn_statistics_cuda", x)
    x = cupy.ascontiguousarray(x)
    mean, var, inv_std, scale, shift = (cupy.empty(x.shape[1], dtype=dtype) for _ in range(5))
    _bn_sums(cupy, dtype, x, x, x, inv_std, mean, var, 0,
             _bn_constant_arguments(dtype, mean, gamma, beta, running_mean, running_var, scale, shift,
                                    eps, momentum))
    return mean, var, inv_std, scale, shift


def _bn_constant_arguments(dtype, fallback, gamma, beta, running_mean, running_var, scale, shift, eps, momentum):
    """The arguments of ``minicnn_bn_channel`` from gamma to momentum (m and the outputs aside):
    absent arrays are replaced by ``fallback`` (never read), with the flags saying which exist."""
    update = running_mean is not None
    return ((fallback if gamma is None else gamma, fallback if beta is None else beta,
             running_mean if update else fallback, running_var if update else fallback, scale, shift)
            + _ints(gamma is not None, beta is not None, update) + (dtype.type(eps), dtype.type(momentum)))


def bn_gradient_sums_cuda(cupy, g, x, mean, inv_std):
    """``(sum g, sum g * xhat)`` per channel, xhat = (x - mean) * inv_std (``_bn_sums``)."""
    dtype = _float_dtype("bn_gradient_sums_cuda", g, x, mean, inv_std)
    g, x = cupy.ascontiguousarray(g), cupy.ascontiguousarray(x)
    c = x.shape[1]
    sum_g, sum_gxhat = cupy.empty(c, dtype=dtype), cupy.empty(c, dtype=dtype)
    _bn_sums(cupy, dtype, g, x, cupy.ascontiguousarray(mean), cupy.ascontiguousarray(inv_std), sum_g,
             sum_gxhat, 1, _bn_constant_arguments(dtype, sum_g, None, None, None, None, sum_g, sum_g, 0.0, 0.0))
    return sum_g, sum_gxhat


def bn_forward_cuda(cupy, x, mean, scale, shift):
    """``y = (x - mean[c]) * scale[c] + shift[c]`` over an (N, C, *) CuPy array, one pass."""
    dtype = _float_dtype("bn_forward_cuda", x, mean, scale, shift)
    x = cupy.ascontiguousarray(x)
    n, c, s_len = _channels(x)
    y = cupy.empty_like(x)
    _launch(cupy, "minicnn_bn_forward", dtype, x.size,
            (x, mean, scale, shift, y) + _ints(x.size, c, s_len))
    return y


def bn_backward_cuda(cupy, g, x, mean, inv_std, scale, sum_g, sum_gxhat, training):
    """Batch norm's dx in one pass (``minicnn_bn_backward`` in ``kernels/normalization.cu``); ``m`` = values
    per channel."""
    dtype = _float_dtype("bn_backward_cuda", g, x, mean, inv_std, scale, sum_g, sum_gxhat)
    g, x = cupy.ascontiguousarray(g), cupy.ascontiguousarray(x)
    n, c, s_len = _channels(x)
    dx = cupy.empty_like(x)
    _launch(cupy, "minicnn_bn_backward", dtype, x.size,
            (g, x, mean, inv_std, scale, sum_g, sum_gxhat, dx)
            + _ints(x.size, c, s_len, n * s_len, 1 if training else 0))
    return dx


def im2col_cuda(cupy, x, kh, kw, stride, padding):
    """``conv.im2col`` on the GPU in one pass, padding included: (N, C, H, W) -> (C*kh*kw, N*Ho*Wo)."""
    dtype = _float_dtype("im2col_cuda", x)
    x = cupy.ascontiguousarray(x)
    n, c, h, w = (int(d) for d in x.shape)
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1  # conv_output_size
    cols = cupy.empty((c * kh * kw, n * ho * wo), dtype=dtype)
    _launch(cupy, "minicnn_im2col", dtype, c * n * ho * wo,  # a thread per (c, column)
            (x, cols) + _ints(n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo))
    return cols


def max_pool_forward_cuda(cupy, x, kernel, stride, padding, out_hw):
    """Max pooling of (N, C, H, W) to (N, C, Ho, Wo) in one pass: returns ``(y, argmax)``, argmax
    (int64, y's shape) holding each maximum's index ``h*W + w`` in its channel plane."""
    dtype = _float_dtype("max_pool_forward_cuda", x)
    x = cupy.ascontiguousarray(x)
    n, c, h, w = (int(d) for d in x.shape)
    ho, wo = out_hw
    y = cupy.empty((n, c, ho, wo), dtype=dtype)
    argmax = cupy.empty((n, c, ho, wo), dtype=numpy.int64)
    _launch(cupy, "minicnn_max_pool_forward", dtype, y.size,
            (x, y, argmax) + _ints(n * c, h, w, ho, wo, *kernel, *stride, *padding))
    return y, argmax


def max_pool_backward_cuda(cupy, g, argmax, x_shape, kernel, stride, padding):
    """Max pooling's dx (``x_shape``) from g and the forward's argmax, one thread per pixel."""
    dtype = _float_dtype("max_pool_backward_cuda", g)
    g = cupy.ascontiguousarray(g)
    n, c, h, w = (int(d) for d in x_shape)
    ho, wo = int(g.shape[2]), int(g.shape[3])
    dx = cupy.empty((n, c, h, w), dtype=dtype)
    _launch(cupy, "minicnn_max_pool_backward", dtype, dx.size,
            (g, argmax, dx) + _ints(n * c, h, w, ho, wo, *kernel, *stride, *padding))
    return dx


def _parameter_groups(name, params, arrays, key):
    """``{(dtype, key(k)): [k, ...]}`` for the parameters, after checking that each parameter's
    arrays (``arrays(k)``: parameter, gradient, state) are C-contiguous, of one shape and dtype."""
    groups = {}
    for k, p in enumerate(params):
        own = arrays(k)
        dtype = _float_dtype(name, *own)
        if not all(a.flags.c_contiguous for a in own) or any(a.shape != p.shape for a in own):
            raise ValueError(f"{name}: parameters, gradients and state must be C-contiguous and of one shape")
        groups.setdefault((dtype, key(k)), []).append(k)
    return groups


_tables = collections.OrderedDict()  # table contents -> the table on the device (recently used last)
TABLES_KEPT = 16
"""Address tables kept on the device for reuse (CuPy's memory pool tends to hand a step's new
gradients the addresses of the last step's, so the same few tables come back)."""


def _address_table(cupy, columns):
    """The optimizer kernels' table on the device: the offsets of the parameters (``columns[0]``)
    laid end to end, then each column's array addresses. -> (table, total). A table seen recently
    is reused; a new one is one host -> device copy."""
    offsets = numpy.concatenate([[0], numpy.cumsum([int(a.size) for a in columns[0]])])
    addresses = [[int(a.data.ptr) for a in column] for column in columns]
    host = numpy.concatenate([offsets] + addresses).astype(numpy.int64)
    key = (cupy.__name__, str(getattr(columns[0][0], "device", "")), host.tobytes())
    table = _tables.pop(key, None)
    if table is None:
        table = cupy.asarray(host)
        while len(_tables) >= TABLES_KEPT:
            _tables.popitem(last=False)
    _tables[key] = table
    return table, int(offsets[-1])


def sgd_step_cuda(cupy, params, grads, bufs, firsts, lr, momentum, dampening, weight_decay, nesterov):
    """``optim.sgd.sgd_step`` in one launch per (dtype, first) pair: every ``params[k]`` (and
    ``bufs[k]``, None when momentum is 0) changes in place."""
    groups = _parameter_groups("sgd_step_cuda", params, lambda k: [a for a in (params[k], grads[k], bufs[k])
                                                                   if a is not None], lambda k: bool(firsts[k]))
    for (dtype, first), ks in groups.items():
        table, total = _address_table(cupy, ([params[k] for k in ks], [grads[k] for k in ks],
                                             [params[k] if bufs[k] is None else bufs[k] for k in ks]))
        _launch(cupy, "minicnn_sgd_step", dtype, total,
                (table,) + _ints(len(ks), total)
                + tuple(dtype.type(v) for v in (lr, momentum, dampening, weight_decay))
                + _ints(1 if nesterov else 0, 1 if first else 0))


def adam_step_cuda(cupy, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                   eps, weight_decay, decoupled, amsgrad):
    """``optim.adam.adam_step`` in one launch per (dtype, step) pair: parameters and moments
    change in place (``max_exp_avg_sqs[k]`` is None unless ``amsgrad``)."""
    def arrays(k):
        return [a for a in (params[k], grads[k], exp_avgs[k], exp_avg_sqs[k], max_exp_avg_sqs[k]) if a is not None]
    for (dtype, t), ks in _parameter_groups("adam_step_cuda", params, arrays, lambda k: int(steps[k])).items():
        table, total = _address_table(cupy, ([params[k] for k in ks], [grads[k] for k in ks],
                                             [exp_avgs[k] for k in ks], [exp_avg_sqs[k] for k in ks],
                                             [params[k] if max_exp_avg_sqs[k] is None else max_exp_avg_sqs[k]
                                              for k in ks]))
        scalars = (1.0 - beta1, beta2, 1.0 - beta2, eps, weight_decay, 1.0 - lr * weight_decay,
                   lr / (1.0 - beta1 ** t), math.sqrt(1.0 - beta2 ** t))
        _launch(cupy, "minicnn_adam_step", dtype, total,
                (table,) + _ints(len(ks), total) + tuple(dtype.type(v) for v in scalars)
                + _ints(1 if decoupled else 0, 1 if amsgrad else 0))


def bn_finalize_cuda(cupy, mean, var, gamma, beta, running_mean, running_var, m, eps, momentum):
    """Per-channel ``(inv_std, scale, shift)`` from given statistics (evaluation), and, when
    ``running_mean`` is given, the running estimates updated in place (all (C,) arrays of one
    dtype; gamma, beta and the running buffers may be None)."""
    given = [a for a in (mean, var, gamma, beta, running_mean, running_var) if a is not None]
    dtype = _float_dtype("bn_finalize_cuda", *given)
    c = int(mean.shape[0])
    inv_std, scale, shift = (cupy.empty(c, dtype=dtype) for _ in range(3))
    constants = _bn_constant_arguments(dtype, mean, gamma, beta, running_mean, running_var, scale, shift,
                                       eps, momentum)
    _launch(cupy, "minicnn_bn_finalize", dtype, c,
            (mean, var) + constants[:4] + (inv_std, scale, shift) + _ints(c, m) + constants[6:])
    return inv_std, scale, shift


def avg_pool_forward_cuda(cupy, x, kernel, stride, padding, out_hw):
    """Average pooling (padding counted in the divisor) of (N, C, H, W) to (N, C, Ho, Wo), one pass."""
    dtype = _float_dtype("avg_pool_forward_cuda", x)
    x = cupy.ascontiguousarray(x)
    n, c, h, w = (int(d) for d in x.shape)
    y = cupy.empty((n, c) + tuple(out_hw), dtype=dtype)
    _launch(cupy, "minicnn_avg_pool_forward", dtype, y.size,
            (x, y) + _ints(n * c, h, w, *out_hw, *kernel, *stride, *padding))
    return y


def avg_pool_backward_cuda(cupy, g, x_shape, kernel, stride, padding):
    """Average pooling's dx (``x_shape``) from g, one thread per input pixel."""
    dtype = _float_dtype("avg_pool_backward_cuda", g)
    g = cupy.ascontiguousarray(g)
    n, c, h, w = (int(d) for d in x_shape)
    dx = cupy.empty((n, c, h, w), dtype=dtype)
    _launch(cupy, "minicnn_avg_pool_backward", dtype, dx.size,
            (g, dx) + _ints(n * c, h, w, int(g.shape[2]), int(g.shape[3]), *kernel, *stride, *padding))
    return dx


def relu_backward_cuda(cupy, y, g):
    """ReLU's dx from its output ``y`` and the gradient ``g`` (one shape and float dtype), one pass."""
    dtype = _float_dtype("relu_backward_cuda", y, g)
    if y.shape != g.shape:
        raise ValueError(f"relu_backward_cuda: y {tuple(y.shape)} and g {tuple(g.shape)} differ")
    y, g = cupy.ascontiguousarray(y), cupy.ascontiguousarray(g)
    dx = cupy.empty_like(y)
    _launch(cupy, "minicnn_relu_backward", dtype, y.size, (y, g, dx) + _ints(y.size))
    return dx


def cross_entropy_forward_cuda(cupy, z, t):
    """``(loss per row (N,), softmax p (N, C))`` of logits ``z`` and checked int labels ``t``."""
    dtype = _float_dtype("cross_entropy_forward_cuda", z)
    n, c = (int(d) for d in z.shape)
    z, t = cupy.ascontiguousarray(z), cupy.ascontiguousarray(t.astype(numpy.int64, copy=False))
    p, loss = cupy.empty_like(z), cupy.empty(n, dtype=dtype)
    if c:  # a block per row
        _launch(cupy, "minicnn_cross_entropy_forward", dtype, n * BLOCK, (z, t, p, loss) + _ints(n, c))
    return loss, p


def cross_entropy_backward_cuda(cupy, p, t, g):
    """The logits' gradient ``(p - onehot(t)) * g / N`` (``g``: the loss's 0-d gradient)."""
    dtype = _float_dtype("cross_entropy_backward_cuda", p, g)
    n, c = (int(d) for d in p.shape)
    dz = cupy.empty_like(p)
    _launch(cupy, "minicnn_cross_entropy_backward", dtype, n * c,
            (p, cupy.ascontiguousarray(t.astype(numpy.int64, copy=False)), cupy.ascontiguousarray(g), dz)
            + _ints(n, c))
    return dz


def dropout_threshold(p):
    """``ceil(p * 2**53)``: ``minicnn_dropout`` keeps an element when its 53 random bits reach it."""
    return numpy.uint64(math.ceil(float(p) * 2.0 ** 53))


def dropout_cuda(cupy, g, seed, p, scale):
    """``g * scale`` where the hash of (``seed``, index) keeps the element, else 0 (dropout's
    forward with g = x, or its backward with g = dy and the same seed); see ``kernels/dropout.cu``."""
    dtype = _float_dtype("dropout_cuda", g)
    g = cupy.ascontiguousarray(g)
    out = cupy.empty_like(g)
    _launch(cupy, "minicnn_dropout", dtype, g.size,
            (g, out) + _ints(g.size) + (numpy.uint64(seed), dropout_threshold(p), dtype.type(scale)))
    return out
