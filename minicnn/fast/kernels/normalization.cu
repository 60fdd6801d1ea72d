// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Batch norm: per-channel sums (also conv's bias gradient), constants and running estimates,
// normalisation, input gradient.

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
