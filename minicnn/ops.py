"""The elementary ``Function``s behind ``Tensor``'s operators and methods.

Each op is one small class: ``forward`` computes the value, ``backward`` applies the chain rule,
side by side. Notation: ``g`` is the gradient of the final scalar w.r.t. this op's output.

Every gradient an op returns has exactly its input's shape (the backward walk checks). An input
that NumPy broadcast in the forward pass was *used several times*, so its gradient is the sum of
the gradients of all its copies: the binary ops below sum ``g`` over the broadcast axes themselves,
with :func:`unbroadcast`.
"""
import numpy

from . import backend
from .function import Function
from .tensor import Tensor, register_operators


def _xp(*arrays):
    return backend.get_array_module(*arrays)


def unbroadcast(g, shape):
    """Sum ``g`` (shaped like a broadcast result) back to an input of ``shape``.

    Broadcasting lines the shapes up from the right: ``(5, 1)`` against ``(3, 1, 4)`` acts as
    ``(1, 5, 1)`` copied 3 times along axis 0 and 4 times along axis 2. Each copy passes its share
    of the gradient back, so the input's gradient sums ``g`` over the leading axes it lacked and
    over every axis where it had length 1 but the result did not.
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


class _Binary(Function):
    """A two-input op whose inputs NumPy may broadcast: keeps their shapes for ``unbroadcast``."""

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return self.compute(a, b)

    def grads(self, ga, gb):
        """The pair of input gradients, each summed back to its input's shape (None stays None)."""
        return tuple(None if g is None else unbroadcast(g, shape)
                     for g, shape in zip((ga, gb), self.shapes))


class Add(_Binary):
    """y = a + b;  da = g, db = g."""

    def compute(self, a, b):
        return a + b

    def backward(self, g):
        return self.grads(g, g)


class Sub(_Binary):
    """y = a - b;  da = g, db = -g."""

    def compute(self, a, b):
        return a - b

    def backward(self, g):
        return self.grads(g, -g if self.needs_input_grad[1] else None)


class Mul(_Binary):
    """y = a * b;  da = g * b, db = g * a."""

    def compute(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return self.grads(ga, gb)


class Div(_Binary):
    """y = a / b;  da = g / b, db = -g * a / b^2."""

    def compute(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return self.grads(ga, gb)


class Neg(Function):
    """y = -x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class PowScalar(Function):
    """y = x ** p for a constant p;  dx = g * p * x ** (p - 1)."""

    def __init__(self, exponent):
        self.p = exponent

    def forward(self, x):
        self.x = x
        return x ** self.p

    def backward(self, g):
        return g * self.p * self.x ** (self.p - 1)


class Pow(_Binary):
    """y = a ** b (both tensors);  da = g * b * a ** (b - 1), db = g * y * log(a)."""

    def compute(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, g):
        xp = _xp(self.a)
        ga = g * self.b * self.a ** (self.b - 1) if self.needs_input_grad[0] else None
        gb = g * self.y * xp.log(self.a) if self.needs_input_grad[1] else None
        return self.grads(ga, gb)


class MatMul(Function):
    """Y = A @ B (batched as ``numpy.matmul``);  dA = G @ B^T, dB = A^T @ G.

    A 1-D operand is treated as a row (A) or column (B) vector and the extra axis removed again.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        xp = _xp(g)
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if self.b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g @ xp.swapaxes(b, -1, -2)
            ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],)) if self.a.ndim == 1 else ga
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a, -1, -2) @ g
            gb = gb.reshape(gb.shape[:-1]) if self.b.ndim == 1 else gb
        # batched products broadcast the leading (batch) axes: sum them back
        return (None if ga is None else unbroadcast(ga, self.a.shape),
                None if gb is None else unbroadcast(gb, self.b.shape))


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))


def _expand_reduced(g, in_ndim, axes, keepdims):
    """Put back the reduced axes (as length 1) so ``g`` broadcasts against the input."""
    if keepdims:
        return g
    shape = list(g.shape)
    for a in axes:
        shape.insert(a, 1)
    return g.reshape(shape)


