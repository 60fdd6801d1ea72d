"""``minicnn.utils.data``, as ``torch.utils.data``: the dataset tools and the loader.

The code lives in :mod:`minicnn.data` (with minicnn's own datasets and transforms); this module
only gives it PyTorch's import path::

    from minicnn.utils.data import DataLoader, Dataset, TensorDataset, random_split
    from minicnn.utils.data import DistributedSampler   # (from minicnn.distributed)
"""
from ..data.datasets import Subset
from ..data.generic import Dataset, TensorDataset, random_split
from ..data.loader import DataLoader
from ..distributed.sampler import DistributedSampler

__all__ = ["Dataset", "TensorDataset", "DataLoader", "random_split", "Subset", "DistributedSampler"]
