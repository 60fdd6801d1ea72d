r"""Hand-written CUDA kernels for two ops whose whole-array (NumPy-style) code is slow on a GPU.

Why these kernels exist
-----------------------
The array code in ``conv.py`` and ``normalization.py`` runs unchanged on CuPy, but it is written
as a sequence of whole-array operations, and on a GPU each one is a kernel launch that reads and
writes all of its operands in global memory:

* ``col2im`` (conv's input gradient when the stride is above 1) zeroes a padded buffer, then does
  kh*kw strided scatter-adds into it (one per kernel offset (u, v): 121 launches for AlexNet's
  11x11 conv1), then copies the interior out with a transpose.
* local response normalization computes ``a*a``, then about ``size`` shifted slice-adds for the
  window sum, then ``s**-beta`` and the product, each a full-size temporary; backward does the
  same again.

The kernels below do each op in ONE pass: every thread computes its own output element(s) from
the inputs and writes them once. No temporaries, no zeroing, no atomics.

Thread mapping
--------------
Every kernel is "one thread per output element", with a *grid-stride loop*:

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
  same order as ``normalization._window_sum`` (so float64 results match the CPU's to rounding),
  and there are N*C*S threads to keep the GPU busy (a thread per (n, p) walking the channels with
  a running sum would give AlexNet's (4, 96, 55, 55) only 12,100 threads, far fewer than a GPU
  holds at once).

One source, two compilers, two dtypes
-------------------------------------
Each source is a plain ``extern "C" __global__`` function written over a float type ``T``.
``_source(name, dtype)`` prepends ``typedef float T;`` or ``typedef double T;``; CuPy compiles the
result with NVRTC. The tests (``tests/functional/test_gpu_kernel_sources.py``) compile the same
text as ordinary C++ on the CPU, with a few lines that define ``__global__`` away and fix
``blockIdx = threadIdx = 0``, ``blockDim = gridDim = 1``: the grid-stride loop then visits every
``i`` in turn, and the kernels are checked against the NumPy code on machines without a GPU.

Compiled on first use
---------------------
The wrappers take the ``cupy`` module as their first argument and build a kernel the first time
it is needed (once per dtype, cached in ``_kernels``). This module never imports CuPy: importing
minicnn must work on machines without it.
"""
import math

import numpy  # host side only: the typed scalar arguments of the kernel launches

# ------------------------------------------------------------------------------------------------
# Kernel sources (T is the float type; see _source)
# ------------------------------------------------------------------------------------------------
COL2IM_SOURCE = r"""
// col2im, gather form: one thread per input pixel (n, c, h, w).
//   x[n, c, h, w] = sum over (u, v) of cols[(c, u, v), (n, i, j)]
//   for every window (i, j) whose offset (u, v) lands on the pixel:
//   i*sh - ph + u = h  and  j*sw - pw + v = w,  0 <= i < Ho,  0 <= j < Wo.
extern "C" __global__ void minicnn_col2im(
    const T* __restrict__ cols,  // (C*kh*kw, N*Ho*Wo): rows (c, u, v), columns (n, i, j)
    T* __restrict__ x,           // (N, C, H, W), written in full
    long long N, long long C, long long H, long long W,
    long long kh, long long kw, long long sh, long long sw, long long ph, long long pw,
    long long Ho, long long Wo)
{
    const long long total = N * C * H * W;
    const long long npix = N * Ho * Wo;  // the length of a row of cols
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
        const long long hp = h + ph, wp = w + pw;  // the pixel in the padded input
        T sum = 0;
        for (long long u = 0; u < kh; ++u) {
            const long long du = hp - u;  // = oi * sh for the window row oi whose offset u is here
            if (du < 0 || du % sh != 0 || du / sh >= Ho) continue;
            const long long oi = du / sh;
            for (long long v = 0; v < kw; ++v) {
                const long long dv = wp - v;
                if (dv < 0 || dv % sw != 0 || dv / sw >= Wo) continue;
                const long long oj = dv / sw;
                sum += cols[((c * kh + u) * kw + v) * npix + (n * Ho + oi) * Wo + oj];
            }
        }
        x[i] = sum;
    }
}
"""

LRN_FORWARD_SOURCE = r"""
// Local response normalization, forward: one thread per element (n, c, p) of a (N, C, S).
//   s_c = k + (alpha/size) * sum_{c' = c - before}^{c + after} a_c'^2   (c' clipped to [0, C))
//   b_c = a_c * s_c^(-beta)
// with before = size/2, after = (size-1)/2. The sum is taken in _window_sum's order: c itself,
// then c+1 .. c+after, then c-1 .. c-before.
extern "C" __global__ void minicnn_lrn_forward(
    const T* __restrict__ a,  // (N, C, S)
    T* __restrict__ b,        // (N, C, S) the output
    T* __restrict__ s,        // (N, C, S) k + alpha/size * window sum: saved for backward
    long long N, long long C, long long S, long long before, long long after,
    T alpha_over_size, T beta, T k)
{
    const long long total = N * C * S;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / S) % C;
        T sum = a[i] * a[i];
        for (long long d = 1; d <= after && c + d < C; ++d) sum += a[i + d * S] * a[i + d * S];
        for (long long d = 1; d <= before && c - d >= 0; ++d) sum += a[i - d * S] * a[i - d * S];
        const T s_c = sum * alpha_over_size + k;
        s[i] = s_c;
        b[i] = a[i] * pow(s_c, -beta);
    }
}
"""

