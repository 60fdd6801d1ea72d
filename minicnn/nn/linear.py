"""``Linear`` (fully connected), ``Flatten`` and ``Identity`` (math in
:mod:`minicnn.functional.linear`)."""
from __future__ import annotations

import math

import numpy

from .. import functional as F
from ..functional.linear import Linear as LinearFunction
from ..functional.validation import validate_linear
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class Linear(Module):
    """``y = x W^T + b`` with ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)``.

    Initialised as PyTorch: weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) (what
    PyTorch's ``kaiming_uniform_(w, a=sqrt(5))`` works out to), drawn from ``minicnn.rng``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(numpy.empty((self.out_features, self.in_features), dtype=numpy.float32))
        if bias:
            self.bias = Parameter(numpy.empty(self.out_features, dtype=numpy.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        validate_linear("Linear", x.shape, self.in_features)
        return LinearFunction()(x, self.weight, self.bias)  # checked once (F.linear would check again)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge axes ``start_dim..end_dim``: ``(N, C, H, W) -> (N, C*H*W)`` by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed classifier); ignores any arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x
