"""Device paths: the ops on CuPy arrays (and on the stand-in device, which checks them in CI).

On a GPU every whole-array operation is a kernel launch that reads and writes global memory, so
what is slow there differs from the CPU: many small launches, not cache misses. These classes
compute what the references compute (tested equal), with

* ``DeviceConv2d``: the reference convolution with its GEMMs under the TF32 setting (one group:
  a 2-D GEMM); ``CudaConv2d`` overrides the reference's ``unfold`` (the columns in one kernel,
  padding included, no padded copy), ``fold`` (the gather kernel ``cuda_kernels.col2im_cuda``:
  one pass, no atomics, instead of kh*kw strided scatter-adds) and ``bias_grad``;
* ``DeviceAdaptiveAvgPool2d``: adaptive average pooling as two batched products with cached
  bin matrices (whole-array code, the stand-in's too), not a few operations per output bin;
* ``CudaMaxPool2d``: forward one thread per output (max and argmax), backward one thread per
  input pixel gathering the gradients of the windows it won (no atomics); ``CudaAvgPool2d`` the
  same for average pooling;
* ``CudaLocalResponseNorm``: forward and backward as one fused kernel each, instead of ``size``
  shifted slice-adds and a temporary per formula term;
* ``CudaReLU``: backward as one kernel from the saved output (no boolean mask);
* ``CudaDropout``: one kernel each way, the mask a hash of (seed, index) computed on the GPU;
* ``CudaCrossEntropy``: softmax, row losses and the gradient in two kernels;
* ``cuda_sgd_step``, ``cuda_adam_step``: the SGD (weight decay, momentum, Nesterov) or Adam/AdamW
  step of every parameter in one launch, instead of about six (SGD) or thirteen (Adam) per
  parameter;
* ``CudaBatchNorm``: the statistics in one pass (a block per channel, which then also computes
  its channel's constants and running estimates), the normalisation in one more; backward: the
  gradient sums and dx (four launches instead of about thirty whole-array operations).

The stand-in device of ``minicnn.testing`` registers ``DeviceConv2d`` and ``DeviceAdaptiveAvgPool2d``
for itself (whole-array code only); CUDA runs the kernel classes. Nothing here ever reaches the
CPU thread pool (``threads`` raises if a device array does).
"""
import numpy

from .. import backend, rng
from ..functional.activation import ReLU
from ..functional.batchnorm import BatchNorm
from ..functional.dropout import Dropout
from ..functional.conv import Conv2d
from ..functional.geometry import adaptive_output_size
from ..functional.loss import CrossEntropy
from ..functional.lrn import LocalResponseNorm
from ..functional.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from . import cuda_kernels, tf32
from .pooling_cpu import _bin_matrix
from .registry import register, register_function


class DeviceConv2d(Conv2d):
    """The reference convolution with its GEMMs (``matmul``) as CuPy runs them under the TF32
    setting for convolutions (``mc.backends.cudnn.allow_tf32``, ``tf32.tf32_for``).

    One group's product is a plain 2-D GEMM: CuPy multiplies 2-D arrays with one cuBLAS GEMM that
    honours the TF32 setting, while 3-D arrays, even a stack of one, go to its batched GEMM,
    which computes in full float32 whatever the setting."""

    def matmul(self, a, b, out=None):
        if a.shape[0] == 1:  # one group: the 2-D GEMM
            a, b, out = a[0], b[0], (None if out is None else out[0])
        with tf32.tf32_for("conv", a):  # where the convolutions' setting differs from matmul's
            return backend.get_array_module(a).matmul(a, b, out=out)


_BIN_MATRICES = {}  # (device, size, out, dtype) -> adaptive pooling's (out, size) bin matrix


def _bin_matrix_on(xp, like, size, out):
    """``pooling_cpu._bin_matrix`` built once on the host, then kept on ``like``'s device."""
    key = (backend.device_of(like), str(getattr(like, "device", "")), size, out, like.dtype.str)
    matrix = _BIN_MATRICES.get(key)
    if matrix is None:
        matrix = _BIN_MATRICES[key] = xp.asarray(_bin_matrix(numpy, size, out, like.dtype))
    return matrix


