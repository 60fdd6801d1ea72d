"""Loss layers: ``CrossEntropyLoss``, ``NLLLoss`` (math in :mod:`minicnn.functional.loss`)."""
from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """``loss(logits, target)``: mean cross-entropy of ``(N, C)`` logits against ``(N,)`` integer labels."""

    def forward(self, input, target):
        return F.cross_entropy(input, target)


class NLLLoss(Module):
    """``loss(log_probs, target)``: mean of ``-log_probs[n, target[n]]``."""

    def forward(self, input, target):
        return F.nll_loss(input, target)
