"""Data for minicnn: datasets, the batch loader and (batch-wise) transforms.

>>> from minicnn.data import FashionMNIST, DataLoader, parse_augment
>>> train = FashionMNIST(train=True)                  # data: uint8 (60000, 1, 28, 28)
>>> loader = DataLoader(train, batch_size=128, shuffle=True,
...                     transform=parse_augment("flip,crop", 28))
>>> x, y = next(iter(loader))                 # Tensors: float32 (128, 1, 28, 28), int64 (128,)

Modules: :mod:`~minicnn.data.idx` (the MNIST file format), :mod:`~minicnn.data.cifar` (the
CIFAR-10 file formats, safe unpickling), :mod:`~minicnn.data.download`,
:mod:`~minicnn.data.datasets`, :mod:`~minicnn.data.generic` (``Dataset``, ``TensorDataset``,
``random_split``), :mod:`~minicnn.data.loader`, :mod:`~minicnn.data.transforms`.
"""
from . import transforms
from .cifar import RestrictedUnpickler, write_cifar10_binary, write_cifar10_python
from .datasets import CIFAR10, MNIST, ArrayDataset, DatasetNotFoundError, FashionMNIST, Subset
from .generic import Dataset, TensorDataset, random_split
from .idx import read_idx, write_idx
from .loader import DataLoader
from .transforms import (ColorJitter, Compose, Grayscale, Normalize, RandomCrop,
                         RandomHorizontalFlip, Resize, parse_augment)

__all__ = [
    "Dataset", "ArrayDataset", "TensorDataset", "Subset", "random_split", "MNIST", "FashionMNIST", "CIFAR10",
    "DatasetNotFoundError", "DataLoader",
    "Compose", "RandomHorizontalFlip", "RandomCrop", "ColorJitter", "Normalize", "Resize",
    "Grayscale", "parse_augment", "transforms",
    "read_idx", "write_idx", "RestrictedUnpickler", "write_cifar10_binary", "write_cifar10_python",
]
