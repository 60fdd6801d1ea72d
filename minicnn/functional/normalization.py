r"""Normalization layers: local response normalization (AlexNet, GoogLeNet) and batch normalization.

Both act on NCHW data and normalise along the channel axis (axis 1), but in opposite directions:
LRN divides each activation by the energy of its *neighbouring channels at the same pixel*; batch
norm standardises each *channel* with statistics taken over the batch (and the pixels).

Local response normalization
============================
Shapes: ``a`` is ``(N, C, *)`` (``(N, C, H, W)`` in a CNN); the output ``b`` has the same shape.
With ``n = size`` and the window of ``n`` channels centred on ``c`` (zero-padded at the ends)

    W(c) = { c - floor(n/2), ..., c + floor((n-1)/2) }  intersected with  {0, ..., C-1}

the layer computes, independently at every sample and pixel,

    s_c = k + (alpha / n) * sum_{c' in W(c)} a_c'^2          b_c = a_c * s_c^(-beta)

This is PyTorch's definition (``torch.nn.LocalResponseNorm``), which is also Caffe's: alpha is
divided by the window size. For even ``n`` the window has one more channel before ``c`` than after.

The AlexNet paper (Krizhevsky et al., 2012, section 3.3) writes the same layer *without* the 1/n:

    b_c = a_c / (k + alpha_paper * sum_{c' = c-n/2}^{c+n/2} a_c'^2)^beta,
    k = 2, n = 5, alpha_paper = 1e-4, beta = 0.75.

So the two conventions convert by ``alpha_torch = alpha_paper * n``: the paper's layer is
``local_response_norm(x, size=5, alpha=5e-4, beta=0.75, k=2.0)`` here (and in PyTorch and Caffe).

Backward. Write g_c = dL/db_c. Only the s_c' whose window contains c depend on a_c:

    ds_c'/da_c = (2 alpha / n) a_c [c in W(c')]
    db_c'/da_c = [c = c'] s_c^(-beta) - beta a_c' s_c'^(-beta-1) ds_c'/da_c

and summing over c' (chain rule),

    dL/da_c = g_c s_c^(-beta) - (2 alpha beta / n) a_c sum_{c' : c in W(c')} g_c' a_c' s_c'^(-beta-1)
            = g_c s_c^(-beta) - (2 alpha beta / n) a_c sum_{c' in W'(c)} g_c' b_c' / s_c'

where ``c in W(c')`` is the same as ``c' in W'(c) = {c - floor((n-1)/2), ..., c + floor(n/2)}``,
the window mirrored (identical to ``W`` for odd ``n``). Both the forward and the backward are thus
one "sum over a window of channels" each, computed by :func:`_window_sum` as ``n`` shifted
additions of whole arrays -- no loop over pixels.

Batch normalization
===================
Shapes: ``x`` is ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; ``weight`` (gamma), ``bias``
(beta), ``running_mean`` and ``running_var`` are ``(C,)``. For each channel the statistics are
taken over its ``m = N*H*W`` values x_1..x_m (all axes but C):

    mu = (1/m) sum_i x_i          var = (1/m) sum_i (x_i - mu)^2   (biased, used to normalise)
    sigma = sqrt(var + eps)       xhat_i = (x_i - mu) / sigma       y_i = gamma xhat_i + beta

Training mode uses these batch statistics and updates the running estimates in place
(PyTorch's rule; the running variance uses the *unbiased* estimate m/(m-1) var):

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var * m / (m - 1)

Evaluation mode uses ``mu = running_mean``, ``var = running_var`` (constants), so the layer is a
fixed per-channel affine map.

Backward (training). Write g_i = dL/dy_i. Then dL/dxhat_i = gamma g_i, and since
d(var)/dx_i = 2 (x_i - mu) / m (the mu-dependence cancels because sum_i (x_i - mu) = 0),
dsigma/dx_i = xhat_i / m and dmu/dx_i = 1/m:

    dxhat_j/dx_i = ([i = j] - 1/m) / sigma - xhat_j xhat_i / (m sigma)

Summing over j gives the compact formula (sums over the m values of the channel):

    dx_i    = gamma / (m sigma) * (m g_i - sum_j g_j - xhat_i sum_j g_j xhat_j)
    dgamma  = sum_i g_i xhat_i
    dbeta   = sum_i g_i

In evaluation mode mu and sigma are constants: dx_i = gamma g_i / sigma, with the same dgamma and
dbeta.
"""
import numbers

import numpy  # host side only: building the gradient-check cases at the bottom

from .. import backend
from ..function import Function
from ..gradcheck import register_case
from ..tensor import Tensor
from .. import threads
from ..threads import parallel_map
from . import gpu_kernels


# ---------------------------------------------------------------------------------------------
# Local response normalization
# ---------------------------------------------------------------------------------------------
def _window_sum(a, before, after):
    """``out_c = sum_{c' = c - before}^{c + after} a_c'`` along axis 1, zero beyond the ends.

    One shifted slice-add per offset ``d`` of the window (``before + after + 1`` of them): the
    channels c that have a neighbour c + d receive ``a[:, c + d]``.
    """
    C = a.shape[1]
    out = a.copy()  # offset d = 0
    for d in range(1, min(after, C - 1) + 1):  # neighbours after c: out_c += a_{c+d}
        out[:, :C - d] += a[:, d:]
    for d in range(1, min(before, C - 1) + 1):  # neighbours before c: out_c += a_{c-d}
        out[:, d:] += a[:, :C - d]
    return out


def validate_local_response_norm(layer, x_shape):
    """LRN needs at least (N, C, L): ``ValueError`` naming ``layer`` otherwise."""
    if len(x_shape) < 3:
        raise ValueError(f"{layer}: expected input (N, C, H, W) (or any (N, C, *) with at least 3 "
                         f"dimensions), got {tuple(x_shape)}")


class LocalResponseNorm(Function):
    """b_c = a_c * s_c^-beta,  s_c = k + alpha/n * sum_{c' in W(c)} a_c'^2  (see the module docstring).

    Input and output ``(N, C, *)``. Backward:
    da_c = g_c s_c^-beta - (2 alpha beta / n) a_c sum_{c' in W'(c)} g_c' b_c' / s_c'.
    On the GPU (float32/64) each pass is one fused CUDA kernel (``gpu_kernels``), which saves
    only ``a`` and ``s`` for backward.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        if not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.before, self.after = self.size // 2, (self.size - 1) // 2  # the window W(c)

    def forward(self, a):
        validate_local_response_norm("local_response_norm", a.shape)
        xp = backend.get_array_module(a)
        self.fused = backend.has_cuda_kernels(a)
        if self.fused:  # one CUDA kernel, the same formulas (gpu_kernels.lrn_forward_cuda)
            b, self.s = gpu_kernels.lrn_forward_cuda(xp, a, self.size, self.alpha, self.beta, self.k)
            self.a = a
            return b
        s = _window_sum(a * a, self.before, self.after)
        s *= self.alpha / self.size
        s += self.k
        self.a, self.s = a, s
        self.scale = s ** -self.beta  # s^-beta
        return a * self.scale

    def backward(self, g):
        if self.fused:
            return gpu_kernels.lrn_backward_cuda(backend.get_array_module(g), self.a, self.s, g,
                                                 self.size, self.alpha, self.beta)
        t = g * self.a
        t *= self.scale
        t /= self.s  # g_c' b_c' / s_c'
        da = _window_sum(t, self.after, self.before)  # the mirrored window W'(c)
        da *= self.a
        da *= -2.0 * self.alpha * self.beta / self.size
        da += g * self.scale
        return da


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels, PyTorch's definition (alpha divided by size).

    ``x`` is ``(N, C, *)``; ``b_c = a_c / (k + alpha/size * sum of a_c'^2 over the size channels
    centred on c) ** beta``. The AlexNet paper's layer (k=2, n=5, alpha=1e-4 not divided by n) is
    ``local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)``.
    """
    return LocalResponseNorm(size, alpha, beta, k)(x)


# ---------------------------------------------------------------------------------------------
# Batch normalization
# ---------------------------------------------------------------------------------------------
_BN_LAYOUTS = {2: "(N, {C})", 3: "(N, {C}, L)", 4: "(N, {C}, H, W)"}


