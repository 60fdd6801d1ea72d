"""``Conv2d``: a convolution layer's parameters (the math is in :mod:`minicnn.functional.conv`)."""
from __future__ import annotations

import math

import numpy

from ..functional import conv
from ..functional.geometry import IntPair, pair as _pair
from ..functional.validation import validate_conv2d
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo).

    Parameters (PyTorch's names and shapes): ``weight`` (out_channels, in_channels // groups, kh, kw)
    and ``bias`` (out_channels,) (absent with ``bias=False``). ``kernel_size``, ``stride`` and
    ``padding`` are ints or (h, w) pairs; ``groups`` splits the channels into independent groups.

    Initialised as PyTorch: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    ``fan_in = in_channels / groups * kh * kw`` -- what ``kaiming_uniform_(weight, a=sqrt(5))``
    works out to -- drawn from ``minicnn.rng``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, groups: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.kernel_size = _pair(kernel_size, "Conv2d: kernel_size")
        self.stride = _pair(stride, "Conv2d: stride")
        self.padding = _pair(padding, "Conv2d: padding")
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size {self.kernel_size} and stride {self.stride} must be "
                             f"positive and padding {self.padding} non-negative")
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(numpy.empty(shape, dtype=numpy.float32))
        if bias:
            self.bias = Parameter(numpy.empty(self.out_channels, dtype=numpy.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        validate_conv2d("Conv2d", x.shape, self.weight.shape, self.stride, self.padding, self.groups)
        # checked here, naming the layer; F.conv2d would check again
        return conv.Conv2d(self.stride, self.padding, self.groups)(x, self.weight, self.bias)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
