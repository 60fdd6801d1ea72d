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
import numpy  # host side only: building the gradient-check cases at the bottom

from .. import backend
from ..function import Function
from ..gradcheck import register_case
from ..threads import batch_pieces, parallel_map


class ReLU(Function):
    """y = max(x, 0);  dx = g * [x > 0].

    Large CPU arrays are done in pieces of the batch on several threads (``threads.batch_pieces``):
    a memory-bound op like this one runs about 1.5x faster on two cores.
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.mask, y = xp.empty(x.shape, dtype=bool), xp.empty_like(x)

        def piece(b):
            xp.greater(x[b], 0, out=self.mask[b])
            xp.maximum(x[b], 0, out=y[b])
        parallel_map(piece, batch_pieces(x, xp), xp)
        return y

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.empty_like(g)
        parallel_map(lambda b: xp.multiply(g[b], self.mask[b], out=dx[b]), batch_pieces(g, xp), xp)
        return dx


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


def relu(x):
    """Rectified linear unit ``max(x, 0)``, element-wise."""
    return ReLU()(x)


def tanh(x):
    """Hyperbolic tangent, element-wise."""
    return Tanh()(x)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, element-wise (stable for large ``|x|``)."""
    return Sigmoid()(x)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _case(fn, shape, scale=1.0):
    def make():
        from ..tensor import Tensor
        x = numpy.random.default_rng(0).standard_normal(shape) * scale
        x[numpy.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
        return fn, [Tensor(x, requires_grad=True)]
    return make


register_case("relu", "(3,4,2)", _case(relu, (3, 4, 2)))
register_case("tanh", "(3,5)", _case(tanh, (3, 5), scale=2.0))
register_case("sigmoid", "(4,5) incl. |x| ~ 10", _case(sigmoid, (4, 5), scale=6.0))
