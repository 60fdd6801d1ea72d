"""``DistributedSampler``: each rank's share of a data set, as PyTorch's.

Every rank draws the same shuffled order (seeded by ``seed + epoch``) and keeps every
``num_replicas``-th index from its ``rank`` on: the ranks' shares are disjoint and together
cover the data set. When the length does not divide evenly, the order is padded with its own
first indices (a few examples seen twice) or, with ``drop_last``, cut (a few left out), so that
every rank gets the same number of batches.

>>> sampler = DistributedSampler(train_set)                 # rank and world size from the group
>>> loader = DataLoader(train_set, batch_size=64, sampler=sampler)
>>> for epoch in range(epochs):
...     sampler.set_epoch(epoch)                            # a new order every epoch
"""
import math
import numbers

import numpy

from . import get_rank, get_world_size


class DistributedSampler:
    """Yields the dataset indices of one rank. See the module docstring."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        num_replicas = get_world_size() if num_replicas is None else num_replicas
        rank = get_rank() if rank is None else rank
        for name, value in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}], got {rank}")
        n = len(dataset)
        if drop_last and n < num_replicas:
            raise ValueError(f"DistributedSampler: drop_last with {n} examples for {num_replicas} "
                             f"replicas leaves every rank empty")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        self.num_samples = n // self.num_replicas if drop_last else math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Use the order of ``epoch`` (call it at the start of every epoch, on every rank)."""
        self.epoch = int(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:  # the same order on every rank: the same seed
            order = numpy.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = numpy.arange(n)
        if self.total_size > n:   # pad with the order's first indices (repeated if need be)
            order = numpy.resize(order, self.total_size)
        order = order[:self.total_size]
        return iter(order[self.rank::self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples
