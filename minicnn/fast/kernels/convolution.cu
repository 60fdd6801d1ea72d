// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Convolution: im2col (the forward's columns) and col2im (the input gradient), both gathers.
#include "windows.cuh"

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
