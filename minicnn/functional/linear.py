r"""The fully connected (affine) layer, and flattening feature maps into vectors for it.

Linear
======
Shapes: ``x`` is ``(N, in)`` (or any ``(*, in)``: leading axes are treated as more batch),
``W`` is ``(out, in)`` (PyTorch's layout: one row per output unit), ``b`` is ``(out,)``:

    y = x W^T + b                        y_nj = sum_i x_ni W_ji + b_j        y: (N, out)

Backward, with G = dL/dy of shape (N, out):

    dL/dx = G W          dx_ni = sum_j G_nj W_ji                      (N, in)
    dL/dW = G^T x        dW_ji = sum_n G_nj x_ni  (summed over the batch)   (out, in)
    dL/db = sum_n G_n    db_j  = sum_n G_nj                           (out,)

Leading axes beyond the batch are folded into it (``x`` viewed as ``(-1, in)``), so all three are
one matrix product (or sum) each.

Flatten
=======
``flatten(x, start_dim=1)`` reshapes ``(N, C, H, W)`` to ``(N, C*H*W)``: the bridge from the
convolutional part of a network to its classifier (AlexNet: ``(N, 256, 6, 6) -> (N, 9216)``).
It is a ``reshape``, whose backward reshapes the gradient back.
"""
from __future__ import annotations

import numpy  # host side only: building the gradient-check cases at the bottom

from ..function import Function
from ..tensor import Tensor, as_tensor
from .validation import validate_linear


class Linear(Function):
    """y = x W^T + b;  dx = G W, dW = G^T x, db = sum_n G (x viewed as (-1, in)).

    The three products go through :meth:`matmul`, the one step a fast path replaces.
    """

    def matmul(self, a, b):
        """The matrix product ``a @ b``."""
        return a @ b

    def forward(self, x, weight, bias):
        self.x_shape = x.shape
        self.x2 = x.reshape(-1, x.shape[-1])  # (N*, in)
        self.weight = weight
        y = self.matmul(self.x2, weight.T)
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (N*, out)
        dx = self.matmul(g2, self.weight).reshape(self.x_shape) if need_x else None
        dw = self.matmul(g2.T, self.x2) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``y = x W^T + b`` with ``weight`` ``(out, in)``, ``bias`` ``(out,)``, ``x`` ``(*, in)``."""
    if len(weight.shape) != 2:
        raise ValueError(f"linear: expected weight (out_features, in_features), got {tuple(weight.shape)}")
    validate_linear("linear", x.shape, weight.shape[1])
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return Linear()(x, weight, bias)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one: ``(N, C, H, W) -> (N, C*H*W)`` by default."""
    x = as_tensor(x)
    for d in (start_dim, end_dim):
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"flatten: dimension {d} is out of range for input of shape {x.shape}")
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for input "
                         f"of shape {x.shape}")
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return x.reshape(*shape)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _case(x_shape, out, bias):
    def make():
        rng = numpy.random.default_rng(0)
        x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
        w = Tensor(rng.standard_normal((out, x_shape[-1])), requires_grad=True)
        if not bias:
            return (lambda x, w: linear(x, w)), [x, w]
        b = Tensor(rng.standard_normal(out), requires_grad=True)
        return (lambda x, w, b: linear(x, w, b)), [x, w, b]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("linear", "(4,5)->(4,3) with bias", _case((4, 5), 3, True)),
    ("linear", "(4,5)->(4,3) no bias", _case((4, 5), 3, False)),
    ("linear", "(2,3,4)->(2,3,2) leading axes", _case((2, 3, 4), 2, True)),
    ("flatten", "(2,3,2,2) start_dim=1", lambda: (
        lambda x: flatten(x), [as_tensor(numpy.random.default_rng(0).standard_normal((2, 3, 2, 2)))
                               .requires_grad_()])),
]