class Sum(Function):
    """y = sum of x over ``axis``;  dx = g broadcast back over the summed axes."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape, self.axes = x.shape, _normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        g = _expand_reduced(g, len(self.shape), self.axes, self.keepdims)
        return _xp(g).broadcast_to(g, self.shape).copy()


class Mean(Function):
    """y = mean of x over ``axis`` (n elements each);  dx = g / n broadcast back."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape, self.axes = x.shape, _normalize_axis(self.axis, x.ndim)
        self.n = int(numpy.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        g = _expand_reduced(g, len(self.shape), self.axes, self.keepdims) / self.n
        return _xp(g).broadcast_to(g, self.shape).astype(g.dtype, copy=True)


class Max(Function):
    """y = max of x over ``axis``;  dx = g at the maximum (split evenly between ties), 0 elsewhere."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        y = x.max(axis=self.axes, keepdims=True)
        self.mask = x == y
        return y if self.keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in self.axes])

    def backward(self, g):
        g = _expand_reduced(g, self.mask.ndim, self.axes, self.keepdims)
        count = self.mask.sum(axis=self.axes, keepdims=True)
        return self.mask * (g / count)


class Reshape(Function):
    """y = x viewed with a new shape;  dx = g reshaped back."""

    def __init__(self, shape):
        self.new_shape = tuple(shape)

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(self.new_shape)

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    """y = x with axes permuted;  dx = g with the inverse permutation."""

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.axes = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(a % x.ndim for a in self.axes)
        return x.transpose(self.axes)

    def backward(self, g):
        return g.transpose(tuple(numpy.argsort(self.axes)))


class Abs(Function):
    """y = |x|;  dx = g * sign(x) (0 at x = 0, as PyTorch)."""

    def forward(self, x):
        self.x = x
        return _xp(x).abs(x)

    def backward(self, g):
        return g * _xp(g).sign(self.x)


class Exp(Function):
    """y = exp(x);  dx = g * y."""

    def forward(self, x):
        self.y = _xp(x).exp(x)
        return self.y

    def backward(self, g):
        return g * self.y


class Log(Function):
    """y = log(x);  dx = g / x."""

    def forward(self, x):
        self.x = x
        return _xp(x).log(x)

    def backward(self, g):
        return g / self.x


def _prepare_index(index, xp):
    """Tensors and host arrays inside an index -> arrays of the data's device."""
    if isinstance(index, tuple):
        return tuple(_prepare_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, list):
        index = numpy.asarray(index)
    if backend.is_array(index) and backend.get_array_module(index) is not xp:
        index = xp.asarray(backend.to_numpy(index))
    return index


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, numpy.integer, slice)) for i in items)


class GetItem(Function):
    """y = x[index] (slices, ints, integer arrays, boolean masks);  dx = g scattered back.

    Repeated integer indices receive the sum of their gradients (``add.at``), not the last one.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.index = _prepare_index(self.index, _xp(x))
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, g):
        xp = _xp(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic(self.index):
            gx[self.index] = g
        else:
            xp.add.at(gx, self.index, g)
        return gx


class Concat(Function):
    """y = concatenate(xs, axis);  dx_i = the slice of g that x_i filled."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return _xp(*xs).concatenate(xs, axis=self.axis)

    def backward(self, g):
        bounds = numpy.cumsum([0] + self.sizes)
        axis = self.axis % g.ndim
        return tuple(g[(slice(None),) * axis + (slice(int(lo), int(hi)),)]
                     for lo, hi in zip(bounds[:-1], bounds[1:]))


class Stack(Function):
    """y = stack(xs, axis);  dx_i = g taken at position i along the new axis."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        return _xp(*xs).stack(xs, axis=self.axis)

    def backward(self, g):
        axis = self.axis % g.ndim
        return tuple(g[(slice(None),) * axis + (i,)] for i in range(g.shape[axis]))


class Clone(Function):
    """y = a copy of x;  dx = g."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Cast(Function):
    """y = x as another dtype;  dx = g cast back."""

    def __init__(self, dtype):
        self.dtype = numpy.dtype(dtype)

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)


class ToDevice(Function):
    """y = x copied to another device;  dx = g copied back."""

    def __init__(self, device):
        self.device = backend.normalize_device(device)

    def forward(self, x):
        self.in_device = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, g):
        return backend.to_device(g, self.in_device)


def _axis_or_dim(name, axis, dim):
    if dim is not None and axis is not None:
        raise TypeError(f"{name}(): give dim= or axis=, not both")
    return dim if dim is not None else (0 if axis is None else axis)


def concat(tensors, axis=None, *, dim=None):
    """Join tensors along an existing axis (``torch.cat``; ``dim=`` or ``axis=``, default 0)."""
    return Concat(_axis_or_dim("concat", axis, dim))(*tensors)


cat = concat


def stack(tensors, axis=None, *, dim=None):
    """Join tensors along a new axis (``dim=`` or ``axis=``, default 0)."""
    return Stack(_axis_or_dim("stack", axis, dim))(*tensors)


# Tensor's operators and methods call these classes (see the operator table in minicnn/tensor.py).
register_operators(Add=Add, Sub=Sub, Mul=Mul, Div=Div, Neg=Neg, PowScalar=PowScalar, Pow=Pow,
                   MatMul=MatMul, Sum=Sum, Mean=Mean, Max=Max, Reshape=Reshape, Transpose=Transpose,
                   Exp=Exp, Log=Log, Abs=Abs, GetItem=GetItem, Clone=Clone, Cast=Cast, ToDevice=ToDevice)

# -- gradient-check cases for ``minicnn gradcheck`` ---------------------------------------------
def _t(*shape, positive=False, seed=0):
    r = numpy.random.default_rng(seed).standard_normal(shape)
    return Tensor(numpy.abs(r) + 0.5 if positive else r, requires_grad=True)


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("add", "broadcast (3,1,4)+(5,1)", lambda: (lambda a, b: a + b, [_t(3, 1, 4), _t(5, 1, seed=1)])),
    ("sub", "broadcast (2,3)-(3,)", lambda: (lambda a, b: a - b, [_t(2, 3), _t(3, seed=1)])),
    ("mul", "broadcast (4,3)*(4,1)", lambda: (lambda a, b: a * b, [_t(4, 3), _t(4, 1, seed=1)])),
    ("div", "(3,4)/(3,4)", lambda: (lambda a, b: a / b, [_t(3, 4), _t(3, 4, positive=True, seed=1)])),
    ("neg", "(3,4)", lambda: (lambda a: -a, [_t(3, 4)])),
    ("pow", "x**3 and a**b", lambda: (lambda a, b: a ** 3 + a ** b,
                                                    [_t(3, 4, positive=True), _t(3, 4, seed=1)])),
    ("matmul", "batched (2,3,4)@(4,5)", lambda: (lambda a, b: a @ b, [_t(2, 3, 4), _t(4, 5, seed=1)])),
    ("matmul", "batch broadcast (1,3,4)@(2,4,5)", lambda: (lambda a, b: a @ b,
                                                           [_t(1, 3, 4), _t(2, 4, 5, seed=1)])),
    ("pow", "broadcast (3,4)**(4,)", lambda: (lambda a, b: a ** b,
                                              [_t(3, 4, positive=True), _t(4, seed=1)])),
    ("div", "broadcast (2,1)/(3,)", lambda: (lambda a, b: a / b,
                                             [_t(2, 1), _t(3, positive=True, seed=1)])),
    ("matmul", "vector (4,)@(4,5)", lambda: (lambda a, b: a @ b, [_t(4), _t(4, 5, seed=1)])),
    ("sum", "axis=(0,2) keepdims", lambda: (lambda a: a.sum(axis=(0, 2), keepdims=True), [_t(2, 3, 4)])),
    ("mean", "axis=1", lambda: (lambda a: a.mean(axis=1), [_t(2, 3, 4)])),
    ("max", "axis=-1", lambda: (lambda a: a.max(axis=-1), [_t(3, 5)])),
    ("reshape", "(2,3,4)->(6,4)", lambda: (lambda a: a.reshape(6, 4), [_t(2, 3, 4)])),
    ("transpose", "(2,3,4) axes (2,0,1)", lambda: (lambda a: a.transpose(2, 0, 1), [_t(2, 3, 4)])),
    ("exp", "(3,4)", lambda: (lambda a: a.exp(), [_t(3, 4)])),
    ("abs", "(3,4)", lambda: (lambda a: a.abs(), [_t(3, 4)])),
    ("norm", "p=2, p=1 and inf over axis 1", lambda: (lambda a: a.norm() + a.norm(p=1, dim=1).sum()
                                                       + a.norm(p=float("inf")), [_t(3, 4)])),
    ("log", "(3,4)", lambda: (lambda a: a.log(), [_t(3, 4, positive=True)])),
    ("getitem", "slices and repeated int array", lambda: (
        lambda a: a[1:, ::2] * 2 + a[numpy.array([0, 0, 2])].sum(), [_t(3, 4)])),
    ("getitem", "boolean mask", lambda: (lambda a: a[a.data > 0], [_t(4, 5)])),
    ("concat", "axis=1", lambda: (lambda a, b: concat([a, b], axis=1), [_t(2, 3), _t(2, 5, seed=1)])),
    ("clone", "(3,4)", lambda: (lambda a: a.clone() * a, [_t(3, 4)])),
    ("stack", "axis=0", lambda: (lambda a, b: stack([a, b], axis=0), [_t(2, 3), _t(2, 3, seed=1)])),
]
