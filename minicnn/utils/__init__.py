"""``minicnn.utils``: PyTorch's module paths (``minicnn.utils.data`` as ``torch.utils.data``)."""
from . import data

__all__ = ["data"]
