r"""Hand-written CUDA kernels for the ops whose whole-array (NumPy-style) code is slow on a GPU.

Why these kernels exist
-----------------------
The array code in ``conv.py`` and ``normalization.py`` runs unchanged on CuPy, but it is written
as a sequence of whole-array operations, and on a GPU each one is a kernel launch that reads and
writes all of its operands in global memory. The first two kernels show why:

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
  same order as ``normalization._window_sum`` (so float64 results match the CPU's to rounding),
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
Each source is a plain ``extern "C" __global__`` function written over a float type ``T`` and an
integer type ``I`` for its sizes and indices. ``_source(name, dtype, index)`` prepends
``typedef float T;`` or ``typedef double T;`` and ``typedef int I;`` or ``typedef long long I;``;
CuPy compiles the result with NVRTC. ``_launch`` picks ``I`` per launch (``index_type``): ``int``
whenever every index fits in 31 bits, as almost always. On a GPU a 64-bit division or modulo is a
software routine of several dozen instructions, a 32-bit one a few; a kernel that decodes
``(n, c, h, w)`` from ``i`` does several per element, so this alone can decide its speed.
The tests (``tests/fast/test_cuda_kernel_sources.py``, through ``cuda_on_cpu``) compile the same
text as ordinary C++ on the CPU, with a few lines that define ``__global__`` away and fix
``blockIdx = threadIdx = 0``, ``blockDim = gridDim = 1``: the grid-stride loop then visits every
``i`` in turn, and the kernels are checked against the NumPy code on machines without a GPU.
``tests/fast/test_cuda_kernels_in_blocks.py`` also runs them as blocks of 256 threads taking
turns between barriers (``cuda_on_cpu.BLOCKS_SHIM``), which the block sums need.

Compiled on first use
---------------------
The wrappers take the ``cupy`` module as their first argument and build a kernel the first time
it is needed (once per dtype and index type, cached in ``_kernels``). This module never imports
CuPy: importing minicnn must work on machines without it.
"""
import collections
import math

import numpy  # host side only: the typed scalar arguments of the kernel launches

# ------------------------------------------------------------------------------------------------
# Kernel sources (T is the float type; see _source)
# ------------------------------------------------------------------------------------------------
WINDOWS_SOURCE = r"""
// The windows that hold a pixel, along one axis: the pixel at padded position hp (= h + ph) lies
// in window i (rows i*s .. i*s + k - 1 of the padded input) exactly when
//   i from max(0, ceil((hp - k + 1) / s))  to  min(O - 1, floor(hp / s)),
// and then at offset u = hp - i*s. Two divisions per pixel, none per window.
__device__ void minicnn_windows(I hp, I k, I s, I O, I* first, I* last)
{
    *first = hp - k + 1 > 0 ? (hp - k + 1 + s - 1) / s : 0;
    *last = hp / s < O - 1 ? hp / s : O - 1;
}
"""

