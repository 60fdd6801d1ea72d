"""Mini-batches for training: :class:`DataLoader`.

A ``DataLoader`` cuts a dataset into batches, in order or shuffled anew at the start of every
pass (every epoch). Each batch is gathered in one vectorised step when the dataset keeps its
examples in arrays (all minicnn datasets do), so loading costs about as much as copying the
bytes, even for 60,000 images:

>>> loader = DataLoader(FashionMNIST(train=True), batch_size=128, shuffle=True)
>>> for x, y in loader:          # x: float32 (128, 1, 28, 28) in [0, 1], y: int64 (128,)
...     ...

Shuffling draws from :func:`minicnn.rng.generator`, so ``mc.manual_seed(seed)`` fixes the order.
"""
import math

import numpy as np

from .. import rng
from .datasets import fetch_batch


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x, y)``.

    Parameters
    ----------
    dataset
        Anything with ``len()`` and ``dataset[i] -> (image, label)``; faster if it also has
        ``get_batch(indices)`` or ``data``/``targets`` arrays
        (see :func:`~minicnn.data.datasets.fetch_batch`).
    batch_size : int
        Examples per batch. The last batch may be smaller, unless ``drop_last``.
    shuffle : bool
        Visit the examples in a fresh random order on every pass.
    drop_last : bool
        Leave out a last batch smaller than ``batch_size``.
    transform : callable, optional
        Applied to each float batch ``(B, C, H, W)`` after the dataset's own transform, e.g. an
        augmentation from :func:`~minicnn.data.transforms.parse_augment`.

    Each batch is ``x``: ``float32`` ``(B, C, H, W)`` (pixel values scaled to [0, 1] before any
    transform), and ``y``: ``int64`` ``(B,)``. ``len(loader)`` is the number of batches per pass.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, transform=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # The order is drawn here, when a pass starts (not lazily at the first batch).
        n = len(self.dataset)
        order = rng.generator().permutation(n) if self.shuffle else np.arange(n)
        return self._batches(order)

    def _batches(self, order):
        for b in range(len(self)):
            x, y = fetch_batch(self.dataset, order[b * self.batch_size:(b + 1) * self.batch_size])
            if self.transform is not None:
                x = self.transform(x)
            yield x, y

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"transform={self.transform!r})")