def validate_batch_norm(layer, x_shape, num_features=None, ranks=(2, 3, 4)):
    """Rank in ``ranks`` and ``num_features`` channels on axis 1: ``ValueError`` naming ``layer``
    and stating the expected and received shapes otherwise."""
    x_shape = tuple(x_shape)
    if len(x_shape) not in ranks or (num_features is not None and x_shape[1] != num_features):
        c = "C" if num_features is None else num_features
        expected = " or ".join(_BN_LAYOUTS[r].format(C=c) for r in ranks)
        raise ValueError(f"{layer}: expected input {expected}, got {x_shape}")


def _data(t):
    """A Tensor's backend array (arrays and None pass through)."""
    return t.data if isinstance(t, Tensor) else t


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


class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per channel (axis 1); see the module docstring.

    ``forward(x, weight, bias)``: ``x`` ``(N, C[, L | H, W])``, ``weight``/``bias`` ``(C,)`` or ``None``.
    Training: mu, var from the batch (and the running buffers are updated in place);
    dx = gamma / (m sigma) * (m g - sum g - xhat sum(g xhat)). Eval: mu, var = the running buffers;
    dx = gamma g / sigma. Always dgamma = sum g xhat, dbeta = sum g.

    Every formula involves one channel at a time, so ``forward`` and ``backward`` apply them to
    groups of channels (``_forward_channels``, ``_backward_channels``: the math is there), on
    several threads for large inputs.
    """

    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var  # backend arrays or None
        self.training, self.momentum, self.eps = bool(training), float(momentum), float(eps)

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


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch normalization over axis 1 of ``x`` (``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``).

    ``training=True`` normalises with the batch mean and biased variance and updates
    ``running_mean``/``running_var`` (backend arrays or Tensors of shape ``(C,)``) in place, the
    variance with the unbiased estimate; ``training=False`` normalises with the running estimates.
    ``weight`` (gamma) and ``bias`` (beta) are optional ``(C,)`` tensors. Running buffers may be
    ``None`` (no running estimates kept); batch statistics are then used in both modes.
    """
    x_shape = tuple(x.shape)
    validate_batch_norm("batch_norm", x_shape)
    C = x_shape[1]
    rm, rv = _data(running_mean), _data(running_var)
    if (rm is None) != (rv is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both be None")
    for name, t in (("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: expected {name} of shape ({C},) for input {x_shape}, "
                             f"got {tuple(t.shape)}")
    if rm is not None:
        backend.check_same_device("batch_norm", [_data(x), rm, rv])
    return BatchNorm(rm, rv, training, momentum, eps)(x, weight, bias)


# -- gradient-check cases (float64; ``minicnn gradcheck``) ------------------------------------
def _case_inputs(*shapes, seed=0):
    rng = numpy.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def _lrn_case(size, shape, **kw):
    def make():
        return (lambda x: local_response_norm(x, size, **kw), _case_inputs(shape))
    return make


def _bn_case(shape, training):
    def make():
        C = shape[1]
        x, w, b = _case_inputs(shape, (C,), (C,), seed=1)
        rng = numpy.random.default_rng(2)
        rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)

        def fn(x, w, b):  # the running buffers follow x to the checker's device
            return batch_norm(x, backend.to_device(rm.copy(), x.device),
                              backend.to_device(rv.copy(), x.device), w, b,
                              training=training, momentum=0.1, eps=1e-5)
        return fn, [x, w, b]
    return make


register_case("local_response_norm", "size 5 (2,7,3,3), alpha=1 beta=0.75 k=2",
              _lrn_case(5, (2, 7, 3, 3), alpha=1.0, beta=0.75, k=2.0))
register_case("local_response_norm", "even size 4 (2,6,2,3), alpha=0.5 k=1",
              _lrn_case(4, (2, 6, 2, 3), alpha=0.5, beta=0.75, k=1.0))
register_case("local_response_norm", "size 2 (3,4,5) 3-D input, beta=0.5",
              _lrn_case(2, (3, 4, 5), alpha=0.8, beta=0.5, k=1.5))
register_case("local_response_norm", "size 9 > C=4 (2,4,2,2)",
              _lrn_case(9, (2, 4, 2, 2), alpha=2.0, beta=0.75, k=1.0))
register_case("batch_norm", "training (6,4)", _bn_case((6, 4), True))
register_case("batch_norm", "training (3,4,3,2)", _bn_case((3, 4, 3, 2), True))
register_case("batch_norm", "eval (3,4,2,2)", _bn_case((3, 4, 2, 2), False))