COL2IM_SOURCE = WINDOWS_SOURCE + r"""
// col2im, gather form: one thread per input pixel (n, c, h, w).
//   x[n, c, h, w] = sum over (u, v) of cols[(c, u, v), (n, i, j)]
//   for every window (i, j) whose offset (u, v) lands on the pixel:
//   i*sh - ph + u = h  and  j*sw - pw + v = w,  0 <= i < Ho,  0 <= j < Wo.
// The windows are walked from the last to the first, so that u and v grow: the sum is taken in
// the order of conv.col2im's loop over (u, v).
extern "C" __global__ void minicnn_col2im(
    const T* __restrict__ cols,  // (C*kh*kw, N*Ho*Wo): rows (c, u, v), columns (n, i, j)
    T* __restrict__ x,           // (N, C, H, W), written in full
    I N, I C, I H, I W,
    I kh, I kw, I sh, I sw, I ph, I pw,
    I Ho, I Wo)
{
    const I total = N * C * H * W;
    const I npix = N * Ho * Wo;  // the length of a row of cols
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
        const I hp = h + ph, wp = w + pw;  // the pixel in the padded input
        I i0, i1, j0, j1;
        minicnn_windows(hp, kh, sh, Ho, &i0, &i1);
        minicnn_windows(wp, kw, sw, Wo, &j0, &j1);
        T sum = 0;
        for (I oi = i1; oi >= i0; --oi) {
            const I u = hp - oi * sh;
            for (I oj = j1; oj >= j0; --oj) {
                const I v = wp - oj * sw;
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
    I N, I C, I S, I before, I after,
    T alpha_over_size, T beta, T k)
{
    const I total = N * C * S;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I c = (i / S) % C;
        T sum = a[i] * a[i];
        for (I d = 1; d <= after && c + d < C; ++d) sum += a[i + d * S] * a[i + d * S];
        for (I d = 1; d <= before && c - d >= 0; ++d) sum += a[i - d * S] * a[i - d * S];
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
    I N, I C, I S, I before, I after,
    T neg_two_alpha_beta_over_size, T beta)
{
    const I total = N * C * S;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I c = (i / S) % C;
        T sum = g[i] * a[i] * pow(s[i], -beta) / s[i];
        for (I d = 1; d <= after && c + d < C; ++d) {
            const I j = i + d * S;
            sum += g[j] * a[j] * pow(s[j], -beta) / s[j];
        }
        for (I d = 1; d <= before && c - d >= 0; ++d) {
            const I j = i - d * S;
            sum += g[j] * a[j] * pow(s[j], -beta) / s[j];
        }
        da[i] = sum * a[i] * neg_two_alpha_beta_over_size + g[i] * pow(s[i], -beta);
    }
}
"""

IM2COL_SOURCE = r"""
// im2col, gather form: cols (C*kh*kw, N*Ho*Wo) has rows (c, u, v) and columns (n, i, j):
//   cols[(c, u, v), (n, i, j)] = x[n, c, i*sh - ph + u, j*sw - pw + v], or 0 in the padding.
// One thread per (c, column) writes the kh*kw entries of its window (its position decoded once,
// not once per entry); neighbouring threads write neighbouring columns of a row (coalesced).
// The padding is never materialised (no padded copy of x).
extern "C" __global__ void minicnn_im2col(
    const T* __restrict__ x,   // (N, C, H, W)
    T* __restrict__ cols,      // (C*kh*kw, N*Ho*Wo), written in full
    I N, I C, I H, I W,
    I kh, I kw, I sh, I sw, I ph, I pw,
    I Ho, I Wo)
{
    const I npix = N * Ho * Wo;
    const I total = C * npix;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I col = i % npix, c = i / npix;
        const I oj = col % Wo, oi = (col / Wo) % Ho, n = col / (Wo * Ho);
        const T* plane = x + (n * C + c) * H * W;
        T* out = cols + c * kh * kw * npix + col;  // row (c, 0, 0) of this column
        for (I u = 0; u < kh; ++u) {
            const I h = oi * sh - ph + u;
            for (I v = 0; v < kw; ++v) {
                const I w = oj * sw - pw + v;
                out[(u * kw + v) * npix] = (h >= 0 && h < H && w >= 0 && w < W) ? plane[h * W + w] : (T)0;
            }
        }
    }
}
"""

MAX_POOL_FORWARD_SOURCE = r"""
// Max pooling forward: one thread per output element (plane, i, j) of (N*C, Ho, Wo).
//   y = the max over the window's pixels inside the image (padding never wins);
//   argmax = h*W + w of the first maximum in row-major window order (a NaN wins, as NumPy's argmax).
// A window always holds at least one pixel of the image (padding is at most half the kernel).
extern "C" __global__ void minicnn_max_pool_forward(
    const T* __restrict__ x,         // (N*C, H, W)
    T* __restrict__ y,               // (N*C, Ho, Wo)
    long long* __restrict__ argmax,  // (N*C, Ho, Wo): index in the plane, for backward
    I planes, I H, I W, I Ho, I Wo,
    I kh, I kw, I sh, I sw, I ph, I pw)
{
    const I total = planes * Ho * Wo;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I oj = i % Wo, oi = (i / Wo) % Ho, plane = i / (Wo * Ho);
        const T* xp = x + plane * H * W;
        T best = 0;
        I arg = -1;
        for (I u = 0; u < kh; ++u) {
            const I h = oi * sh - ph + u;
            if (h < 0 || h >= H) continue;
            for (I v = 0; v < kw; ++v) {
                const I w = oj * sw - pw + v;
                if (w < 0 || w >= W) continue;
                const T value = xp[h * W + w];
                if (arg < 0 || value > best || (value != value && best == best)) {
                    best = value;
                    arg = h * W + w;
                }
            }
        }
        y[i] = best;
        argmax[i] = arg;
    }
}
"""