class DeviceAdaptiveAvgPool2d(AdaptiveAvgPool2d):
    """Adaptive average pooling as two batched products, y = A_h @ x @ A_w^T and dx = A_h^T @ g @
    A_w (``A``: the bin matrices, built once per size and device): four GEMMs a step instead of
    about four operations per output bin (VGG's 7x7 head: 196 launches). An output as large as
    the input is a copy; a (1, 1) output is a mean."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        h, w = x.shape[2:]
        oh, ow = adaptive_output_size(x.shape, self.output_size)
        self.x_shape, self.same = x.shape, (oh, ow) == (h, w)
        if self.same:
            return x.copy()
        if (oh, ow) == (1, 1):
            self.a_h = None
            return x.mean(axis=(2, 3), keepdims=True)
        self.a_h, self.a_w = _bin_matrix_on(xp, x, h, oh), _bin_matrix_on(xp, x, w, ow)
        return self.a_h @ x @ self.a_w.T

    def backward(self, g):
        xp = backend.get_array_module(g)
        if self.same:
            return g
        if self.a_h is None:
            return xp.broadcast_to(g * (1.0 / (self.x_shape[2] * self.x_shape[3])), self.x_shape).copy()
        return self.a_h.T @ g @ self.a_w


def _kernel_dtype(x):
    """The CUDA kernels take float32 and float64; other dtypes run the whole-array code."""
    return x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)


class CudaConv2d(DeviceConv2d):
    """``DeviceConv2d`` with im2col and col2im as one CUDA kernel each (no padded copy of x), and
    the bias gradient as batch norm's two-pass per-channel sums."""

    def unfold(self, x, kh, kw):
        if not _kernel_dtype(x):
            return super().unfold(x, kh, kw)
        xp = backend.get_array_module(x)
        return cuda_kernels.im2col_cuda(xp, x, kh, kw, self.stride, self.padding)

    def fold(self, dcols):
        if not _kernel_dtype(dcols):
            return super().fold(dcols)
        kh, kw = self.weight.shape[2:]
        xp = backend.get_array_module(dcols)
        return cuda_kernels.col2im_cuda(xp, dcols, self.x_shape, kh, kw, self.stride, self.padding)

    def bias_grad(self, gy):
        if not _kernel_dtype(gy):
            return super().bias_grad(gy)
        # all of the GPU, not a block per channel
        return cuda_kernels.channel_sums_cuda(backend.get_array_module(gy), gy)


class CudaMaxPool2d(MaxPool2d):
    """Max pooling as two CUDA kernels: forward (max and argmax per window) and backward (each
    pixel gathers the gradients of the windows whose maximum it is)."""

    def forward(self, x):
        if not _kernel_dtype(x):
            return super().forward(x)
        self.x_shape, self.fused = x.shape, True
        out_hw, _ = self.window_geometry(*x.shape[2:])
        y, self.argmax = cuda_kernels.max_pool_forward_cuda(backend.get_array_module(x), x, self.kernel,
                                                            self.stride, self.padding, out_hw)
        return y

    def backward(self, g):
        if not getattr(self, "fused", False):
            return super().backward(g)
        return cuda_kernels.max_pool_backward_cuda(backend.get_array_module(g), g, self.argmax, self.x_shape,
                                                   self.kernel, self.stride, self.padding)


class CudaAvgPool2d(AvgPool2d):
    """Average pooling as two CUDA kernels (window sums; each pixel gathers its windows' g / d)."""

    def forward(self, x):
        if not _kernel_dtype(x):
            return super().forward(x)
        self.x_shape, self.fused = x.shape, True
        out_hw, _ = self.window_geometry(*x.shape[2:])
        return cuda_kernels.avg_pool_forward_cuda(backend.get_array_module(x), x, self.kernel, self.stride,
                                                  self.padding, out_hw)

    def backward(self, g):
        if not getattr(self, "fused", False):
            return super().backward(g)
        return cuda_kernels.avg_pool_backward_cuda(backend.get_array_module(g), g, self.x_shape, self.kernel,
                                                   self.stride, self.padding)


