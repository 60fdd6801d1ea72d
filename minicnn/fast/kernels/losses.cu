// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Cross-entropy of logits and class indices, forward (softmax, row losses, their mean) and backward.

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
