"""``SyncBatchNorm``: batch norm whose batch is every rank's batch together (PyTorch's name).

Under data parallelism each rank sees only its slice of the batch. Plain batch norm would
normalise each slice with its own mean and variance -- a different function of the data than on
one process, and noisier the smaller the slices. ``SyncBatchNorm`` takes the statistics over all
ranks, so N ranks compute what one process computes on the whole batch:

    forward    mean = all_reduce(sum x) / all_reduce(count)         (one all_reduce of C+1 values)
               var  = all_reduce(sum (x - mean)^2) / count          (two passes: stable, exact)
    backward   dx needs sum g and sum g*xhat over the whole batch:  (one all_reduce of 2C values)

Everything else -- normalising, the running estimates (with the global count), dgamma and dbeta
(local sums; DistributedDataParallel averages them with every other gradient) -- is
:class:`minicnn.functional.batchnorm.BatchNorm`'s, unchanged: this class overrides only its two
whole-batch steps. Outside training, or without a process group of more than one rank, it is
plain batch norm.
"""
from .. import backend
from .. import distributed as dist
from ..functional.batchnorm import BatchNorm
from ..functional.validation import validate_batch_norm
from .normalization import _BatchNorm


class SyncBatchNormFunction(BatchNorm):
    """``BatchNorm`` with its batch statistics and backward sums added up over every rank."""

    def batch_statistics(self, x):
        xp = backend.get_array_module(x)
        sums = xp.concatenate([x.sum(axis=self.axes), xp.full(1, x.size // x.shape[1], dtype=x.dtype)])
        dist.all_reduce(sums)
        m = int(backend.to_numpy(sums[-1:])[0])   # values per channel on all ranks together
        mu = sums[:-1] / m
        squares = ((x - mu.reshape(self.bshape)) ** 2).sum(axis=self.axes)
        dist.all_reduce(squares)
        return mu, squares / m, m

    def batch_sums(self, sum_g, sum_g_xhat):
        both = backend.get_array_module(sum_g).concatenate([sum_g, sum_g_xhat])
        dist.all_reduce(both)
        return both[:sum_g.shape[0]], both[sum_g.shape[0]:]


class SyncBatchNorm(_BatchNorm):
    """Batch norm over ``(N, C[, L | H, W])`` input with statistics over every rank's batch.

    Same parameters, buffers and arguments as ``BatchNorm1d``/``BatchNorm2d`` (so their state
    dicts load into it); :meth:`convert_sync_batchnorm` swaps them in a model."""

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)  # one process: the whole batch is here
        validate_batch_norm(type(self).__name__, x.shape, self.num_features, self._ranks)
        self.num_batches_tracked += 1
        return SyncBatchNormFunction(self.running_mean, self.running_var, True, self.momentum,
                                     self.eps)(x, self.weight, self.bias)

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every ``BatchNorm1d``/``BatchNorm2d`` in ``module`` by a ``SyncBatchNorm`` holding
        the same parameters and buffers; returns the module (a new one if ``module`` itself is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, eps=module.eps, momentum=module.momentum)
            sync.weight, sync.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(sync, name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            if child is not None:
                setattr(module, name, cls.convert_sync_batchnorm(child))
        return module