class CudaLocalResponseNorm(LocalResponseNorm):
    """LRN forward and backward as one CUDA kernel each; saves ``a`` and ``s`` only."""

    def forward(self, a):
        if not _kernel_dtype(a):
            return super().forward(a)
        xp = backend.get_array_module(a)
        b, self.s = cuda_kernels.lrn_forward_cuda(xp, a, self.size, self.alpha, self.beta, self.k)
        self.a = a
        return b

    def backward(self, g):
        if not _kernel_dtype(g):
            return super().backward(g)
        xp = backend.get_array_module(g)
        return cuda_kernels.lrn_backward_cuda(xp, self.a, self.s, g, self.size, self.alpha, self.beta)


class CudaBatchNorm(BatchNorm):
    """Batch norm in four kernels (statistics with the per-channel constants, normalise; gradient
    sums, dx): the reference's formulas; saves x, the mean, 1/sigma and gamma/sigma (never xhat)."""

    def forward(self, x, weight, bias):
        given = [t for t in (weight, bias, self.running_mean, self.running_var) if t is not None]
        if (not _kernel_dtype(x) or any(t.dtype != x.dtype for t in given)
                or (self.training and x.size // x.shape[1] < 2)):
            return super().forward(x, weight, bias)  # other dtypes; the reference's clear errors
        xp = backend.get_array_module(x)
        self.m = m = x.size // x.shape[1]
        self.batch_stats = self.training or self.running_mean is None
        update = self.training and self.running_mean is not None
        running = (self.running_mean, self.running_var) if update else (None, None)
        if self.batch_stats:  # statistics and per-channel constants in one launch
            mean, _, self.inv_std, self.scale, shift = cuda_kernels.bn_statistics_cuda(
                xp, x, weight, bias, *running, self.eps, self.momentum)
        else:
            mean = self.running_mean
            self.inv_std, self.scale, shift = cuda_kernels.bn_finalize_cuda(
                xp, mean, self.running_var, weight, bias, *running, m, self.eps, self.momentum)
        # backward needs the running mean as it is now (a later training step changes it in place)
        keep = not self.batch_stats and any(self.needs_input_grad)
        self.x, self.mean, self.fused = x, (mean.copy() if keep else mean), True
        return cuda_kernels.bn_forward_cuda(xp, x, mean, self.scale, shift)

    def backward(self, g):
        if not getattr(self, "fused", False):
            return super().backward(g)
        xp = backend.get_array_module(g)
        sum_g, sum_gxhat = cuda_kernels.bn_gradient_sums_cuda(xp, g, self.x, self.mean, self.inv_std)
        dx = cuda_kernels.bn_backward_cuda(xp, g, self.x, self.mean, self.inv_std, self.scale, sum_g,
                                           sum_gxhat, self.batch_stats)
        return dx, sum_gxhat, sum_g


class CudaReLU(ReLU):
    """ReLU keeping its output (not a boolean mask) for backward, which is one kernel."""

    def forward(self, x):
        self.y = backend.get_array_module(x).maximum(x, 0)
        return self.y

    def backward(self, g):
        if not (_kernel_dtype(g) and g.dtype == self.y.dtype):
            return g * (self.y > 0)
        return cuda_kernels.relu_backward_cuda(backend.get_array_module(g), self.y, g)


class CudaDropout(Dropout):
    """Dropout with its mask drawn on the GPU from a hash of (seed, element index), one kernel
    each way (``kernels/dropout.cu``): nothing stored but the seed, nothing drawn on the
    host or copied to the device. The seed is one draw of the package's generator, so
    ``mc.manual_seed`` repeats the masks; they are not the CPU's masks for the same seed (as in
    PyTorch, whose CPU and GPU generators differ too)."""

    def forward(self, x):
        if self.p == 1.0 or not _kernel_dtype(x):
            return super().forward(x)
        self.scale, self.fused, self.dtype = 1.0 / (1.0 - self.p), True, x.dtype
        self.seed = rng.generator().integers(0, 2**64, dtype=numpy.uint64)
        return cuda_kernels.dropout_cuda(backend.get_array_module(x), x, self.seed, self.p, self.scale)

    def backward(self, g):
        if not getattr(self, "fused", False):
            return super().backward(g)
        return cuda_kernels.dropout_cuda(backend.get_array_module(g), g.astype(self.dtype, copy=False),
                                         self.seed, self.p, self.scale)


class CudaCrossEntropy(CrossEntropy):
    """Cross-entropy as two kernels and a mean (forward: softmax and row losses in one pass per
    row; backward: one pass), instead of about sixteen whole-array operations."""

    def forward(self, z):
        if not _kernel_dtype(z) or z.ndim != 2 or z.shape[0] == 0:
            return super().forward(z)
        loss, self.p = cuda_kernels.cross_entropy_forward_cuda(backend.get_array_module(z), z, self.t)
        self.fused = True
        return loss.mean()

    def backward(self, g):
        if not getattr(self, "fused", False) or g.dtype != self.p.dtype:
            return super().backward(g)
        return cuda_kernels.cross_entropy_backward_cuda(backend.get_array_module(g), self.p, self.t, g)


def _group_ready(optimizer, params):
    """Whether the optimizer kernels take the group: every parameter, its gradient and the state
    it has so far are C-contiguous arrays of the parameter's float dtype (state made on a first
    step copies the parameter). Checked before any state is touched."""
    def takes(p, a):
        return _kernel_dtype(a) and a.dtype == p.dtype and a.flags.c_contiguous

    return all(takes(p.data, a) for p in params
               for a in (p.data, p.grad.data, *(v for v in optimizer.state.get(p, {}).values()
                                           if backend.is_array(v))))


def cuda_sgd_step(optimizer, group, params):
    """SGD's step of a whole parameter group in one kernel (the reference: ``SGD.step``, one
    parameter at a time, with the same state)."""
    if not _group_ready(optimizer, params):
        return NotImplemented       # SGD.step then updates them one at a time
    buffers = [optimizer.momentum_buffer(p, group) for p in params]
    cuda_kernels.sgd_step_cuda(backend.get_array_module(params[0].data), [p.data for p in params],
                               [p.grad.data for p in params], [b for b, _ in buffers],
                               [first for _, first in buffers], **optimizer.hyper(group))


def cuda_adam_step(optimizer, group, params):
    """Adam's (and AdamW's) step of a whole parameter group in one kernel (the reference:
    ``Adam.step``, one parameter at a time, with the same state)."""
    if not _group_ready(optimizer, params):
        return NotImplemented       # Adam.step then updates them one at a time
    states = [optimizer.moments(p, group) for p in params]
    columns = [[state.get(key) for state in states]
               for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step")]
    cuda_kernels.adam_step_cuda(backend.get_array_module(params[0].data), [p.data for p in params],
                                [p.grad.data for p in params], *columns, **optimizer.hyper(group))


register(Conv2d, CudaConv2d, devices=("cuda",))
register(AdaptiveAvgPool2d, DeviceAdaptiveAvgPool2d, devices=("cuda",))
register(MaxPool2d, CudaMaxPool2d, devices=("cuda",))
register(AvgPool2d, CudaAvgPool2d, devices=("cuda",))
register(LocalResponseNorm, CudaLocalResponseNorm, devices=("cuda",))
register(BatchNorm, CudaBatchNorm, devices=("cuda",))
register(ReLU, CudaReLU, devices=("cuda",))
register(Dropout, CudaDropout, devices=("cuda",))
register(CrossEntropy, CudaCrossEntropy, devices=("cuda",))
register_function("sgd", cuda_sgd_step, devices=("cuda",))
register_function("adam", cuda_adam_step, devices=("cuda",))
