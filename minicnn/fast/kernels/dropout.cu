// CUDA kernels of minicnn (minicnn/fast/cuda_kernels.py loads this file by name). Compiled for a float
// type T and an index type I, which the loader defines first: typedef float|double T; typedef int|long long I;
// Dropout: the mask a hash of (seed, index), forward and backward in one kernel.

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
