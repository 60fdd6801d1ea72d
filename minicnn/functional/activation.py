r"""Element-wise activations: ReLU, tanh, sigmoid.

Each maps an input of any shape to an output of the same shape, element by element, so each
backward is the upstream gradient ``g`` times the scalar derivative at that element:

    relu(x)    = max(x, 0)              d/dx = 1 if x > 0 else 0   (0 at x = 0, as PyTorch)
    tanh(x)    = (e^x - e^-x)/(e^x + e^-x)   d/dx = 1 - tanh(x)^2 = 1 - y^2
    sigmoid(x) = 1 / (1 + e^-x)         d/dx = e^-x / (1 + e^-x)^2 = y (1 - y)

tanh and sigmoid express their derivatives through the output ``y``, so they save ``y`` rather
than ``x``; ReLU saves only the boolean mask ``x > 0`` (one byte per element).

Numerically stable sigmoid: ``1 / (1 + exp(-x))`` overflows ``exp`` for very negative x
(x < -88 in float32). With ``z = exp(-|x|)``, which lies in (0, 1] and never overflows,

    sigmoid(x) = 1 / (1 + z)   for x >= 0,        sigmoid(x) = z / (1 + z)   for x < 0

(the second is the first multiplied by e^x / e^x), and both are accurate to full relative
precision even deep in the tails.
"""
from __future__ import annotations

import numpy  # host side only: building the gradient-check cases at the bottom

from .. import backend
from ..function import Function
from ..tensor import Tensor


class ReLU(Function):
    """y = max(x, 0);  dx = g * [x > 0]."""

    def forward(self, x):
        self.mask = x > 0
        return backend.get_array_module(x).maximum(x, 0)

    def backward(self, g):
        return g * self.mask


class Tanh(Function):
    """y = tanh(x);  dx = g * (1 - y^2)."""

    def forward(self, x):
        self.y = backend.get_array_module(x).tanh(x)
        return self.y

    def backward(self, g):
        return g * (1 - self.y * self.y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)), computed stably from z = exp(-|x|);  dx = g * y * (1 - y)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        z = xp.exp(-xp.abs(x))
        r = 1 / (1 + z)
        self.y = xp.where(x >= 0, r, z * r)
        return self.y

    def backward(self, g):
        return g * self.y * (1 - self.y)


def relu(x: Tensor) -> Tensor:
    """Rectified linear unit ``max(x, 0)``, element-wise."""
    return ReLU()(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, element-wise."""
    return Tanh()(x)


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, element-wise (stable for large ``|x|``)."""
    return Sigmoid()(x)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _case(fn, shape, scale=1.0):
    def make():
        x = numpy.random.default_rng(0).standard_normal(shape) * scale
        x[numpy.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
        return fn, [Tensor(x, requires_grad=True)]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("relu", "(3,4,2)", _case(relu, (3, 4, 2))),
    ("tanh", "(3,5)", _case(tanh, (3, 5), scale=2.0)),
    ("sigmoid", "(4,5) incl. |x| ~ 10", _case(sigmoid, (4, 5), scale=6.0)),
]
