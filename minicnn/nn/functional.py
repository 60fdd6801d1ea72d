"""``minicnn.nn.functional``, as ``torch.nn.functional``: ``import minicnn.nn.functional as F``.

The ops are :mod:`minicnn.functional`'s (one readable file per layer family); this module gives
them PyTorch's import path and accepts the arguments PyTorch code passes that change nothing
here (``inplace=``). It adds the few PyTorch functions minicnn builds from Tensor operators
(``mse_loss``, ``one_hot``) and the ``reduction=`` argument of the losses.
"""
import numpy

from .. import functional as _F
from ..functional import (adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d, flatten,
                          linear, local_response_norm, log_softmax, max_pool2d, sigmoid, softmax,
                          tanh)
from ..tensor import Tensor, as_tensor

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv2d", "cross_entropy",
           "dropout", "flatten", "linear", "local_response_norm", "log_softmax",
           "max_pool2d", "mse_loss", "nll_loss", "one_hot", "relu", "sigmoid", "softmax", "tanh"]

_REDUCTIONS = ("mean", "sum", "none")


def relu(x, inplace=False):
    """``max(x, 0)``; ``inplace`` is accepted and ignored (a new tensor is always returned)."""
    return _F.relu(x)


def dropout(x, p=0.5, training=True, inplace=False):
    """Inverted dropout (see ``minicnn/functional/dropout.py``); ``inplace`` is ignored."""
    return _F.dropout(x, p=p, training=training)


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(per_example, reduction):
    return per_example if reduction == "none" else getattr(per_example, reduction)()


def _picked(log_probs, target, op):
    """``log_probs[n, target[n]]`` for every row n, after checking the labels."""
    labels = numpy.asarray(target.numpy() if isinstance(target, Tensor) else target)
    n, c = log_probs.shape if log_probs.ndim == 2 else (None, None)
    if n is None or labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: expected input (N, C) and integer target (N,), got "
                         f"{log_probs.shape} and {labels.shape} {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"{op}: target labels must lie in [0, {c}), got [{labels.min()}, {labels.max()}]")
    return log_probs[numpy.arange(n), labels]


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits ``(N, C)`` against integer labels ``(N,)``: the mean over the batch
    (``reduction="mean"``, minicnn's fused op), the ``"sum"``, or per example (``"none"``);
    ``label_smoothing`` e as PyTorch's (1 - e on the label, e / C on every class)."""
    _check_reduction("cross_entropy", reduction)
    if reduction == "mean":
        return _F.cross_entropy(input, target, label_smoothing=label_smoothing)
    e = _F.loss.check_label_smoothing("cross_entropy", label_smoothing)
    log_probs = log_softmax(as_tensor(input), dim=1)
    per_example = -_picked(log_probs, target, "cross_entropy")
    if e:
        per_example = (1 - e) * per_example - e * log_probs.mean(axis=1)
    return _reduce(per_example, reduction)


def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``(N, C)`` at integer labels ``(N,)``."""
    _check_reduction("nll_loss", reduction)
    if reduction == "mean":
        return _F.nll_loss(input, target)
    picked = _picked(as_tensor(input), target, "nll_loss")
    return _reduce(-picked, reduction)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target) ** 2`` (mean, sum, or per element)."""
    _check_reduction("mse_loss", reduction)
    input, target = as_tensor(input), as_tensor(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input {input.shape} and target {target.shape} differ in shape")
    return _reduce((input - target) ** 2, reduction)


def one_hot(tensor, num_classes=-1):
    """Integer labels ``(...)`` -> int64 ``(..., num_classes)`` with a 1 at each label."""
    labels = numpy.asarray(as_tensor(tensor).numpy())
    if labels.dtype.kind not in "iu":
        raise ValueError(f"one_hot: expected integer labels, got dtype {labels.dtype}")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got "
                         f"[{labels.min()}, {labels.max()}]")
    return Tensor(numpy.eye(num_classes, dtype=numpy.int64)[labels])