MAX_POOL_BACKWARD_SOURCE = WINDOWS_SOURCE + r"""
// Max pooling backward, gather form: one thread per input pixel (plane, h, w). It adds the
// gradient of every window (i, j) that contains the pixel (minicnn_windows finds them) and
// whose argmax is this pixel.
// Each pixel is written once: no atomics, and the same sum order every run.
extern "C" __global__ void minicnn_max_pool_backward(
    const T* __restrict__ g,               // (N*C, Ho, Wo)
    const long long* __restrict__ argmax,  // (N*C, Ho, Wo)
    T* __restrict__ dx,                    // (N*C, H, W), written in full
    I planes, I H, I W, I Ho, I Wo,
    I kh, I kw, I sh, I sw, I ph, I pw)
{
    const I total = planes * H * W;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I w = i % W, h = (i / W) % H, plane = i / (W * H);
        const I here = h * W + w;
        const I hp = h + ph, wp = w + pw;
        I i0, i1, j0, j1;
        minicnn_windows(hp, kh, sh, Ho, &i0, &i1);
        minicnn_windows(wp, kw, sw, Wo, &j0, &j1);
        T sum = 0;
        for (I oi = i0; oi <= i1; ++oi)
            for (I oj = j0; oj <= j1; ++oj) {
                const I o = (plane * Ho + oi) * Wo + oj;
                if (argmax[o] == here) sum += g[o];
            }
        dx[i] = sum;
    }
}
"""

AVG_POOL_FORWARD_SOURCE = r"""
// Average pooling forward (padding counted in the divisor, PyTorch's default): one thread per
// output (plane, i, j). The window rows r0 = i*sh - ph .. r0 + kh - 1 are clipped to the padded
// border [-ph, H + ph) for the divisor d, and to the image [0, H) for the sum (padding adds 0).
extern "C" __global__ void minicnn_avg_pool_forward(
    const T* __restrict__ x, T* __restrict__ y,
    I planes, I H, I W, I Ho, I Wo,
    I kh, I kw, I sh, I sw, I ph, I pw)
{
    const I total = planes * Ho * Wo;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I oj = i % Wo, oi = (i / Wo) % Ho, plane = i / (Wo * Ho);
        const I r0 = oi * sh - ph, q0 = oj * sw - pw;
        const I r1 = r0 + kh < H + ph ? r0 + kh : H + ph, q1 = q0 + kw < W + pw ? q0 + kw : W + pw;
        const T* xp = x + plane * H * W;
        T sum = 0;
        for (I h = r0 > 0 ? r0 : 0; h < (r1 < H ? r1 : H); ++h)
            for (I w = q0 > 0 ? q0 : 0; w < (q1 < W ? q1 : W); ++w)
                sum += xp[h * W + w];
        y[i] = sum / (T)((r1 - r0) * (q1 - q0));
    }
}
"""

AVG_POOL_BACKWARD_SOURCE = WINDOWS_SOURCE + r"""
// Average pooling backward, gather form: one thread per input pixel (plane, h, w) adds g / d of
// every window (i, j) that contains it (the windows are found as in max pooling's backward).
extern "C" __global__ void minicnn_avg_pool_backward(
    const T* __restrict__ g, T* __restrict__ dx,
    I planes, I H, I W, I Ho, I Wo,
    I kh, I kw, I sh, I sw, I ph, I pw)
{
    const I total = planes * H * W;
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I w = i % W, h = (i / W) % H, plane = i / (W * H);
        const I hp = h + ph, wp = w + pw;
        I i0, i1, j0, j1;
        minicnn_windows(hp, kh, sh, Ho, &i0, &i1);
        minicnn_windows(wp, kw, sw, Wo, &j0, &j1);
        T sum = 0;
        for (I oi = i0; oi <= i1; ++oi) {
            const I r0 = oi * sh - ph, r1 = r0 + kh < H + ph ? r0 + kh : H + ph;
            for (I oj = j0; oj <= j1; ++oj) {
                const I q0 = oj * sw - pw, q1 = q0 + kw < W + pw ? q0 + kw : W + pw;
                sum += g[(plane * Ho + oi) * Wo + oj] / (T)((r1 - r0) * (q1 - q0));
            }
        }
        dx[i] = sum;
    }
}
"""

