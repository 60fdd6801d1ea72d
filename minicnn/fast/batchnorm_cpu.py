"""Batch norm on the CPU: the reference's formulas in fewer passes, on groups of channels.

``ChannelGroupBatchNorm`` computes what ``minicnn.functional.batchnorm.BatchNorm`` computes
(tested equal). Every formula involves one channel at a time, so the channels are split into one
group per thread (``_channel_groups``) and the groups are normalised at once. Within a group it
saves passes over the data: it keeps ``x - mu`` (never ``xhat``), folds gamma / sigma into one
scale, and takes the per-channel sums with ``einsum`` (one vectorised pass, no product array).
"""
from .. import backend
from ..functional.batchnorm import BatchNorm
from . import threads
from .registry import register
from .threads import parallel_map


def _channel_groups(C, size):
    """Slices of the channel axis, one per thread; a single slice for small inputs.

    Batch norm splits inputs of at least ``threads.PARALLEL_MIN_SIZE`` numbers into one group of
    channels per thread and normalises the groups at once (each channel's statistics involve only
    that channel, so the groups are independent). Fewer, larger groups are faster: NumPy loops over
    a strided slice of a few channels more slowly than over many. The per-channel sums may then
    round differently with a different thread count (in the last bit).
    """
    parts = threads.get_num_threads() if size >= threads.PARALLEL_MIN_SIZE else 1
    return threads.even_slices(C, parts)


class ChannelGroupBatchNorm(BatchNorm):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per channel (axis 1); see the module docstring.

    ``forward(x, weight, bias)``: ``x`` ``(N, C[, L | H, W])``, ``weight``/``bias`` ``(C,)`` or ``None``.
    Training: mu, var from the batch (and the running buffers are updated in place);
    dx = gamma / (m sigma) * (m g - sum g - xhat sum(g xhat)). Eval: mu, var = the running buffers;
    dx = gamma g / sigma. Always dgamma = sum g xhat, dbeta = sum g.

    Every formula involves one channel at a time, so ``forward`` and ``backward`` apply them to
    groups of channels (``_forward_channels``, ``_backward_channels``: the math is there), on
    several threads for large inputs.
    """

    def forward(self, x, weight, bias):
        xp = backend.get_array_module(x)
        C = x.shape[1]
        self.axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channels
        self.bshape = (1, C) + (1,) * (x.ndim - 2)  # (C,) -> broadcastable against x
        self.batch_stats = self.training or self.running_mean is None
        self.m = x.size // C  # values per channel
        if self.m < 2 and self.training:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(x.shape)}")
        dtype = xp.result_type(x.dtype, *(t.dtype for t in (weight, bias) if t is not None))
        y = xp.empty(x.shape, dtype=dtype)
        self.xc = xp.empty(x.shape, dtype=x.dtype)  # x - mu; xhat = xc / sigma is never stored
        self.inv_std = xp.empty(self.bshape, dtype=x.dtype)
        self.gamma = None if weight is None else weight.reshape(self.bshape)
        self.groups = _channel_groups(C, x.size)
        parallel_map(lambda cs: self._forward_channels(xp, cs, x[:, cs], weight, bias, y[:, cs]),
                     self.groups, xp)
        return y

    def _forward_channels(self, xp, cs, x, weight, bias, y):
        """Normalise the channels ``cs`` (x and y are their slices): y = xhat * gamma + beta,
        computed as y = (x - mu) * (gamma / sigma) + beta, one pass fewer than forming xhat."""
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xc = self.xc[:, cs]
        if self.batch_stats:
            m = self.m
            mu = _channel_sum(xp, x) / m
            xp.subtract(x, mu.reshape(bshape), out=xc)
            var = _channel_dot(xp, xc, xc) / m  # biased
            if self.training and self.running_mean is not None:  # in place, as PyTorch
                mom, rm, rv = self.momentum, self.running_mean[cs], self.running_var[cs]
                rm[...] = (1.0 - mom) * rm + mom * mu
                rv[...] = (1.0 - mom) * rv + (mom * m / (m - 1)) * var  # unbiased
        else:
            mean = self.running_mean[cs].astype(x.dtype, copy=False)
            xp.subtract(x, mean.reshape(bshape), out=xc)
            var = self.running_var[cs].astype(x.dtype, copy=False)
        inv_std = self.inv_std[:, cs]
        inv_std[...] = (1.0 / xp.sqrt(var + self.eps)).reshape(bshape)  # 1 / sigma
        scale = inv_std if weight is None else weight[cs].reshape(bshape) * inv_std  # gamma / sigma
        xp.multiply(xc, scale, out=y)
        if bias is not None:
            y += bias[cs].reshape(bshape)

    def backward(self, g):
        xp = backend.get_array_module(g)
        need_x, need_w, need_b = self.needs_input_grad
        C = g.shape[1]
        dx = xp.empty(g.shape, dtype=g.dtype) if need_x else None
        dgamma = xp.empty(C, dtype=g.dtype) if need_w else None
        dbeta = xp.empty(C, dtype=g.dtype) if need_b else None
        parallel_map(lambda cs: self._backward_channels(
            xp, cs, g[:, cs], None if dx is None else dx[:, cs],
            None if dgamma is None else dgamma[cs], None if dbeta is None else dbeta[cs]),
            self.groups, xp)
        return dx, dgamma, dbeta

    def _backward_channels(self, xp, cs, g, dx, dgamma, dbeta):
        """The gradients of the channels ``cs``, written into their slices dx, dgamma, dbeta."""
        xc, inv_std = self.xc[:, cs], self.inv_std[:, cs]  # xhat = xc * inv_std
        bshape = (1, g.shape[1]) + (1,) * (g.ndim - 2)
        sum_g = _channel_sum(xp, g)
        if dbeta is not None:
            dbeta[...] = sum_g
        if dx is None and dgamma is None:
            return
        sum_gx = _channel_dot(xp, g, xc) * inv_std.reshape(-1)  # sum g * xhat
        if dgamma is not None:
            dgamma[...] = sum_gx
        if dx is None:
            return
        scale = inv_std if self.gamma is None else self.gamma[:, cs] * inv_std  # gamma / sigma
        xp.multiply(g, scale, out=dx)
        if self.batch_stats:  # gamma / (m sigma) * (m g - sum g - xhat sum(g xhat))
            m = self.m
            dx -= xc * (scale * inv_std * (sum_gx / m).reshape(bshape))  # xhat * ...
            dx -= scale * (sum_g / m).reshape(bshape)
        # else mu and sigma are constants: dx = gamma g / sigma


def _channel_sum(xp, a):
    """sum_{n, i} a[n, c, i] for each channel c of an (N, C, *) array: shape (C,).

    ``einsum`` adds each contiguous row with vector instructions; ``a.sum(axis=(0, 2, 3))`` took
    about three times as long on the reference machine."""
    return xp.einsum("nci->c", a.reshape(a.shape[0], a.shape[1], -1))


def _channel_dot(xp, a, b):
    """sum_{n, i} a[n, c, i] * b[n, c, i] for each channel c: shape (C,), without an a * b array."""
    n, c = a.shape[:2]
    return xp.einsum("nci,nci->c", a.reshape(n, c, -1), b.reshape(n, c, -1))


register(BatchNorm, ChannelGroupBatchNorm, devices=("cpu",))
