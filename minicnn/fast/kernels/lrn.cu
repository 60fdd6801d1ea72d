// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Local response normalization, forward and backward.

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