PARAMETER_TABLE_SOURCE = r"""
// The optimizers' kernels update many parameters in one launch. The parameters are laid end to
// end in one virtual range of `total` elements: parameter k owns [offsets[k], offsets[k+1]).
// `table` holds offsets[0..count], then one column of `count` addresses per array kind
// (parameters, gradients, buffers ...). Element i belongs to the parameter found here, by
// binary search over the offsets (a few reads of a small, cached table).
__device__ I minicnn_find_parameter(const long long* offsets, I count, I i)
{
    I lo = 0, hi = count;              // offsets[lo] <= i < offsets[hi]
    while (hi - lo > 1) {
        const I mid = (lo + hi) / 2;
        if (offsets[mid] <= i) lo = mid; else hi = mid;
    }
    return lo;
}
"""

SGD_STEP_SOURCE = PARAMETER_TABLE_SOURCE + r"""
// One SGD step of MANY parameters in one launch (PyTorch's rule, minicnn/optim/sgd.py):
//   d = g + weight_decay * p
//   buf = first ? d : momentum * buf + (1 - dampening) * d        (when momentum != 0)
//   d = nesterov ? d + momentum * buf : buf                         (when momentum != 0)
//   p = p - lr * d
// Table columns: parameters, gradients, momentum buffers. About six whole-array operations per
// parameter become one launch in all.
extern "C" __global__ void minicnn_sgd_step(
    const long long* __restrict__ table, I count, I total,
    T lr, T momentum, T dampening, T weight_decay, I nesterov, I first)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I k = minicnn_find_parameter(table, count, i);
        T* p = (T*)table[count + 1 + k];
        const T* g = (const T*)table[2 * count + 1 + k];
        T* buf = (T*)table[3 * count + 1 + k];
        const I j = i - table[k];
        T d = g[j] + weight_decay * p[j];
        if (momentum != (T)0) {
            const T b = first ? d : momentum * buf[j] + ((T)1 - dampening) * d;
            buf[j] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[j] = p[j] - lr * d;
    }
}
"""

ADAM_STEP_SOURCE = PARAMETER_TABLE_SOURCE + r"""
// One Adam / AdamW step of MANY parameters in one launch (minicnn/optim/adam.py, PyTorch's order
// of operations), all at the same step t. The scalars come computed in double on the host, as
// the reference computes them: c1 = 1 - beta1, c2 = 1 - beta2, decay = 1 - lr * weight_decay,
// step = lr / (1 - beta1^t), bias2_sqrt = sqrt(1 - beta2^t).
//   AdamW: p = p * decay;   Adam: g = g + weight_decay * p
//   m = m + c1 (g - m);   v = beta2 v + c2 g^2;   (amsgrad: vmax = max(vmax, v))
//   p = p - step * m / (sqrt(v or vmax) / bias2_sqrt + eps)
// Table columns: parameters, gradients, m, v, vmax (any address when amsgrad is 0). About
// thirteen whole-array operations per parameter become one launch in all.
extern "C" __global__ void minicnn_adam_step(
    const long long* __restrict__ table, I count, I total,
    T c1, T beta2, T c2, T eps, T weight_decay, T decay, T step, T bias2_sqrt,
    I decoupled, I amsgrad)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I k = minicnn_find_parameter(table, count, i);
        T* p = (T*)table[count + 1 + k];
        const T* grad = (const T*)table[2 * count + 1 + k];
        T* m = (T*)table[3 * count + 1 + k];
        T* v = (T*)table[4 * count + 1 + k];
        T* vmax = (T*)table[5 * count + 1 + k];
        const I j = i - table[k];
        T g = grad[j];
        if (weight_decay != (T)0) {
            if (decoupled) p[j] = p[j] * decay;
            else g = g + weight_decay * p[j];
        }
        m[j] = m[j] + c1 * (g - m[j]);
        v[j] = v[j] * beta2 + c2 * (g * g);
        T second = v[j];
        if (amsgrad) {
            vmax[j] = vmax[j] > second ? vmax[j] : second;
            second = vmax[j];
        }
        const T denom = sqrt(second) / bias2_sqrt + eps;
        p[j] = p[j] - step * (m[j] / denom);
    }
}
"""

