"""Mini-batches for training: :class:`DataLoader`.

A ``DataLoader`` cuts a dataset into batches, in order or shuffled anew at the start of every
pass (every epoch). Each batch is gathered in one vectorised step when the dataset keeps its
examples in arrays (all minicnn datasets do), so loading costs about as much as copying the
bytes, even for 60,000 images:

>>> loader = DataLoader(FashionMNIST(train=True), batch_size=128, shuffle=True)
>>> for x, y in loader:          # x: float32 Tensor (128, 1, 28, 28) in [0, 1], y: int64 (128,)
...     ...

Batches are :class:`~minicnn.Tensor`\\ s on the CPU, as PyTorch's loader gives; move them with
``x.to(device)``. Shuffling draws from :func:`minicnn.rng.generator`, so ``mc.manual_seed(seed)``
fixes the order.

``device="cuda"`` (or ``"standin"``) keeps the whole data set on that device: a data set held in
arrays, with no transform of its own, is copied there once, at the first pass, and every batch
is then gathered, shuffled and augmented there (the images never come back to the host; only the
order, a few hundred KB per epoch, goes over). Other data sets are loaded on the host and each
batch is copied over. This is what ``minicnn train --device cuda`` uses.

``num_workers`` and ``pin_memory`` are accepted, for PyTorch code, and change nothing: a batch
is one NumPy indexing step in the main thread (faster than handing examples to worker
processes would be), and worker threads would make the order of random draws -- augmentation
-- depend on timing, so that ``manual_seed`` no longer repeated a run. NumPy has no pinned
memory.
"""
import math
import numbers

import numpy as np

from .. import backend, rng
from ..tensor import Tensor
from .datasets import fetch_batch


def _to_tensors(batch):
    """A batch of arrays (a tuple, a list, a dict or one array) -> the same of Tensors."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_tensors(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_tensors(v) for k, v in batch.items()}
    return Tensor(batch if backend.is_array(batch) else np.asarray(batch))


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x, y)`` of Tensors.

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
    num_workers, pin_memory
        Accepted for PyTorch code; they change nothing (see the module docstring).
    drop_last : bool
        Leave out a last batch smaller than ``batch_size``.
    sampler : iterable of int, optional
        As PyTorch: the indices of one pass, in order (e.g. a
        :class:`~minicnn.utils.data.DistributedSampler`, one rank's share); not with ``shuffle``.
    collate_fn : callable, optional
        As PyTorch: receives the list ``[dataset[i] for i in batch]`` and returns the batch,
        which is yielded as it is (the vectorised ``get_batch`` path is then not used).
    transform : callable, optional
        minicnn's own: applied to each float batch ``(B, C, H, W)`` (an array) after the
        dataset's transform, e.g. an augmentation from
        :func:`~minicnn.data.transforms.parse_augment`.
    device : str, optional
        minicnn's own: where the batches live (default ``"cpu"``); see the module docstring.

    Each batch is ``x``: ``float32`` ``(B, C, H, W)`` (pixel values scaled to [0, 1] before any
    transform), and ``y``: ``int64`` ``(B,)``, both Tensors on the CPU (a
    :class:`~minicnn.data.TensorDataset` gives its own dtypes). ``len(loader)`` is the number of
    batches per pass.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, num_workers=0, pin_memory=False,
                 drop_last=False, collate_fn=None, transform=None, device="cpu", sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True cannot both be given (the "
                             "sampler decides the order)")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.sampler = sampler
        self.transform = transform
        self.device = backend.normalize_device(device)
        self._on_device = None  # (images, labels) on self.device, made at the first pass

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # The order is drawn here, when a pass starts (not lazily at the first batch).
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.array(list(self.sampler), dtype=np.int64)
        else:
            order = rng.generator().permutation(n) if self.shuffle else np.arange(n)
        if self.device != "cpu" and self._resident():
            return self._device_batches(backend.to_device(order, self.device))
        return self._batches(order)

    def _resident(self):
        """Whether the whole data set can live on ``self.device`` (arrays, no per-example code)."""
        dataset = self.dataset
        return (self.collate_fn is None and getattr(dataset, "transform", None) is None
                and (hasattr(dataset, "get_batch")
                     or isinstance(getattr(dataset, "data", None), np.ndarray)))

    def _device_batches(self, order):
        if self._on_device is None:  # once: the whole data set, as the host path would batch it
            x, y = fetch_batch(self.dataset, np.arange(len(self.dataset)))[:2]
            self._on_device = (backend.to_device(x, self.device), backend.to_device(y, self.device))
        images, labels = self._on_device
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = images[indices]
            if self.transform is not None:
                x = self.transform(x)
            yield Tensor(x), Tensor(labels[indices])

    def _batches(self, order):
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.collate_fn is not None:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])
                continue
            batch = fetch_batch(self.dataset, indices)
            if self.transform is not None:
                batch = (self.transform(batch[0]),) + tuple(batch[1:])
            if self.device != "cpu":
                batch = tuple(backend.to_device(b, self.device) for b in batch)
            yield _to_tensors(tuple(batch))

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"transform={self.transform!r})")
