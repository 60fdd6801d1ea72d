r"""Softmax, log-softmax and the cross-entropy loss of a classifier.

Softmax along the class axis (``dim=`` as PyTorch, or ``axis=``), for logits z_1..z_C:
softmax(z)_j = e^{z_j} / sum_k e^{z_k}. e^z overflows for z > 88 in float32, but softmax is
unchanged when a constant is subtracted from every logit, so we subtract M = max_k z_k first.
Backward: dy_j/dz_i = y_j ([i = j] - y_i), so with g = dL/dy:  dz_i = y_i (g_i - sum_j g_j y_j).

Log-softmax:  log_softmax(z)_j = z_j - logsumexp(z),  logsumexp(z) = M + log sum_k e^{z_k - M},
computed directly (never as log(softmax(z)), which gives -inf once a probability underflows).
Backward, with p = softmax(z) = exp(y):  dz_i = g_i - p_i sum_j g_j.

Cross-entropy of logits z (N, C) against integer labels t (N,), each in [0, C):
    L = (1/N) sum_n ( logsumexp(z_n) - z_{n, t_n} ) = -(1/N) sum_n log p_{n, t_n}
Backward (the fused softmax + NLL gradient, never going through log p):  dL/dz_nk = (p_nk - [k = t_n]) / N.
With label smoothing e (PyTorch's ``label_smoothing``) the target of row n is 1 - e on t_n plus e / C
on every class, so  L_e = (1 - e) L + e (1/N) sum_n (1/C) sum_k -log p_nk,  built from the fused op and
log-softmax (its gradient: (p_nk - (1 - e)[k = t_n] - e / C) / N).
``nll_loss(log_probs, t) = -(1/N) sum_n log_probs_{n, t_n}`` is the second half alone
(``cross_entropy(z, t) == nll_loss(log_softmax(z, dim=1), t)``); its gradient is -[k = t_n] / N.
"""
from __future__ import annotations

import numpy  # host side only: turning a Python list of labels into an array, gradcheck cases

from .. import backend
from ..function import Function
from ..tensor import Tensor, as_tensor
from .geometry import Array
from .validation import class_targets


class _AlongAxis(Function):
    def __init__(self, axis: int = -1):
        self.axis = axis  # the class axis


