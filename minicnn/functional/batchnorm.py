r"""Batch normalization (Ioffe & Szegedy, 2015): each channel standardised with statistics taken
over the batch (and the pixels), then scaled and shifted.

Shapes: ``x`` is ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; ``weight`` (gamma), ``bias``
(beta), ``running_mean`` and ``running_var`` are ``(C,)``. For each channel the statistics are
taken over its ``m = N*H*W`` values x_1..x_m (all axes but C):

    mu = (1/m) sum_i x_i          var = (1/m) sum_i (x_i - mu)^2   (biased, used to normalise)
    sigma = sqrt(var + eps)       xhat_i = (x_i - mu) / sigma       y_i = gamma xhat_i + beta

Training mode uses these batch statistics and updates the running estimates in place
(PyTorch's rule; the running variance uses the *unbiased* estimate m/(m-1) var):

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var * m / (m - 1)

Evaluation mode uses ``mu = running_mean``, ``var = running_var`` (constants), so the layer is a
fixed per-channel affine map.

Backward (training). Write g_i = dL/dy_i. Then dL/dxhat_i = gamma g_i, and since
d(var)/dx_i = 2 (x_i - mu) / m (the mu-dependence cancels because sum_i (x_i - mu) = 0),
dsigma/dx_i = xhat_i / m and dmu/dx_i = 1/m:

    dxhat_j/dx_i = ([i = j] - 1/m) / sigma - xhat_j xhat_i / (m sigma)

Summing over j gives the compact formula (sums over the m values of the channel):

    dx_i    = gamma / (m sigma) * (m g_i - sum_j g_j - xhat_i sum_j g_j xhat_j)
    dgamma  = sum_i g_i xhat_i
    dbeta   = sum_i g_i

In evaluation mode mu and sigma are constants: dx_i = gamma g_i / sigma, with the same dgamma and
dbeta.

``minicnn/fast/`` computes the same formulas in fewer passes (channel groups spread over the CPU's cores,
fused kernels on the GPU), tested equal to this file.
"""
from __future__ import annotations

import numpy  # host side only: the gradient-check cases' data

from .. import backend
from ..function import Function
from ..tensor import Tensor
from .geometry import Array
from .validation import validate_batch_norm


class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per channel (axis 1); see the module docstring.

    ``forward(x, weight, bias)``: ``x`` ``(N, C[, L | H, W])``, ``weight``/``bias`` ``(C,)`` or ``None``.
    Training: mu, var from the batch; the running buffers are updated in place.
    Evaluation: mu, var = the running buffers (constants).
    """

    def __init__(self, running_mean: Array | None, running_var: Array | None, training: bool,
                 momentum: float, eps: float):
        self.running_mean, self.running_var = running_mean, running_var  # backend arrays or None
        self.training, self.momentum, self.eps = bool(training), float(momentum), float(eps)

    def forward(self, x, weight, bias):
        self.axes = (0,) + tuple(range(2, x.ndim))          # every axis but the channels
        self.bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # (C,) -> broadcastable against x
        self.batch_stats = self.training or self.running_mean is None
        if self.batch_stats:
            mu, var, self.m = self.batch_statistics(x)
        else:
            self.m = x.size // x.shape[1]
        m = self.m                                           # values per channel
        if m < 2 and self.training:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(x.shape)}")
        if self.batch_stats:
            if self.training and self.running_mean is not None:                   # in place
                rm, rv, mom = self.running_mean, self.running_var, self.momentum
                rm[...] = (1.0 - mom) * rm + mom * mu
                rv[...] = (1.0 - mom) * rv + mom * var * m / (m - 1)              # unbiased
        else:
            mu = self.running_mean.astype(x.dtype, copy=False)
            var = self.running_var.astype(x.dtype, copy=False)
        self.inv_std = (1.0 / backend.get_array_module(x).sqrt(var + self.eps)).reshape(self.bshape)
        self.xhat = (x - mu.reshape(self.bshape)) * self.inv_std
        self.gamma = None if weight is None else weight.reshape(self.bshape)
        y = self.xhat if weight is None else self.xhat * self.gamma
        return y if bias is None else y + bias.reshape(self.bshape)

    def backward(self, g):
        sum_g = g.sum(axis=self.axes)                        # dbeta
        sum_g_xhat = (g * self.xhat).sum(axis=self.axes)     # dgamma
        scale = self.inv_std if self.gamma is None else self.gamma * self.inv_std   # gamma / sigma
        if self.batch_stats:  # gamma / (m sigma) * (m g - sum g - xhat sum(g xhat))
            all_g, all_g_xhat = self.batch_sums(sum_g, sum_g_xhat)
            dx = scale / self.m * (self.m * g - all_g.reshape(self.bshape)
                                   - self.xhat * all_g_xhat.reshape(self.bshape))
        else:                 # mu and sigma are constants
            dx = scale * g
        return dx, sum_g_xhat, sum_g

    # The two steps that see the whole batch. ``minicnn.nn.SyncBatchNorm`` overrides them to take
    # the batch over every process; here the batch is this call's ``x``.
    def batch_statistics(self, x):
        """Per-channel mean and biased variance of ``x`` over ``self.axes``, and the count m."""
        mu = x.mean(axis=self.axes)
        var = ((x - mu.reshape(self.bshape)) ** 2).mean(axis=self.axes)   # biased
        return mu, var, x.size // x.shape[1]

    def batch_sums(self, sum_g, sum_g_xhat):
        """sum g and sum g*xhat over the batch (backward's two sums of dx)."""
        return sum_g, sum_g_xhat


def _data(t):
    """A Tensor's backend array (arrays and None pass through)."""
    return t.data if isinstance(t, Tensor) else t


def batch_norm(x: Tensor, running_mean: Tensor | Array | None, running_var: Tensor | Array | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over axis 1 of ``x`` (``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``).

    ``training=True`` normalises with the batch statistics and updates ``running_mean`` and
    ``running_var`` ((C,) backend arrays or Tensors, or both None) in place; ``training=False``
    uses the running estimates. ``weight`` (gamma) and ``bias`` (beta) are optional (C,) tensors.
    """
    x_shape = tuple(x.shape)
    validate_batch_norm("batch_norm", x_shape)
    rm, rv = _data(running_mean), _data(running_var)
    if (rm is None) != (rv is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both be None")
    for name, t in (("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (x_shape[1],):
            raise ValueError(f"batch_norm: expected {name} of shape ({x_shape[1]},) for input "
                             f"{x_shape}, got {tuple(t.shape)}")
    if rm is not None:
        backend.check_same_device("batch_norm", [_data(x), rm, rv])
    return BatchNorm(rm, rv, training, momentum, eps)(x, weight, bias)


def _case(shape, training):
    def make():
        rng = numpy.random.default_rng(1)
        x, w, b = (Tensor(rng.standard_normal(s), requires_grad=True) for s in (shape, shape[1:2], shape[1:2]))
        rm, rv = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])

        def fn(x, w, b):  # the running buffers follow x to the checker's device
            return batch_norm(x, backend.to_device(rm.copy(), x.device), backend.to_device(rv.copy(), x.device),
                              w, b, training=training)
        return fn, [x, w, b]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("batch_norm", "training (6,4)", _case((6, 4), True)),
    ("batch_norm", "training (3,4,3,2)", _case((3, 4, 3, 2), True)),
    ("batch_norm", "eval (3,4,2,2)", _case((3, 4, 2, 2), False)),
]
