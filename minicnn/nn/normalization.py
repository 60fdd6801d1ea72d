"""Normalization layers: ``BatchNorm1d``, ``BatchNorm2d``, ``LocalResponseNorm`` (math in
:mod:`minicnn.functional.batchnorm` and :mod:`minicnn.functional.lrn`).

Batch norm holds the learned per-channel scale and shift (parameters ``weight`` = gamma, ones, and
``bias`` = beta, zeros) and the running estimates used in evaluation mode (buffers
``running_mean``, zeros, ``running_var``, ones, and the step counter ``num_batches_tracked``): the
same names, shapes and initial values as PyTorch, so state dicts carry over. ``self.training``
(``model.train()`` / ``model.eval()``) chooses batch or running statistics.
"""
from __future__ import annotations

import numpy

from .. import functional as F
from ..functional.validation import validate_batch_norm, validate_local_response_norm
from ..tensor import Tensor
from .module import Module, Parameter


class _BatchNorm(Module):
    _ranks = (2, 3, 4)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = Parameter(numpy.ones(self.num_features, dtype=numpy.float32))
        self.bias = Parameter(numpy.zeros(self.num_features, dtype=numpy.float32))
        self.register_buffer("running_mean", numpy.zeros(self.num_features, dtype=numpy.float32))
        self.register_buffer("running_var", numpy.ones(self.num_features, dtype=numpy.float32))
        self.register_buffer("num_batches_tracked", numpy.zeros((), dtype=numpy.int64))

    def forward(self, x: Tensor) -> Tensor:
        validate_batch_norm(type(self).__name__, x.shape, self.num_features, self._ranks)
        if self.training:
            self.num_batches_tracked += 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``(N, C)`` features (or ``(N, C, L)`` sequences), statistics per feature C."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``(N, C, H, W)`` feature maps, statistics per channel over N, H and W."""
    _ranks = (4,)


class LocalResponseNorm(Module):
    """Normalise each activation by its ``size`` neighbouring channels (PyTorch's definition:
    ``alpha`` divided by ``size``). AlexNet's paper constants are ``LocalResponseNorm(5,
    alpha=5e-4, beta=0.75, k=2.0)`` in this convention (see the functional docstring)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        validate_local_response_norm("LocalResponseNorm", x.shape)
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