LRN_BACKWARD_SOURCE = r"""
// Local response normalization, backward: one thread per element (n, c, p) of a (N, C, S).
//   t_c' = g_c' * a_c' * s_c'^(-beta) / s_c'            (= g_c' b_c' / s_c')
//   da_c = g_c * s_c^(-beta) - (2 alpha beta / size) * a_c * sum_{c' = c - before}^{c + after} t_c'
// over the MIRRORED window: before = (size-1)/2, after = size/2 (the c' whose window holds c).
// t is recomputed for each window entry (size+1 pow calls per element) rather than stored.
extern "C" __global__ void minicnn_lrn_backward(
    const T* __restrict__ a,   // (N, C, S) the forward's input
    const T* __restrict__ s,   // (N, C, S) the forward's s
    const T* __restrict__ g,   // (N, C, S) dL/db
    T* __restrict__ da,        // (N, C, S) dL/da
    long long N, long long C, long long S, long long before, long long after,
    T neg_two_alpha_beta_over_size, T beta)
{
    const long long total = N * C * S;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / S) % C;
        T sum = g[i] * a[i] * pow(s[i], -beta) / s[i];
        for (long long d = 1; d <= after && c + d < C; ++d) {
            const long long j = i + d * S;
            sum += g[j] * a[j] * pow(s[j], -beta) / s[j];
        }
        for (long long d = 1; d <= before && c - d >= 0; ++d) {
            const long long j = i - d * S;
            sum += g[j] * a[j] * pow(s[j], -beta) / s[j];
        }
        da[i] = sum * a[i] * neg_two_alpha_beta_over_size + g[i] * pow(s[i], -beta);
    }
}
"""

BN_SUMS_SOURCE = r"""
// Batch norm's per-channel sums: one block per channel c of an (N, C, S) array, m = N*S values.
//   centered == 0:  sum1[c] = sum_i a_i / m,  sum2[c] = sum_i a_i^2 / m - sum1[c]^2
//                   (the mean and the biased variance of a = x: the forward's statistics)
//   centered == 1:  sum1[c] = sum_i a_i,      sum2[c] = inv_std[c] * sum_i a_i (b_i - mean[c])
//                   (sum g and sum g*xhat for a = g, b = x: what backward needs)
// Each thread adds a strided share of the channel in double precision, then the block adds the
// shares in a tree (blockDim.x must be a power of two). One pass over the data, two results.
extern "C" __global__ void minicnn_bn_sums(
    const T* __restrict__ a, const T* __restrict__ b,   // (N, C, S); b unused when centered == 0
    const T* __restrict__ mean, const T* __restrict__ inv_std,  // (C,), used when centered == 1
    T* __restrict__ sum1, T* __restrict__ sum2,          // (C,) the results
    long long N, long long C, long long S, long long centered)
{
    __shared__ double part1[256];
    __shared__ double part2[256];
    const long long m = N * S;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const double center = centered ? (double)mean[c] : 0.0;
        double s1 = 0.0, s2 = 0.0;
        for (long long j = threadIdx.x; j < m; j += blockDim.x) {
            const long long i = ((j / S) * C + c) * S + j % S;
            const double v = a[i];
            s1 += v;
            s2 += centered ? v * ((double)b[i] - center) : v * v;
        }
        part1[threadIdx.x] = s1;
        part2[threadIdx.x] = s2;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) {
                part1[threadIdx.x] += part1[threadIdx.x + half];
                part2[threadIdx.x] += part2[threadIdx.x + half];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            if (centered) {
                sum1[c] = (T)part1[0];
                sum2[c] = (T)(part2[0] * (double)inv_std[c]);
            } else {
                const double mu = part1[0] / (double)m;
                const double var = part2[0] / (double)m - mu * mu;
                sum1[c] = (T)mu;
                sum2[c] = (T)(var > 0.0 ? var : 0.0);
            }
        }
        __syncthreads();
    }
}
"""

BN_FORWARD_SOURCE = r"""
// Batch norm, normalise: one thread per element (n, c, p) of an (N, C, S) array.
//   y = (x - mean[c]) * scale[c] + shift[c],   scale = gamma / sigma, shift = beta
extern "C" __global__ void minicnn_bn_forward(
    const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ scale,
    const T* __restrict__ shift, T* __restrict__ y, long long total, long long C, long long S)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / S) % C;
        y[i] = (x[i] - mean[c]) * scale[c] + shift[c];
    }
}
"""

