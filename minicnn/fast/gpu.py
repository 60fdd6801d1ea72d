"""Device paths: the ops on CuPy arrays (and on the stand-in device, which checks them in CI).

On a GPU every whole-array operation is a kernel launch that reads and writes global memory, so
what is slow there differs from the CPU: many small launches, not cache misses. These classes
compute what the references compute (tested equal), with

* ``DeviceConv2d``: the reference's single im2col and batched GEMM, computing only the gradients
  that are needed; ``CudaConv2d`` folds the columns back with the CUDA gather kernel
  (``cuda_kernels.col2im_cuda``: one pass, no atomics) instead of kh*kw strided scatter-adds;
* ``CudaMaxPool2d``: max-pool backward folded by the same kernel;
* ``CudaLocalResponseNorm``: forward and backward as one fused kernel each, instead of ``size``
  shifted slice-adds and a temporary per formula term;
* ``CudaBatchNorm``: the statistics in one pass (a block per channel), the normalisation in one
  more; backward likewise (two kernels instead of about a dozen whole-array operations).

The stand-in runs ``DeviceConv2d`` (whole-array code only); CUDA runs the kernel classes. Nothing
here ever reaches the CPU thread pool (``threads`` raises if a device array does).
"""
from .. import backend
from ..functional.batchnorm import BatchNorm
from ..functional.conv import Conv2d, col2im
from ..functional.lrn import LocalResponseNorm
from ..functional.pooling import MaxPool2d
from . import cuda_kernels
from .registry import register


def _needs(fn):
    """``(x, weight, bias)`` flags of ``needs_input_grad`` (False where there is no input)."""
    return (tuple(fn.needs_input_grad) + (False,) * 3)[:3]


class DeviceConv2d(Conv2d):
    """The reference forward; backward computes only the gradients asked for."""

    def fold(self, dcols):
        """col2im of the input gradient's columns (whole-array: one += per kernel offset)."""
        kh, kw = self.weight.shape[2:]
        return col2im(dcols, self.x_shape, kh, kw, self.stride, self.padding)

    def backward(self, gy):
        want_dx, want_dw, want_db = _needs(self)
        g = self.groups
        c_out, cg, kh, kw = self.weight.shape
        g_mat = gy.transpose(1, 0, 2, 3).reshape(g, c_out // g, -1)   # (g, C_out/g, N*Ho*Wo)
        dx = dw = db = None
        if want_dw:
            cols = self.cols.reshape(g, cg * kh * kw, -1)
            dw = (g_mat @ cols.transpose(0, 2, 1)).reshape(self.weight.shape)
        if want_dx:
            w_mat = self.weight.reshape(g, c_out // g, cg * kh * kw)
            dx = self.fold((w_mat.transpose(0, 2, 1) @ g_mat).reshape(g * cg * kh * kw, -1))
        if want_db:
            db = gy.sum(axis=(0, 2, 3))
        return dx, dw, db


def _kernel_dtype(x):
    """The CUDA kernels take float32 and float64; other dtypes run the whole-array code."""
    return x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)


class CudaConv2d(DeviceConv2d):
    """``DeviceConv2d`` with col2im as one CUDA gather kernel."""

    def fold(self, dcols):
        if not _kernel_dtype(dcols):
            return super().fold(dcols)
        kh, kw = self.weight.shape[2:]
        xp = backend.get_array_module(dcols)
        return cuda_kernels.col2im_cuda(xp, dcols, self.x_shape, kh, kw, self.stride, self.padding)


class CudaMaxPool2d(MaxPool2d):
    """Max pooling whose backward folds the routed gradients with the CUDA col2im kernel."""

    def _fold(self, dcols):
        if not _kernel_dtype(dcols):
            return super()._fold(dcols)
        (kh, kw), (ph, pw) = self.kernel, self.padding
        n, c, h, w = self.x_shape
        xp = backend.get_array_module(dcols)
        dx_pad = cuda_kernels.col2im_cuda(xp, dcols, self.padded_shape, kh, kw, self.stride, (0, 0))
        return dx_pad[:, 0, ph:ph + h, pw:pw + w].reshape(n, c, h, w)


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
    """Batch norm in four kernels (statistics, normalise; gradient sums, dx): the reference's
    formulas; saves x, the mean, 1/sigma and gamma/sigma (never xhat)."""

    def forward(self, x, weight, bias):
        params = [t for t in (weight, bias) if t is not None]
        if not _kernel_dtype(x) or any(t.dtype != x.dtype for t in params):
            return super().forward(x, weight, bias)
        xp = backend.get_array_module(x)
        c = x.shape[1]
        self.m = m = x.size // c
        self.batch_stats = self.training or self.running_mean is None
        if self.m < 2 and self.training:
            return super().forward(x, weight, bias)  # the reference raises the clear error
        if self.batch_stats:
            mean, var = cuda_kernels.bn_statistics_cuda(xp, x)
            if self.training and self.running_mean is not None:   # in place, as the reference
                mom = self.momentum
                self.running_mean[...] = (1.0 - mom) * self.running_mean + mom * mean
                self.running_var[...] = (1.0 - mom) * self.running_var + (mom * m / (m - 1)) * var
        else:
            mean = self.running_mean.astype(x.dtype)
            var = self.running_var.astype(x.dtype)
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        self.scale = self.inv_std if weight is None else weight * self.inv_std      # gamma / sigma
        shift = xp.zeros_like(mean) if bias is None else bias
        self.x, self.mean, self.fused = x, mean, True
        return cuda_kernels.bn_forward_cuda(xp, x, mean, self.scale, shift)

    def backward(self, g):
        if not getattr(self, "fused", False):
            return super().backward(g)
        xp = backend.get_array_module(g)
        sum_g, sum_gxhat = cuda_kernels.bn_gradient_sums_cuda(xp, g, self.x, self.mean, self.inv_std)
        dx = cuda_kernels.bn_backward_cuda(xp, g, self.x, self.mean, self.inv_std, self.scale, sum_g,
                                           sum_gxhat, self.batch_stats)
        return dx, sum_gxhat, sum_g


register(Conv2d, DeviceConv2d, devices=("standin",))
register(Conv2d, CudaConv2d, devices=("cuda",))
register(MaxPool2d, CudaMaxPool2d, devices=("cuda",))
register(LocalResponseNorm, CudaLocalResponseNorm, devices=("cuda",))
register(BatchNorm, CudaBatchNorm, devices=("cuda",))
