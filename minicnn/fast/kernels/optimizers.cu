// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// The SGD and Adam/AdamW steps of many parameters in one launch each.

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