BN_BACKWARD_SOURCE = r"""
// Batch norm, input gradient: one thread per element (n, c, p) of an (N, C, S) array.
//   training (batch statistics):  dx = scale[c] * (g - (sum_g[c] + xhat * sum_gxhat[c]) / m)
//   evaluation (constants):       dx = scale[c] * g
// with xhat = (x - mean[c]) * inv_std[c] and scale = gamma / sigma.
extern "C" __global__ void minicnn_bn_backward(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ mean,
    const T* __restrict__ inv_std, const T* __restrict__ scale, const T* __restrict__ sum_g,
    const T* __restrict__ sum_gxhat, T* __restrict__ dx,
    long long total, long long C, long long S, long long m, long long training)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / S) % C;
        if (training) {
            const T xhat = (x[i] - mean[c]) * inv_std[c];
            dx[i] = scale[c] * (g[i] - (sum_g[c] + xhat * sum_gxhat[c]) / (T)m);
        } else {
            dx[i] = scale[c] * g[i];
        }
    }
}
"""

SOURCES = {
    "minicnn_col2im": COL2IM_SOURCE,
    "minicnn_bn_sums": BN_SUMS_SOURCE,
    "minicnn_bn_forward": BN_FORWARD_SOURCE,
    "minicnn_bn_backward": BN_BACKWARD_SOURCE,
    "minicnn_lrn_forward": LRN_FORWARD_SOURCE,
    "minicnn_lrn_backward": LRN_BACKWARD_SOURCE,
}
"""Kernel name -> CUDA source over the float type ``T``."""

_C_TYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}


def _source(name, dtype):
    """The complete source of kernel ``name`` for ``dtype``: ``typedef <float|double> T;`` + body."""
    dtype = numpy.dtype(dtype)
    if dtype not in _C_TYPES:
        raise TypeError(f"{name}: only float32 and float64 are supported, got {dtype}")
    return f"typedef {_C_TYPES[dtype]} T;\n" + SOURCES[name]


# ------------------------------------------------------------------------------------------------
# Compiling and launching
# ------------------------------------------------------------------------------------------------
_kernels = {}  # (kernel name, dtype) -> cupy.RawKernel, filled on first use

BLOCK = 256
"""Threads per block."""
MAX_BLOCKS = 65535
"""Most blocks a launch uses; the grid-stride loop covers the rest."""


def _kernel(cupy, name, dtype):
    """The compiled kernel ``name`` for ``dtype`` (built by CuPy on first use, then cached)."""
    key = (name, numpy.dtype(dtype))
    kernel = _kernels.get(key)
    if kernel is None:
        kernel = _kernels[key] = cupy.RawKernel(_source(name, dtype), name)
    return kernel


def _launch(cupy, name, dtype, total, args):
    """Run kernel ``name`` over ``total`` elements: blocks of ``BLOCK`` threads, a capped grid."""
    if total == 0:
        return
    kernel = _kernel(cupy, name, dtype)
    blocks = min(-(-total // BLOCK), MAX_BLOCKS)
    kernel((blocks,), (BLOCK,), args)


def _ints(*values):
    """Python ints as the kernels' ``long long`` arguments (CuPy needs typed scalars)."""
    return tuple(numpy.int64(v) for v in values)


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


def bn_statistics_cuda(cupy, x):
    """Per-channel mean and biased variance of an (N, C, *) CuPy array: ``(mean, var)``, each (C,),
    in one pass (``minicnn_bn_sums``, sums in double precision)."""
    dtype = _float_dtype("bn_statistics_cuda", x)
    x = cupy.ascontiguousarray(x)
    n, c, s_len = _channels(x)
    mean, var = cupy.empty(c, dtype=dtype), cupy.empty(c, dtype=dtype)
    _launch(cupy, "minicnn_bn_sums", dtype, c * BLOCK, (x, x, x, x, mean, var) + _ints(n, c, s_len, 0))
    return mean, var


def bn_gradient_sums_cuda(cupy, g, x, mean, inv_std):
    """``(sum g, sum g * xhat)`` per channel, xhat = (x - mean) * inv_std, in one pass."""
    dtype = _float_dtype("bn_gradient_sums_cuda", g, x, mean, inv_std)
    g, x = cupy.ascontiguousarray(g), cupy.ascontiguousarray(x)
    n, c, s_len = _channels(x)
    sum_g, sum_gxhat = cupy.empty(c, dtype=dtype), cupy.empty(c, dtype=dtype)
    _launch(cupy, "minicnn_bn_sums", dtype, c * BLOCK,
            (g, x, cupy.ascontiguousarray(mean), cupy.ascontiguousarray(inv_std), sum_g, sum_gxhat)
            + _ints(n, c, s_len, 1))
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
    """Batch norm's dx in one pass (see ``BN_BACKWARD_SOURCE``); ``m`` = values per channel."""
    dtype = _float_dtype("bn_backward_cuda", g, x, mean, inv_std, scale, sum_g, sum_gxhat)
    g, x = cupy.ascontiguousarray(g), cupy.ascontiguousarray(x)
    n, c, s_len = _channels(x)
    dx = cupy.empty_like(x)
    _launch(cupy, "minicnn_bn_backward", dtype, x.size,
            (g, x, mean, inv_std, scale, sum_g, sum_gxhat, dx)
            + _ints(x.size, c, s_len, n * s_len, 1 if training else 0))
    return dx
