r"""Local response normalization (AlexNet, GoogLeNet): each activation divided by the energy of
its neighbouring channels at the same pixel.

Shapes: ``a`` is ``(N, C, *)`` (``(N, C, H, W)`` in a CNN); the output ``b`` has the same shape.
With ``n = size`` and the window of ``n`` channels centred on ``c`` (zero-padded at the ends)

    W(c) = { c - floor(n/2), ..., c + floor((n-1)/2) }  intersected with  {0, ..., C-1}

the layer computes, independently at every sample and pixel,

    s_c = k + (alpha / n) * sum_{c' in W(c)} a_c'^2          b_c = a_c * s_c^(-beta)

This is PyTorch's definition (``torch.nn.LocalResponseNorm``), which is also Caffe's: alpha is
divided by the window size. For even ``n`` the window has one more channel before ``c`` than after.

The AlexNet paper (Krizhevsky et al., 2012, section 3.3) writes the same layer *without* the 1/n:

    b_c = a_c / (k + alpha_paper * sum_{c' = c-n/2}^{c+n/2} a_c'^2)^beta,
    k = 2, n = 5, alpha_paper = 1e-4, beta = 0.75.

So the two conventions convert by ``alpha_torch = alpha_paper * n``: the paper's layer is
``local_response_norm(x, size=5, alpha=5e-4, beta=0.75, k=2.0)`` here (and in PyTorch and Caffe).

Backward. Write g_c = dL/db_c. Only the s_c' whose window contains c depend on a_c:

    ds_c'/da_c = (2 alpha / n) a_c [c in W(c')]
    db_c'/da_c = [c = c'] s_c^(-beta) - beta a_c' s_c'^(-beta-1) ds_c'/da_c

and summing over c' (chain rule),

    dL/da_c = g_c s_c^(-beta) - (2 alpha beta / n) a_c sum_{c' : c in W(c')} g_c' a_c' s_c'^(-beta-1)
            = g_c s_c^(-beta) - (2 alpha beta / n) a_c sum_{c' in W'(c)} g_c' b_c' / s_c'

where ``c in W(c')`` is the same as ``c' in W'(c) = {c - floor((n-1)/2), ..., c + floor(n/2)}``,
the window mirrored (identical to ``W`` for odd ``n``). Both the forward and the backward are thus
one "sum over a window of channels" each, computed by :func:`_window_sum` as ``n`` shifted
additions of whole arrays -- no loop over pixels.

``minicnn/fast/`` runs each pass as one fused CUDA kernel on the GPU, tested equal to this file.
"""
from __future__ import annotations

import numbers

import numpy  # host side only: the gradient-check cases' data

from ..function import Function
from ..tensor import Tensor
from .validation import validate_local_response_norm


def _window_sum(a, before, after):
    """``out_c = sum_{c' = c - before}^{c + after} a_c'`` along axis 1, zero beyond the ends.

    One shifted slice-add per offset ``d`` of the window: the channels c that have a neighbour
    c + d receive ``a[:, c + d]``.
    """
    C = a.shape[1]
    out = a.copy()  # offset d = 0
    for d in range(1, min(after, C - 1) + 1):  # neighbours after c: out_c += a_{c+d}
        out[:, :C - d] += a[:, d:]
    for d in range(1, min(before, C - 1) + 1):  # neighbours before c: out_c += a_{c-d}
        out[:, d:] += a[:, :C - d]
    return out


class LocalResponseNorm(Function):
    """b_c = a_c * s_c^-beta,  s_c = k + alpha/n * sum_{c' in W(c)} a_c'^2  (module docstring).

    Input and output ``(N, C, *)``. Backward:
    da_c = g_c s_c^-beta - (2 alpha beta / n) a_c sum_{c' in W'(c)} g_c' b_c' / s_c'.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        if not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.before, self.after = self.size // 2, (self.size - 1) // 2  # the window W(c)

    def forward(self, a):
        self.a = a
        self.s = self.k + (self.alpha / self.size) * _window_sum(a * a, self.before, self.after)
        self.b = a * self.s ** -self.beta
        return self.b

    def backward(self, g):
        t = g * self.b / self.s                                   # g_c' b_c' / s_c'
        da = _window_sum(t, self.after, self.before)              # over the mirrored window W'(c)
        return g * self.s ** -self.beta - (2.0 * self.alpha * self.beta / self.size) * self.a * da


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalization across channels, PyTorch's definition (alpha divided by size).

    ``x`` is ``(N, C, *)``. The AlexNet paper's layer (k=2, n=5, alpha=1e-4 not divided by n) is
    ``local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)``.
    """
    validate_local_response_norm("local_response_norm", x.shape)
    return LocalResponseNorm(size, alpha, beta, k)(x)


def _case(size, shape, **kw):
    def make():
        x = Tensor(numpy.random.default_rng(0).standard_normal(shape), requires_grad=True)
        return (lambda x: local_response_norm(x, size, **kw)), [x]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("local_response_norm", "size 5 (2,7,3,3), alpha=1 beta=0.75 k=2",
     _case(5, (2, 7, 3, 3), alpha=1.0, beta=0.75, k=2.0)),
    ("local_response_norm", "even size 4 (2,6,2,3), alpha=0.5 k=1",
     _case(4, (2, 6, 2, 3), alpha=0.5, beta=0.75, k=1.0)),
    ("local_response_norm", "size 2 (3,4,5) 3-D input, beta=0.5", _case(2, (3, 4, 5), alpha=0.8, beta=0.5, k=1.5)),
    ("local_response_norm", "size 9 > C=4 (2,4,2,2)", _case(9, (2, 4, 2, 2), alpha=2.0, beta=0.75, k=1.0)),
]
