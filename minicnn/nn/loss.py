"""Loss layers: ``CrossEntropyLoss``, ``NLLLoss`` (math in :mod:`minicnn.functional.loss`)."""
from __future__ import annotations

from .. import functional as F
from ..functional.geometry import Array
from ..tensor import Tensor
from .module import Module


class CrossEntropyLoss(Module):
    """``loss(logits, target)``: mean cross-entropy of ``(N, C)`` logits against ``(N,)`` integer labels."""

    def forward(self, input: Tensor, target: Tensor | Array | list[int]) -> Tensor:
        return F.cross_entropy(input, target)


class NLLLoss(Module):
    """``loss(log_probs, target)``: mean of ``-log_probs[n, target[n]]``."""

    def forward(self, input: Tensor, target: Tensor | Array | list[int]) -> Tensor:
        return F.nll_loss(input, target)
