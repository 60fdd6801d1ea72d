"""Pooling layers (no parameters; the math is in :mod:`minicnn.functional.pooling`)."""
from .. import functional as F
from ..functional.validation import check_pool2d_args, validate_adaptive_pool2d, validate_pool2d
from .module import Module


class MaxPool2d(Module):
    """Max over (kh, kw) windows: (N, C, H, W) -> (N, C, Ho, Wo). ``stride=None`` means
    ``kernel_size``; padding never wins; ``ceil_mode`` keeps a last partial window."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, bool(ceil_mode)
        check_pool2d_args("MaxPool2d", kernel_size, self.stride, padding)

    def forward(self, x):
        validate_pool2d("MaxPool2d", x.shape, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over (kh, kw) windows, padding counted in the divisor (PyTorch's default)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, bool(ceil_mode)
        check_pool2d_args("AvgPool2d", kernel_size, self.stride, padding)

    def forward(self, x):
        validate_pool2d("AvgPool2d", x.shape, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}" + \
            (", ceil_mode=True" if self.ceil_mode else "")


class AdaptiveAvgPool2d(Module):
    """Average over PyTorch's adaptive bins to a fixed (oh, ow) output; ``(1, 1)`` = global pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        validate_adaptive_pool2d("AdaptiveAvgPool2d", x.shape, self.output_size)
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
