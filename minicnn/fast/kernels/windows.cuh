// Shared by convolution.cu and pooling.cu (#include "windows.cuh": the loader in cuda_kernels.py
// inserts this file there, marked with #line so that compiler messages name this file).

// The windows that hold a pixel, along one axis: the pixel at padded position hp (= h + ph) lies
// in window i (rows i*s .. i*s + k - 1 of the padded input) exactly when
//   i from max(0, ceil((hp - k + 1) / s))  to  min(O - 1, floor(hp / s)),
// and then at offset u = hp - i*s. Two divisions per pixel, none per window.
__device__ void minicnn_windows(I hp, I k, I s, I O, I* first, I* last)
{
    *first = hp - k + 1 > 0 ? (hp - k + 1 + s - 1) / s : 0;
    *last = hp / s < O - 1 ? hp / s : O - 1;
}