BN_PARTIAL_SUMS_SOURCE = r"""
// Per-channel sums (batch norm's, and conv's bias gradient), first pass. The m = N*S values of
// channel c of an (N, C, S) array are cut into B chunks of `chunk` values; block (c, b) sums
// chunk b in double precision:
//   mode 0:  part1 = sum a,  part2 = sum a^2               (a = x: batch norm's statistics)
//   mode 1:  part1 = sum a,  part2 = sum a (b - mean[c])   (a = g, b = x: batch norm's backward)
//   mode 2:  part1 = sum a                                 (a = g: a bias's gradient)
// and writes them to part1[c*B + b], part2[c*B + b]; minicnn_bn_sums adds the B parts of each
// channel. Many blocks per channel keep every multiprocessor of the GPU busy: one block per
// channel (16 blocks for ResNet-20's first stage) would leave most of the GPU idle, and each of
// its threads would wait on hundreds of reads in turn. blockDim.x must be a power of two <= 256.
extern "C" __global__ void minicnn_bn_partial_sums(
    const T* __restrict__ a, const T* __restrict__ b,     // (N, C, S); b read in mode 1 only
    const T* __restrict__ mean,                           // (C,) read in mode 1 only
    double* __restrict__ part1, double* __restrict__ part2, // (C, B) the partial sums
    I N, I C, I S, I B, I chunk, I mode)
{
    __shared__ double shared1[256];
    __shared__ double shared2[256];
    const I m = N * S;
    for (I work = blockIdx.x; work < C * B; work += gridDim.x) {
        const I c = work / B, stop = (work % B + 1) * chunk < m ? (work % B + 1) * chunk : m;
        const double center = mode == 1 ? (double)mean[c] : 0.0;
        // value j of the channel is a[(n*C + c)*S + p] with n = j / S, p = j % S; the thread's
        // j grows by blockDim.x per step, and (n, p) with it, without a division per value
        I j = (work % B) * chunk + threadIdx.x, n = j / S, p = j % S;
        const I dn = blockDim.x / S, dp = blockDim.x % S;
        double s1 = 0.0, s2 = 0.0;
        for (; j < stop; j += blockDim.x) {
            const I i = (n * C + c) * S + p;
            const double v = a[i];
            s1 += v;
            s2 += mode == 0 ? v * v : mode == 1 ? v * ((double)b[i] - center) : 0.0;
            n += dn;
            p += dp;
            if (p >= S) { p -= S; ++n; }
        }
        shared1[threadIdx.x] = s1;
        shared2[threadIdx.x] = s2;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {  // the block's tree sum
            if (threadIdx.x < half) {
                shared1[threadIdx.x] += shared1[threadIdx.x + half];
                shared2[threadIdx.x] += shared2[threadIdx.x + half];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            part1[work] = shared1[0];
            part2[work] = shared2[0];
        }
        __syncthreads();
    }
}
"""

