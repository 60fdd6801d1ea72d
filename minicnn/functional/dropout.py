r"""Dropout (Srivastava et al., 2014), in its *inverted* form.

In training, every element of ``x`` is kept with probability ``1 - p`` and zeroed with
probability ``p``; kept elements are scaled by ``1 / (1 - p)``:

    y = x * m / (1 - p),     m ~ Bernoulli(1 - p) independently per element

so that E[y] = x and the layer is the identity at test time (no rescaling at inference, unlike the
paper's original formulation, which scaled the *weights* by ``1 - p`` at test time).

Backward: y is linear in x with the same mask, so  dx = g * m / (1 - p).

The mask is drawn once in forward from the package's seeded generator (``mc.manual_seed``), kept
as booleans and reused in backward. Edge cases: ``p = 0`` or ``training=False`` return the input
unchanged (nothing is drawn); ``p = 1`` returns zeros (and zero gradients).
"""
from __future__ import annotations

import numpy  # host side only: building the gradient-check cases at the bottom

from .. import backend
from ..function import Function
from ..rng import manual_seed
from ..tensor import Tensor, as_tensor


class Dropout(Function):
    """y = x * m / (1 - p) with m ~ Bernoulli(1 - p);  dx = g * m / (1 - p)."""

    def __init__(self, p: float):
        self.p = float(p)

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.p == 1.0:  # everything dropped
            self.mask, self.scale = None, 0.0
            return xp.zeros_like(x)
        self.scale = 1.0 / (1.0 - self.p)
        self.mask = backend.random_uniform(xp, x.shape, x.dtype) >= self.p  # P(keep) = 1 - p
        y = x * self.mask
        y *= self.scale
        return y

    def backward(self, g):
        if self.mask is None:
            return backend.get_array_module(g).zeros_like(g)
        dx = g * self.mask
        dx *= self.scale
        return dx


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    Identity when ``training`` is False or ``p == 0``; zeros when ``p == 1``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be between 0 and 1, got {p}")
    if not training or p == 0:
        return as_tensor(x)
    return Dropout(p)(x)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _case(p, shape):
    def make():

        def fn(x):
            manual_seed(0)  # the same mask on every call, so finite differences see one function
            return dropout(x, p)
        return fn, [Tensor(numpy.random.default_rng(0).standard_normal(shape), requires_grad=True)]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("dropout", "p=0.5 (4,6)", _case(0.5, (4, 6))),
    ("dropout", "p=0.2 (2,3,2,2)", _case(0.2, (2, 3, 2, 2))),
]
