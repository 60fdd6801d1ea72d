"""Loss layers: ``CrossEntropyLoss``, ``NLLLoss`` (math in :mod:`minicnn.functional.loss`)."""
from __future__ import annotations

from .. import functional as F
from ..functional.geometry import Array
from ..tensor import Tensor
from .module import Module


class CrossEntropyLoss(Module):
    """``loss(logits, target)``: mean cross-entropy of ``(N, C)`` logits against ``(N,)`` integer
    labels; ``label_smoothing`` as PyTorch's (1 - e on the label, e / C on every class)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = F.loss.check_label_smoothing("CrossEntropyLoss", label_smoothing)

    def forward(self, input: Tensor, target: Tensor | Array | list[int]) -> Tensor:
        return F.cross_entropy(input, target, label_smoothing=self.label_smoothing)


class NLLLoss(Module):
    """``loss(log_probs, target)``: mean of ``-log_probs[n, target[n]]``."""

    def forward(self, input: Tensor, target: Tensor | Array | list[int]) -> Tensor:
        return F.nll_loss(input, target)