BN_SUMS_SOURCE = r"""
// Per-channel sums, second pass: one block per channel c adds the B partial sums of
// minicnn_bn_partial_sums (a strided share per thread, then the block's tree: the same order,
// and so the same result, every run), and its thread 0 finishes:
//   mode 0:  sum1[c] = mean = part1 / m,  sum2[c] = var = part2 / m - mean^2 (biased),
//            then the channel's constants and running estimates (minicnn_bn_channel)
//   mode 1:  sum1[c] = sum g,  sum2[c] = inv_std[c] * part2 = sum g * xhat
//   mode 2:  sum1[c] = sum g   (sum2 and inv_std untouched)
extern "C" __global__ void minicnn_bn_sums(
    const double* __restrict__ part1, const double* __restrict__ part2,  // (C, B)
    T* __restrict__ inv_std,                                  // (C,): written in mode 0, read in 1
    T* __restrict__ sum1, T* __restrict__ sum2,              // (C,) the results
    I C, I B, I m, I mode,
    const T* __restrict__ gamma, const T* __restrict__ beta,      // the constants (mode 0)
    T* __restrict__ running_mean, T* __restrict__ running_var, T* __restrict__ scale,
    T* __restrict__ shift, I has_gamma, I has_beta, I update_running, T eps, T momentum)
{
    __shared__ double shared1[256];
    __shared__ double shared2[256];
    for (I c = blockIdx.x; c < C; c += gridDim.x) {
        double s1 = 0.0, s2 = 0.0;
        for (I b = threadIdx.x; b < B; b += blockDim.x) {
            s1 += part1[c * B + b];
            s2 += part2[c * B + b];
        }
        shared1[threadIdx.x] = s1;
        shared2[threadIdx.x] = s2;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) {
                shared1[threadIdx.x] += shared1[threadIdx.x + half];
                shared2[threadIdx.x] += shared2[threadIdx.x + half];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            if (mode == 2) {
                sum1[c] = (T)shared1[0];
            } else if (mode == 1) {
                sum1[c] = (T)shared1[0];
                sum2[c] = (T)(shared2[0] * (double)inv_std[c]);
            } else {
                const double mu = shared1[0] / (double)m;
                const double var = shared2[0] / (double)m - mu * mu;
                sum1[c] = (T)mu;
                sum2[c] = (T)(var > 0.0 ? var : 0.0);
                minicnn_bn_channel(c, sum1[c], sum2[c], gamma, beta, running_mean, running_var, inv_std,
                                   scale, shift, m, has_gamma, has_beta, update_running, eps, momentum);
            }
        }
        __syncthreads();
    }
}
"""

BN_CHANNEL_SOURCE = r"""
// Batch norm, the per-channel constants of channel c from its statistics (mean, var):
//   inv_std = 1 / sqrt(var + eps),  scale = gamma * inv_std (or inv_std),  shift = beta (or 0)
//   when update_running: running_mean = (1 - momentum) running_mean + momentum mean
//                        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1)
__device__ void minicnn_bn_channel(
    I c, T mean, T var, const T* gamma, const T* beta, T* running_mean, T* running_var,
    T* inv_std, T* scale, T* shift, I m, I has_gamma, I has_beta,
    I update_running, T eps, T momentum)
{
    const T inv = (T)1 / sqrt(var + eps);
    inv_std[c] = inv;
    scale[c] = has_gamma ? gamma[c] * inv : inv;
    shift[c] = has_beta ? beta[c] : (T)0;
    if (update_running) {
        running_mean[c] = ((T)1 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = ((T)1 - momentum) * running_var[c] + momentum * var * (T)m / (T)(m - 1);
    }
}
"""

BN_FINALIZE_SOURCE = BN_CHANNEL_SOURCE + r"""
// The constants of every channel from given statistics (evaluation: the running estimates), one
// thread per channel. (In training, minicnn_bn_sums computes them with the statistics.)
extern "C" __global__ void minicnn_bn_finalize(
    const T* __restrict__ mean, const T* __restrict__ var,
    const T* __restrict__ gamma, const T* __restrict__ beta,      // read when has_gamma / has_beta
    T* __restrict__ running_mean, T* __restrict__ running_var,    // written when update_running
    T* __restrict__ inv_std, T* __restrict__ scale, T* __restrict__ shift,
    I C, I m, I has_gamma, I has_beta, I update_running,
    T eps, T momentum)
{
    for (I c = (I)(blockIdx.x * blockDim.x + threadIdx.x); c < C;
         c += (I)(blockDim.x * gridDim.x)) {
        minicnn_bn_channel(c, mean[c], var[c], gamma, beta, running_mean, running_var, inv_std, scale,
                           shift, m, has_gamma, has_beta, update_running, eps, momentum);
    }
}
"""

BN_FORWARD_SOURCE = r"""
// Batch norm, normalise: one thread per element (n, c, p) of an (N, C, S) array.
//   y = (x - mean[c]) * scale[c] + shift[c],   scale = gamma / sigma, shift = beta
extern "C" __global__ void minicnn_bn_forward(
    const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ scale,
    const T* __restrict__ shift, T* __restrict__ y, I total, I C, I S)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I c = (i / S) % C;
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
    I total, I C, I S, I m, I training)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        const I c = (i / S) % C;
        if (training) {
            const T xhat = (x[i] - mean[c]) * inv_std[c];
            dx[i] = scale[c] * (g[i] - (sum_g[c] + xhat * sum_gxhat[c]) / (T)m);
        } else {
            dx[i] = scale[c] * g[i];
        }
    }
}
"""

