// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Max and average pooling, forward and backward.
#include "windows.cuh"

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
