"""``DistributedDataParallel``: one model, trained by several processes as by one.

Every rank holds the whole model and runs it on its own slice of the batch. Two things keep the
copies equal:

1. at construction, rank 0's parameters and buffers are broadcast to every rank (the same start);
2. after every ``backward()``, the gradients are averaged over the ranks (the same step).

With the loss a mean over each rank's slice, the average of the ranks' gradients is the gradient
of the mean over the whole batch: N ranks with batches of B compute the step of one process with
batches of N*B (docs/distributed.md).

How the average is taken, as PyTorch's DDP does: the gradients are packed into flat *buckets* of
about ``bucket_cap_mb`` MB, in a fixed order (the parameters in reverse, roughly the order in which
backward produces them), and each bucket is one ``all_reduce``: a few large messages instead of
one per parameter. The averaging runs when the backward walk has finished: the wrapper passes
the model's outputs through an identity ``Function`` whose backward -- the first of the walk --
queues it (:func:`minicnn.function.queue_callback`). Only a walk that accumulates into the
parameters' ``.grad`` (``backward()``) does: ``autograd.grad`` through the wrapper (an attribution,
say) computes no parameter gradient, so there is nothing to average -- as in PyTorch, whose DDP
hooks the parameters' gradient accumulation.
"""
import contextlib

import numpy

from ... import backend
from ... import distributed as dist
from ...function import Function, accumulates_into_leaves, is_grad_enabled, no_grad, queue_callback
from ...tensor import Tensor
from ..module import Module


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training; call it as the module. Needs a process group
    (:func:`minicnn.distributed.init_process_group`). Its ``state_dict()`` keys carry the prefix
    ``module.`` (as PyTorch's); ``load_state_dict`` takes keys with or without it."""

    def __init__(self, module, bucket_cap_mb=25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        self.world_size = dist.get_world_size()   # raises if there is no process group
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self._sync = True
        params = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        _check_same_model(module)
        with no_grad():  # 1. rank 0's values everywhere
            for p in module.parameters():
                dist.broadcast(p.data, 0)
            for b in module.buffers():
                dist.broadcast(b, 0)
        self._buckets = _buckets(params[::-1], int(bucket_cap_mb * 2**20))

    def forward(self, *inputs, **kwargs):
        output = self.module(*inputs, **kwargs)
        if not (self._sync and is_grad_enabled()):
            return output
        if isinstance(output, Tensor):
            return _AverageGradientsAfterBackward(self)(output)
        if isinstance(output, (tuple, list)) and output and all(isinstance(t, Tensor) for t in output):
            marked = _AverageGradientsAfterBackward(self)(*output)
            return type(output)(marked if len(output) > 1 else (marked,))
        raise TypeError(f"DistributedDataParallel: the module must return a Tensor or a tuple/list of "
                        f"Tensors, got {type(output).__name__}")

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: backward() accumulates local gradients without averaging (PyTorch's ``no_sync``);
        the first backward after it averages everything accumulated."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def load_state_dict(self, state, strict=True):
        """Load a state dict saved from this wrapper (``module.`` keys) or from the bare module."""
        if state and not any(k.startswith("module.") for k in state):
            state = {"module." + k: v for k, v in state.items()}
        return super().load_state_dict(state, strict)

    def _average_gradients(self):
        """After backward: every gradient becomes the mean of the ranks' gradients, bucket by bucket."""
        missing = [name for bucket in self._buckets for name, p in bucket if p.grad is None]
        count = numpy.array([len(missing)], dtype=numpy.int64)
        dist.all_reduce(count)                  # every rank learns whether any rank lacks one
        if count[0]:
            where = f"{missing[:3]} on rank {dist.get_rank()}" if missing else "on another rank"
            raise RuntimeError(f"DistributedDataParallel: {count[0]} parameter gradient(s) missing after "
                               f"backward(), {where}: every parameter that requires grad must take part "
                               f"in the loss on every rank (or set requires_grad=False)")
        for bucket in self._buckets:
            grads = [p.grad.data for _, p in bucket]
            flat = backend.get_array_module(*grads).concatenate([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world_size
            start = 0
            for _, p in bucket:                 # views into this step's flat buffer
                p.grad.data = flat[start:start + p.data.size].reshape(p.shape)
                start += p.data.size


class _AverageGradientsAfterBackward(Function):
    """Identity on the model's outputs. Its backward runs first in the walk and queues the
    gradient average for the walk's end, when every parameter has its gradient."""

    def __init__(self, ddp):
        self.ddp = ddp

    def forward(self, *outputs):
        return outputs if len(outputs) > 1 else outputs[0]

    def backward(self, *grads):
        if accumulates_into_leaves():           # not for autograd.grad: no .grad is written
            queue_callback(self.ddp._average_gradients)
        return grads if len(grads) > 1 else grads[0]


def _buckets(named_params, cap_bytes):
    """Consecutive parameters grouped into lists of at most ``cap_bytes`` (one dtype and device each)."""
    buckets, current, size = [], [], 0
    for name, p in named_params:
        kind = (p.dtype, p.device)
        if current and (size + p.data.nbytes > cap_bytes or kind != (current[0][1].dtype, current[0][1].device)):
            buckets.append(current)
            current, size = [], 0
        current.append((name, p))
        size += p.data.nbytes
    if current:
        buckets.append(current)
    return buckets


def _check_same_model(module):
    """Every rank must wrap the same model: the number of parameters and of their values agree."""
    params = list(module.parameters())
    local = numpy.array([len(params), sum(p.data.size for p in params)], dtype=numpy.int64)
    low, high = local.copy(), local.copy()
    dist.all_reduce(low, dist.ReduceOp.MIN)
    dist.all_reduce(high, dist.ReduceOp.MAX)
    if (low != high).any():
        raise ValueError(f"DistributedDataParallel: the ranks wrap different models (parameters, "
                         f"values: rank {dist.get_rank()} has {tuple(local)}, the ranks range from "
                         f"{tuple(low)} to {tuple(high)})")