RELU_BACKWARD_SOURCE = r"""
// ReLU's gradient from the forward's output y = max(x, 0): dx = g where y > 0 (that is, x > 0),
// else 0. One launch, where the whole-array code takes two (the mask, then the product).
extern "C" __global__ void minicnn_relu_backward(
    const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx, I total)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        dx[i] = y[i] > (T)0 ? g[i] : (T)0;
    }
}
"""

CROSS_ENTROPY_FORWARD_SOURCE = r"""
// Softmax cross-entropy of (N, C) logits z against labels t, one block per row n, its threads
// sharing the classes (a strided share each, then a tree over the block: blockDim.x must be a
// power of two <= 256):
//   m = max_j z[n, j],  p[n, j] = exp(z[n, j] - m) / s  with  s = sum_j exp(z[n, j] - m),
//   loss[n] = log(s) - (z[n, t[n]] - m)
// p is kept for backward. The labels were checked (0 <= t[n] < C) before the launch. (A thread
// per row would walk ImageNet's 1000 classes three times alone, a read at a time.)
extern "C" __global__ void minicnn_cross_entropy_forward(
    const T* __restrict__ z, const long long* __restrict__ t, T* __restrict__ p,
    T* __restrict__ loss, I n, I c)
{
    __shared__ T shared[256];
    for (I row = blockIdx.x; row < n; row += gridDim.x) {
        const T* zr = z + row * c;
        T* pr = p + row * c;
        T m = zr[0];
        for (I j = threadIdx.x; j < c; j += blockDim.x) m = zr[j] > m ? zr[j] : m;
        shared[threadIdx.x] = m;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {  // the block's maximum
            if (threadIdx.x < half && shared[threadIdx.x + half] > shared[threadIdx.x])
                shared[threadIdx.x] = shared[threadIdx.x + half];
            __syncthreads();
        }
        m = shared[0];
        __syncthreads();
        T s = 0;
        for (I j = threadIdx.x; j < c; j += blockDim.x) {
            pr[j] = exp(zr[j] - m);
            s += pr[j];
        }
        shared[threadIdx.x] = s;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {  // the block's sum
            if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
            __syncthreads();
        }
        s = shared[0];
        for (I j = threadIdx.x; j < c; j += blockDim.x) pr[j] = pr[j] / s;
        if (threadIdx.x == 0) loss[row] = log(s) - (zr[t[row]] - m);
        __syncthreads();  // shared is reused by the next row
    }
}
"""

CROSS_ENTROPY_BACKWARD_SOURCE = r"""
// dz[n, j] = (p[n, j] - [j == t[n]]) * (g / N), g the loss's (0-d) gradient, one thread per entry.
extern "C" __global__ void minicnn_cross_entropy_backward(
    const T* __restrict__ p, const long long* __restrict__ t, const T* __restrict__ g,
    T* __restrict__ dz, I n, I c)
{
    const T scale = g[0] * (T)(1.0 / (double)n);
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n * c;
         i += (I)(blockDim.x * gridDim.x)) {
        const T hit = (i % c) == t[i / c] ? (T)1 : (T)0;
        dz[i] = (p[i] - hit) * scale;
    }
}
"""

DROPOUT_SOURCE = r"""
// Inverted dropout with its mask drawn ON THE DEVICE, from a counter-based hash of (seed, i):
//   r_i = splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15) >> 11       (53 random bits)
//   forward  (g = x):  y  = r_i >= threshold ? x * scale : 0
//   backward (g = dy): dx = r_i >= threshold ? g * scale : 0
// with threshold = ceil(p * 2^53), so P(keep) = 1 - p (to 2^-53), and scale = 1 / (1 - p).
// Backward recomputes r_i from the same seed: no mask or draws are stored or copied, nothing
// is drawn on the host. The seed is one draw of the package's generator (mc.manual_seed repeats
// the masks). splitmix64 is the output function of Java's SplittableRandom (Steele et al., 2014).
extern "C" __global__ void minicnn_dropout(
    const T* __restrict__ g, T* __restrict__ out, I total,
    unsigned long long seed, unsigned long long threshold, T scale)
{
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < total;
         i += (I)(blockDim.x * gridDim.x)) {
        unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z = z ^ (z >> 31);
        out[i] = (z >> 11) >= threshold ? g[i] * scale : (T)0;
    }
}
"""

