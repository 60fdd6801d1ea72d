"""``Dropout``: inverted dropout while training, the identity in evaluation mode
(math in :mod:`minicnn.functional.dropout`)."""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training (``self.training``), scaling the kept
    ones by ``1 / (1 - p)``. ``inplace`` is accepted for torchvision compatibility and ignored."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be between 0 and 1, got {p}")
        self.p, self.inplace = float(p), inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"
