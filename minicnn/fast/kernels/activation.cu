// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// ReLU's backward from the saved output.

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