class Softmax(_AlongAxis):
    """y = exp(z - max z) / sum exp(z - max z) along ``axis``;  dz = y * (g - sum(g * y))."""

    def forward(self, z):
        xp = backend.get_array_module(z)
        y = xp.exp(z - z.max(axis=self.axis, keepdims=True))
        self.y = y / y.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, g):
        return self.y * (g - (g * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(_AlongAxis):
    """y = z - M - log sum exp(z - M) along ``axis`` (M = max z);  dz = g - exp(y) * sum(g)."""

    def forward(self, z):
        xp = backend.get_array_module(z)
        y = z - z.max(axis=self.axis, keepdims=True)
        self.y = y - xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, g):
        xp = backend.get_array_module(g)
        return g - xp.exp(self.y) * g.sum(axis=self.axis, keepdims=True)


class CrossEntropy(Function):
    """L = mean_n (logsumexp(z_n) - z_{n,t_n});  dz = (softmax(z) - onehot(t)) / N."""

    def __init__(self, target: Array):
        self.t = target  # (N,) integer array on the logits' device

    def forward(self, z):
        xp = backend.get_array_module(z)
        self.rows = xp.arange(z.shape[0])
        shifted = z - z.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        self.p = p / s
        return (xp.log(s).reshape(-1) - shifted[self.rows, self.t]).mean()

    def backward(self, g):
        dz = self.p.copy()
        dz[self.rows, self.t] -= 1
        return dz * (g * (1.0 / self.p.shape[0]))


class NLLLoss(Function):
    """L = -mean_n log_probs_{n,t_n};  dlog_probs = -onehot(t) / N."""

    def __init__(self, target: Array):
        self.t = target

    def forward(self, logp):
        xp = backend.get_array_module(logp)
        self.shape, self.rows = logp.shape, xp.arange(logp.shape[0])
        return -logp[self.rows, self.t].mean()

    def backward(self, g):
        xp = backend.get_array_module(g)
        d = xp.zeros(self.shape, dtype=g.dtype)
        d[self.rows, self.t] = g * (-1.0 / self.shape[0])
        return d


def _class_axis(op, dim, axis):  # dim= (PyTorch) or axis= (NumPy)
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: give dim= or axis=, not both")
    return -1 if dim is None and axis is None else (axis if dim is None else dim)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (or ``axis``; default -1), max subtracted first."""
    return Softmax(_class_axis("softmax", dim, axis))(x)


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``dim`` (or ``axis``; default -1), max subtracted first."""
    return LogSoftmax(_class_axis("log_softmax", dim, axis))(x)


def check_label_smoothing(op: str, label_smoothing: float) -> float:
    """``label_smoothing`` as a float in [0, 1] (PyTorch's range), else ``ValueError``."""
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number from 0.0 to 1.0, got {label_smoothing!r}")
    return float(label_smoothing)


def cross_entropy(logits: Tensor, target: Tensor | Array | list[int], label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy (a 0-d tensor) of ``logits`` ``(N, C)`` against integer labels ``target``
    ``(N,)`` (a Tensor, array or list); a label outside ``[0, C)`` raises ``ValueError``.
    ``label_smoothing`` e: the target puts 1 - e on the label and e / C on every class (PyTorch's)."""
    logits = as_tensor(logits)
    e = check_label_smoothing("cross_entropy", label_smoothing)
    loss = CrossEntropy(class_targets(target, logits, "cross_entropy", "logits"))(logits)
    return loss if e == 0 else (1 - e) * loss - e * log_softmax(logits, dim=1).mean()


def nll_loss(log_probs: Tensor, target: Tensor | Array | list[int]) -> Tensor:
    """Mean negative log-likelihood ``-log_probs[n, target[n]]`` over the batch (``(N, C)``, ``(N,)``)."""
    log_probs = as_tensor(log_probs)
    return NLLLoss(class_targets(target, log_probs, "nll_loss"))(log_probs)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _logits(*shape, scale=1.0):
    return Tensor(numpy.random.default_rng(0).standard_normal(shape) * scale, requires_grad=True)


def _ce_case(N, C, scale=1.0, loss=None):
    def make():
        labels = numpy.random.default_rng(1).integers(0, C, N)

        def fn(z):  # labels follow the logits to the checker's device
            return (loss or cross_entropy)(z, backend.to_device(labels, z.device))
        return fn, [_logits(N, C, scale=scale)]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("softmax", "(3,5) axis=-1", lambda: (lambda x: softmax(x), [_logits(3, 5)])),
    ("softmax", "(2,4,3) dim=1", lambda: (lambda x: softmax(x, dim=1), [_logits(2, 4, 3)])),
    ("log_softmax", "(3,5) axis=-1", lambda: (lambda x: log_softmax(x), [_logits(3, 5)])),
    ("log_softmax", "(2,3,4) axis=0, logits ~ 30",
                  lambda: (lambda x: log_softmax(x, axis=0), [_logits(2, 3, 4, scale=30.0)])),
    ("cross_entropy", "(5,4)", _ce_case(5, 4)),
    ("cross_entropy", "(3,6) logits ~ 20", _ce_case(3, 6, scale=20.0)),
    ("cross_entropy", "(5,4) label_smoothing=0.2",
                      _ce_case(5, 4, loss=lambda z, t: cross_entropy(z, t, label_smoothing=0.2))),
    ("nll_loss", "(4,3) of log_softmax",
                  _ce_case(4, 3, loss=lambda z, t: nll_loss(log_softmax(z, dim=1), t))),
]
