"""PyTorch's general-purpose dataset tools: ``Dataset``, ``TensorDataset``, ``random_split``.

(``minicnn.utils.data`` re-exports them with the ``DataLoader``, as ``torch.utils.data`` does.)

>>> X, Y = mc.randn(100, 20), mc.randint(0, 3, (100,))
>>> train, val = random_split(TensorDataset(X, Y), [0.8, 0.2])
>>> x, y = train[0]                       # a (20,) float32 tensor, a 0-d int64 tensor
"""
import math

import numpy as np

from .. import backend, rng
from ..tensor import Tensor
from .datasets import Subset


class Dataset:
    """Base class of a map-style dataset: a subclass defines ``__len__`` and
    ``__getitem__(index)`` (returning, e.g., ``(image, label)``), as ``torch.utils.data.Dataset``.

    :class:`~minicnn.data.DataLoader` gathers batches from ``dataset[i]`` one example at a time
    unless the dataset also offers ``get_batch(indices)`` (see ``minicnn/data/datasets.py``).
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


def _host_array(value, position):
    """A Tensor, NumPy/CuPy array or list -> a host NumPy array (lists: float32 / int64)."""
    data = getattr(value, "data", value)  # a Tensor's backend array
    if backend.is_array(data):
        return np.asarray(backend.to_numpy(data))
    array = np.asarray(value)
    if array.dtype == object:
        raise ValueError(f"TensorDataset: argument {position} is not an array of numbers")
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array.astype(np.int64) if array.dtype.kind in "iu" else array


class TensorDataset(Dataset):
    """Examples that are rows of tensors: ``TensorDataset(X, Y)``; ``ds[i]`` is ``(X[i], Y[i])``.

    Each argument is a Tensor, an array or a list, all with the same first dimension; any number
    of them, of any shape and dtype (kept as given: nothing is scaled). ``ds.tensors`` holds them
    as Tensors. ``get_batch`` lets the DataLoader gather a batch in one indexing step.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.arrays = [_host_array(t, i) for i, t in enumerate(tensors)]
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got "
                             f"shapes {[a.shape for a in self.arrays]}")

    @property
    def tensors(self):
        """The data, as Tensors (sharing memory with the dataset)."""
        return tuple(Tensor(a) for a in self.arrays)

    def __len__(self):
        return len(self.arrays[0])

    def get_batch(self, indices):
        """Rows ``indices`` of every array, in one step (a tuple of host arrays)."""
        return tuple(a[indices] for a in self.arrays)

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self.arrays)

    def __repr__(self):
        return f"TensorDataset({len(self)} examples; shapes {[a.shape[1:] for a in self.arrays]})"


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random :class:`~minicnn.data.Subset`s.

    ``lengths`` are sizes summing to ``len(dataset)`` or fractions summing to 1 (``[0.8, 0.2]``;
    left-over examples go one each to the first parts, as PyTorch does). The permutation comes
    from ``generator`` (a ``numpy.random.Generator``) or else minicnn's seeded one.
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(v, float) for v in lengths) and math.isclose(sum(lengths), 1.0):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(v) for v in lengths]
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(f"random_split: lengths {lengths} must be sizes summing to {n} (the "
                         f"dataset's length) or fractions summing to 1")
    order = (generator or rng.generator()).permutation(n)
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
