r"""Softmax, log-softmax and the cross-entropy loss of a classifier.

Softmax
=======
Along one axis (the classes), for logits z_1..z_C:

    softmax(z)_j = e^{z_j} / sum_k e^{z_k}

Stability: e^{z} overflows for z > 88 in float32 (709 in float64). Softmax is unchanged when a
constant is subtracted from every logit, so we subtract ``M = max_k z_k``: then every exponent is
<= 0, the largest term is exactly 1, and nothing overflows (logits of 1e4 are fine).

Backward: dy_j/dz_i = y_j ([i = j] - y_i), so with g = dL/dy

    dz_i = y_i (g_i - sum_j g_j y_j)

Log-softmax
===========
    log_softmax(z)_j = z_j - logsumexp(z),   logsumexp(z) = M + log sum_k e^{z_k - M}

computed directly (never as ``log(softmax(z))``, which gives -inf once a probability underflows to 0).
Backward: dy_j/dz_i = [i = j] - p_i with p = softmax(z) = exp(y), so

    dz_i = g_i - p_i sum_j g_j

Cross-entropy
=============
Logits ``z`` of shape ``(N, C)`` and integer class labels ``t`` of shape ``(N,)``, each in
``[0, C)``. The loss is the mean negative log-likelihood of the correct classes:

    L = (1/N) sum_n ( logsumexp(z_n) - z_{n, t_n} ) = -(1/N) sum_n log p_{n, t_n}

Backward (the fused softmax + NLL gradient, never going through log p):

    dL/dz_nk = (p_nk - [k = t_n]) / N

``nll_loss(log_probs, t) = -(1/N) sum_n log_probs_{n, t_n}`` is the second half alone
(``cross_entropy(z, t) == nll_loss(log_softmax(z, axis=1), t)``); its gradient is
``-[k = t_n] / N``.
"""
import numpy  # host side only: turning a Python list of labels into an array, gradcheck cases

from .. import backend
from ..function import Function
from ..tensor import Tensor, as_tensor


class Softmax(Function):
    """y = exp(z - max z) / sum exp(z - max z) along ``axis``;  dz = y * (g - sum(g * y))."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, z):
        xp = backend.get_array_module(z)
        y = xp.exp(z - z.max(axis=self.axis, keepdims=True))
        y /= y.sum(axis=self.axis, keepdims=True)
        self.y = y
        return y

    def backward(self, g):
        gy = g * self.y
        dz = g - gy.sum(axis=self.axis, keepdims=True)
        dz *= self.y
        return dz


class LogSoftmax(Function):
    """y = z - M - log sum exp(z - M) along ``axis`` (M = max z);  dz = g - exp(y) * sum(g)."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, z):
        xp = backend.get_array_module(z)
        y = z - z.max(axis=self.axis, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        self.y = y
        return y

    def backward(self, g):
        xp = backend.get_array_module(g)
        return g - xp.exp(self.y) * g.sum(axis=self.axis, keepdims=True)


def _class_targets(target, logits, op):
    """Labels as an integer backend array on the logits' device; ``ValueError`` on a bad label."""
    t = target.data if isinstance(target, Tensor) else target
    if not backend.is_array(t):
        t = numpy.asarray(t)  # a Python list or number of labels
    N, C = logits.shape
    if t.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if tuple(t.shape) != (N,):
        raise ValueError(f"{op}: expected target of shape ({N},) for input {tuple(logits.shape)}, "
                         f"got {tuple(t.shape)}")
    device = backend.device_of(logits.data)
    if backend.device_of(t) != device:
        t = backend.to_device(t, device)  # explicit host -> device copy (xp.asarray)
    bad = (t < 0) | (t >= C)
    if N and bool(bad.any()):
        i = int(bad.argmax())
        raise ValueError(f"{op}: target label {int(t[i])} at index {i} is outside the valid range "
                         f"[0, {C}) for input {tuple(logits.shape)}")
    return t


def _check_logits(x, op, what="input"):
    if x.ndim != 2:
        raise ValueError(f"{op}: expected {what} (N, C), got {tuple(x.shape)}")


class CrossEntropy(Function):
    """L = mean_n (logsumexp(z_n) - z_{n,t_n});  dz = (softmax(z) - onehot(t)) / N."""

    def __init__(self, target):
        self.t = target  # (N,) integer array on the logits' device

    def forward(self, z):
        xp = backend.get_array_module(z)
        N = z.shape[0]
        self.rows = xp.arange(N)
        shifted = z - z.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        loss = (xp.log(s).reshape(N) - shifted[self.rows, self.t]).mean()
        p /= s
        self.p = p
        return loss

    def backward(self, g):
        N = self.p.shape[0]
        dz = self.p.copy()
        dz[self.rows, self.t] -= 1
        dz *= g * (1.0 / N)
        return dz


class NLLLoss(Function):
    """L = -mean_n log_probs_{n,t_n};  dlog_probs = -onehot(t) / N."""

    def __init__(self, target):
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


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably (max subtracted first)."""
    return Softmax(axis)(x)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``, computed stably (max subtracted first)."""
    return LogSoftmax(axis)(x)


def cross_entropy(logits, target):
    """Mean cross-entropy of ``logits`` ``(N, C)`` against integer labels ``target`` ``(N,)``.

    ``target`` is an integer Tensor, backend array, NumPy array or list; labels outside ``[0, C)``
    (negative ones included) raise ``ValueError``. Returns a 0-d tensor.
    """
    logits = as_tensor(logits)
    _check_logits(logits, "cross_entropy", "logits")
    return CrossEntropy(_class_targets(target, logits, "cross_entropy"))(logits)


def nll_loss(log_probs, target):
    """Mean negative log-likelihood ``-log_probs[n, target[n]]`` over the batch (``(N, C)``, ``(N,)``)."""
    log_probs = as_tensor(log_probs)
    _check_logits(log_probs, "nll_loss")
    return NLLLoss(_class_targets(target, log_probs, "nll_loss"))(log_probs)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _logits(*shape, scale=1.0):
    return Tensor(numpy.random.default_rng(0).standard_normal(shape) * scale, requires_grad=True)


def _ce_case(N, C, scale=1.0, loss=None):
    def make():
        labels = numpy.random.default_rng(1).integers(0, C, N)

        def fn(z):  # labels follow the logits to the checker's device
            t = backend.to_device(labels, z.device)
            return cross_entropy(z, t) if loss is None else loss(z, t)
        return fn, [_logits(N, C, scale=scale)]
    return make


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("softmax", "(3,5) axis=-1", lambda: (lambda x: softmax(x), [_logits(3, 5)])),
    ("softmax", "(2,4,3) axis=1", lambda: (lambda x: softmax(x, axis=1), [_logits(2, 4, 3)])),
    ("log_softmax", "(3,5) axis=-1", lambda: (lambda x: log_softmax(x), [_logits(3, 5)])),
    ("log_softmax", "(2,3,4) axis=0, logits ~ 30",
                  lambda: (lambda x: log_softmax(x, axis=0), [_logits(2, 3, 4, scale=30.0)])),
    ("cross_entropy", "(5,4)", _ce_case(5, 4)),
    ("cross_entropy", "(3,6) logits ~ 20", _ce_case(3, 6, scale=20.0)),
    ("nll_loss", "(4,3) of log_softmax",
                  _ce_case(4, 3, loss=lambda z, t: nll_loss(log_softmax(z, 1), t))),
]