SOURCES = {
    "minicnn_col2im": COL2IM_SOURCE,
    "minicnn_sgd_step": SGD_STEP_SOURCE,
    "minicnn_adam_step": ADAM_STEP_SOURCE,
    "minicnn_im2col": IM2COL_SOURCE,
    "minicnn_max_pool_forward": MAX_POOL_FORWARD_SOURCE,
    "minicnn_max_pool_backward": MAX_POOL_BACKWARD_SOURCE,
    "minicnn_avg_pool_forward": AVG_POOL_FORWARD_SOURCE,
    "minicnn_avg_pool_backward": AVG_POOL_BACKWARD_SOURCE,
    "minicnn_bn_partial_sums": BN_PARTIAL_SUMS_SOURCE,
    "minicnn_bn_sums": BN_CHANNEL_SOURCE + BN_SUMS_SOURCE,
    "minicnn_bn_finalize": BN_FINALIZE_SOURCE,
    "minicnn_bn_forward": BN_FORWARD_SOURCE,
    "minicnn_bn_backward": BN_BACKWARD_SOURCE,
    "minicnn_lrn_forward": LRN_FORWARD_SOURCE,
    "minicnn_lrn_backward": LRN_BACKWARD_SOURCE,
    "minicnn_relu_backward": RELU_BACKWARD_SOURCE,
    "minicnn_dropout": DROPOUT_SOURCE,
    "minicnn_cross_entropy_forward": CROSS_ENTROPY_FORWARD_SOURCE,
    "minicnn_cross_entropy_backward": CROSS_ENTROPY_BACKWARD_SOURCE,
}
"""Kernel name -> CUDA source over the float type ``T``."""

_C_TYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
_INDEX_TYPES = {numpy.dtype(numpy.int32): "int", numpy.dtype(numpy.int64): "long long"}


def _source(name, dtype, index=numpy.int64):
    """The complete source of kernel ``name`` for ``dtype`` and the index type ``index``:
    ``typedef <float|double> T; typedef <int|long long> I;`` + body."""
    dtype, index = numpy.dtype(dtype), numpy.dtype(index)
    if dtype not in _C_TYPES:
        raise TypeError(f"{name}: only float32 and float64 are supported, got {dtype}")
    return f"typedef {_C_TYPES[dtype]} T;\ntypedef {_INDEX_TYPES[index]} I;\n" + SOURCES[name]


# ------------------------------------------------------------------------------------------------
# Compiling and launching
# ------------------------------------------------------------------------------------------------
_kernels = {}  # (kernel name, dtype, index dtype) -> cupy.RawKernel, filled on first use

BLOCK = 256
"""Threads per block."""
MAX_BLOCKS = 65535
"""Most blocks a launch uses; the grid-stride loop covers the rest."""
INT32_LIMIT = 2**31 - 1


def _kernel(cupy, name, dtype, index=numpy.int64):
    """The compiled kernel ``name`` for ``dtype`` and ``index`` (built by CuPy on first use, then cached)."""
    key = (name, numpy.dtype(dtype), numpy.dtype(index))
    kernel = _kernels.get(key)
    if kernel is None:
        kernel = _kernels[key] = cupy.RawKernel(_source(name, dtype, index), name)
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
    batch norm's gradient sums, 2 plain sums; see ``BN_PARTIAL_SUMS_SOURCE``): partial sums of
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
    """Batch norm's dx in one pass (see ``BN_BACKWARD_SOURCE``); ``m`` = values per channel."""
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
    forward with g = x, or its backward with g = dy and the same seed); see ``DROPOUT_SOURCE``."""
    dtype = _float_dtype("dropout_cuda", g)
    g = cupy.ascontiguousarray(g)
    out = cupy.empty_like(g)
    _launch(cupy, "minicnn_dropout", dtype, g.size,
            (g, out) + _ints(g.size) + (numpy.uint64(seed), dropout_threshold(p), dtype.type(scale)))
    return out