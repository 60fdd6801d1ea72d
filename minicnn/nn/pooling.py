"""Pooling layers (no parameters; the math is in :mod:`minicnn.functional.pooling`)."""
from __future__ import annotations

from ..functional import pooling
from ..functional.geometry import IntPair
from ..functional.validation import check_pool2d_args, validate_adaptive_pool2d, validate_pool2d
from ..tensor import Tensor
from .module import Module


class _Pool2d(Module):
    """What max and average pooling layers share: the window arguments, checked when built, and a
    forward that checks the input (naming the layer) and applies ``function``, the reference
    ``Function`` of ``minicnn.functional.pooling``."""

    function = None

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, bool(ceil_mode)
        check_pool2d_args(type(self).__name__, kernel_size, self.stride, padding)

    def forward(self, x: Tensor) -> Tensor:
        validate_pool2d(type(self).__name__, x.shape, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        # checked here, naming the layer; F.max_pool2d / F.avg_pool2d would check again
        return self.function(self.kernel_size, self.stride, self.padding, self.ceil_mode)(x)


class MaxPool2d(_Pool2d):
    """Max over (kh, kw) windows: (N, C, H, W) -> (N, C, Ho, Wo). ``stride=None`` means
    ``kernel_size``; padding never wins; ``ceil_mode`` keeps a last partial window."""

    function = pooling.MaxPool2d

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """Mean over (kh, kw) windows, padding counted in the divisor (PyTorch's default)."""

    function = pooling.AvgPool2d

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}" + \
            (", ceil_mode=True" if self.ceil_mode else "")


class AdaptiveAvgPool2d(Module):
    """Average over PyTorch's adaptive bins to a fixed (oh, ow) output; ``(1, 1)`` = global pooling."""

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        validate_adaptive_pool2d("AdaptiveAvgPool2d", x.shape, self.output_size)
        return pooling.AdaptiveAvgPool2d(self.output_size)(x)

    def extra_repr(self):
        return f"output_size={self.output_size}"
