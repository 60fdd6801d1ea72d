"""PyTorch's top-level functions: tensor factories, ``device``, ``inference_mode``, the
reductions PyTorch also offers as functions (``mc.max(x, 1)``, ``mc.flatten(x, 1)``), and
comparisons, ``clamp`` and ``topk`` (also tensor methods: ``t.eq(u)``, ``t.clamp(0, 1)``,
``t.topk(5)``; the two differentiable ones are the ``Function``s ``Clamp`` and ``TopK`` here).

Each factory builds its array on the host and moves it to ``device`` ("cpu" by default).
Python-style sizes work both ways: ``mc.zeros(2, 3)`` and ``mc.zeros((2, 3))``. The random ones
(``rand``, ``randn``, ``randint``) draw from :func:`minicnn.rng.generator`, so
``mc.manual_seed(seed)`` makes them repeatable, like every other random draw in minicnn.
"""
import numpy

from . import backend, rng
from .function import Function, no_grad
from .tensor import Tensor, ValuesIndices, as_tensor, register_operators, tensor


class device(str):
    """``mc.device("cuda")``, ``mc.device("cuda:0")``, ``mc.device("cpu")``: a device name.

    It is a ``str`` (``"cpu"`` or ``"cuda"``, or a test device of ``minicnn.testing``), so it goes
    wherever minicnn takes a device string (``t.to(dev)``, ``model.to(dev)``); ``.type`` and
    ``.index`` are PyTorch's attributes. minicnn drives one GPU, so an index other than 0 is refused.
    """

    def __new__(cls, type, index=None):
        name = str(type).lower()
        if ":" in name:
            name, _, number = name.partition(":")
            index = int(number)
        if index not in (None, 0):
            raise ValueError(f"device: minicnn uses a single device of each type, got {type!r} "
                             f"with index {index}")
        obj = super().__new__(cls, backend.normalize_device(name))
        obj.index = index
        return obj

    @property
    def type(self):
        """``"cpu"`` or ``"cuda"`` (or a test device's name)."""
        return str(self)

    def __repr__(self):
        return f"device(type={str(self)!r})"


class inference_mode(no_grad):
    """``with mc.inference_mode():`` is ``no_grad`` (PyTorch's faster variant of it; here the
    same thing). ``inference_mode(False)`` leaves gradient recording as it is."""

    def __init__(self, mode=True):
        self.mode = mode

    def __enter__(self):
        if self.mode:
            super().__enter__()

    def __exit__(self, *exc):
        return super().__exit__(*exc) if self.mode else False


# -- factories --------------------------------------------------------------------------------
def _shape(size, name):
    """``(2, 3)`` from ``f(2, 3)`` or ``f((2, 3))``."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (int, numpy.integer)) and n >= 0 for n in size):
        raise ValueError(f"{name}: sizes must be non-negative ints, got {size}")
    return tuple(int(n) for n in size)


def _make(host_array, dtype, device, requires_grad):
    if dtype is not None:
        host_array = host_array.astype(dtype, copy=False)
    array = backend.to_device(host_array, "cpu" if device is None else device)
    return Tensor(array, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros (float32 unless ``dtype`` is given)."""
    return _make(numpy.zeros(_shape(size, "zeros"), numpy.float32), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones (float32 unless ``dtype`` is given)."""
    return _make(numpy.ones(_shape(size, "ones"), numpy.float32), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of shape ``size`` filled with ``fill_value`` (its dtype follows the value, as
    ``torch.full``: float32 for a float, int64 for an int)."""
    value = tensor(fill_value).data  # Python number -> float32 / int64 0-d array
    host = numpy.full(_shape((size,), "full"), value, dtype=value.dtype)
    return _make(host, dtype, device, requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    """Zeros with ``t``'s shape, dtype and device (unless given)."""
    t = as_tensor(t)
    return _make(numpy.zeros(t.shape, t.dtype), dtype, device or t.device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    """Ones with ``t``'s shape, dtype and device (unless given)."""
    t = as_tensor(t)
    return _make(numpy.ones(t.shape, t.dtype), dtype, device or t.device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform draws from [0, 1) (float32), from minicnn's seeded generator."""
    host = rng.generator().random(_shape(size, "rand"), dtype=numpy.float32)
    return _make(host, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal draws (float32), from minicnn's seeded generator."""
    host = rng.generator().standard_normal(_shape(size, "randn"), dtype=numpy.float32)
    return _make(host, dtype, device, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers from ``[low, high)`` (int64): ``randint(high, size)`` or ``randint(low, high, size)``."""
    if size is None:  # randint(high, size): the second argument was the size
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: give a size, e.g. randint(10, (3,)) or randint(0, 10, (3,))")
    size = _shape(size if isinstance(size, (tuple, list)) else (size,), "randint")
    host = rng.generator().integers(low, high, size, dtype=numpy.int64)
    return _make(host, dtype, device, False)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """``start, start + step, ...`` below ``end`` (``arange(5)`` is 0..4); int64 when every
    bound is an int, float32 otherwise, as ``torch.arange``."""
    if end is None:
        start, end = 0, start
    integral = all(isinstance(v, (int, numpy.integer)) for v in (start, end, step))
    host = numpy.arange(start, end, step, dtype=numpy.int64 if integral else numpy.float32)
    return _make(host, dtype, device, requires_grad)


def from_numpy(array):
    """A tensor sharing ``array``'s memory and keeping its dtype (``torch.from_numpy``)."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


# -- reductions and shape ops as functions ------------------------------------------------------
def flatten(t, start_dim=0, end_dim=-1):
    """``t.flatten(start_dim, end_dim)`` (all axes by default; ``nn.functional.flatten`` and
    ``nn.Flatten`` start at 1)."""
    return as_tensor(t).flatten(start_dim, end_dim)


def max(t, dim=None, keepdim=False, **numpy_spelling):
    """``mc.max(t)`` (a 0-d tensor) or ``mc.max(t, dim)`` (``(values, indices)``), as ``t.max``."""
    return as_tensor(t).max(dim, keepdim, **numpy_spelling)


def min(t, dim=None, keepdim=False, **numpy_spelling):
    """``mc.min(t)`` or ``mc.min(t, dim)`` (``(values, indices)``), as ``t.min``."""
    return as_tensor(t).min(dim, keepdim, **numpy_spelling)


def argmax(t, dim=None, keepdim=False, **numpy_spelling):
    """``t.argmax(dim, keepdim)``."""
    return as_tensor(t).argmax(dim, keepdim, **numpy_spelling)


def argmin(t, dim=None, keepdim=False, **numpy_spelling):
    """``t.argmin(dim, keepdim)``."""
    return as_tensor(t).argmin(dim, keepdim, **numpy_spelling)


def sum(t, dim=None, keepdim=False, **numpy_spelling):
    """``t.sum(dim, keepdim)``."""
    return as_tensor(t).sum(dim, keepdim, **numpy_spelling)


def mean(t, dim=None, keepdim=False, **numpy_spelling):
    """``t.mean(dim, keepdim)``."""
    return as_tensor(t).mean(dim, keepdim, **numpy_spelling)


def exp(t):
    """Element-wise e**t."""
    return as_tensor(t).exp()


def log(t):
    """Element-wise natural logarithm."""
    return as_tensor(t).log()


def softmax(t, dim=-1, **numpy_spelling):
    """``t.softmax(dim)``."""
    return as_tensor(t).softmax(dim, **numpy_spelling)


def log_softmax(t, dim=-1, **numpy_spelling):
    """``t.log_softmax(dim)``."""
    return as_tensor(t).log_softmax(dim, **numpy_spelling)


def reshape(t, *shape):
    """``t.reshape(*shape)``."""
    return as_tensor(t).reshape(*shape)


def is_tensor(obj):
    """True for a :class:`minicnn.Tensor`."""
    return isinstance(obj, Tensor)


def numel(t):
    """Number of elements of ``t``."""
    return as_tensor(t).numel()


# -- comparisons ---------------------------------------------------------------------------------
def eq(input, other):
    """Element-wise ``input == other`` (a boolean tensor; ``other`` may be a number or broadcast)."""
    return as_tensor(input) == other


def equal(input, other):
    """``True`` when both have the same shape and the same values (dtypes may differ: an int
    ``[1, 2]`` equals a float ``[1., 2.]``), as ``torch.equal``; a Python bool."""
    input, other = as_tensor(input), as_tensor(other)
    backend.check_same_device("equal", [input.data, other.data])
    return input.shape == other.shape and bool((input.data == other.data).all())


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``True`` when ``|input - other| <= atol + rtol * |other|`` everywhere (broadcast), as
    ``torch.allclose``: both must have the same dtype (compare float32 with float64 after
    ``.double()``); NaNs count as equal only with ``equal_nan=True``."""
    input, other = as_tensor(input), as_tensor(other)
    if input.dtype != other.dtype:
        raise TypeError(f"allclose: the tensors' dtypes differ ({input.dtype} and {other.dtype}); "
                        f"convert one first, e.g. a.double() or b.to(a.dtype)")
    backend.check_same_device("allclose", [input.data, other.data])
    xp = backend.get_array_module(input.data)
    return bool(xp.allclose(input.data, other.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


# -- clamp -------------------------------------------------------------------------------------------
class Clamp(Function):
    """y = min(max(x, low), high);  dx = g where low <= x <= high (the bounds themselves count as
    inside, as in PyTorch), 0 elsewhere. With low > high every y is ``high`` and dx is 0."""

    def __init__(self, low, high):
        self.low, self.high = low, high  # numbers, arrays on x's device, or None

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        if self.low is not None:
            self.inside &= x >= self.low
        if self.high is not None:
            self.inside &= x <= self.high
        y = xp.clip(x, self.low, self.high)
        if x.dtype.kind in "iu" and any(isinstance(b, float) for b in (self.low, self.high)):
            return y.astype(numpy.float32)  # an int tensor clamped to a float bound: float32, as torch
        return y

    def backward(self, g):
        return g * self.inside


def _bound(value, x, name):
    """A clamp bound as Clamp takes it: None, a Python number, or an array on ``x``'s device."""
    if value is None or backend.is_scalar(value):
        return value
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise ValueError(f"clamp: {name}= is a tensor that requires grad; minicnn's clamp takes "
                             f"no gradient for its bounds: pass {name}={name}.detach()")
        value = value.data
    elif not backend.is_array(value):
        value = backend.to_device(tensor(value).data, x.device)  # a list
    backend.check_same_device("clamp", [x.data, value])
    return value


def clamp(input, min=None, max=None):
    """Limit every element to ``[min, max]`` (either may be None; numbers or tensors that
    broadcast), as ``torch.clamp``; differentiable in ``input`` (gradient 1 inside the range,
    bounds included, 0 outside). ``clip`` is the same function."""
    input = as_tensor(input)
    if min is None and max is None:
        raise ValueError("clamp: give min=, max= or both (both are None)")
    return Clamp(_bound(min, input, "min"), _bound(max, input, "max"))(input)


clip = clamp


# -- topk ---------------------------------------------------------------------------------------------
class TopK(Function):
    """The ``k`` largest (or smallest) entries along ``axis`` and where they are;  dx = g put back
    at those positions, 0 elsewhere. Worked with ``axis`` moved last and the rest flattened into
    rows: ``(rows, n)`` -> ``(rows, k)``."""

    def __init__(self, k, axis, largest=True):
        self.k, self.axis, self.largest = k, axis, largest

    def forward(self, x):
        xp = backend.get_array_module(x)
        last = xp.moveaxis(x, self.axis, -1)
        self.shape = last.shape
        rows = last.reshape(-1, last.shape[-1])
        keys = rows.astype(numpy.int64) if rows.dtype.kind in "bu" else rows
        if self.largest:  # descending, NaN first (as torch); equal values in order of position
            order = (rows.shape[1] - 1 - xp.argsort(keys[:, ::-1], axis=1, kind="stable"))[:, ::-1]
        else:             # ascending, NaN last
            order = xp.argsort(keys, axis=1, kind="stable")
        self.picked = order[:, :self.k]                       # (rows, k) column of each entry
        values = xp.take_along_axis(rows, self.picked, axis=1)
        out_shape = self.shape[:-1] + (self.k,)
        self.indices = xp.moveaxis(self.picked.reshape(out_shape), -1, self.axis)
        return xp.moveaxis(values.reshape(out_shape), -1, self.axis)

    def backward(self, g):
        xp = backend.get_array_module(g)
        rows = self.picked.shape[0]
        g_rows = xp.moveaxis(g, self.axis, -1).reshape(rows, self.k)
        dx = xp.zeros((rows, self.shape[-1]), dtype=g.dtype)
        dx[xp.arange(rows)[:, None], self.picked] = g_rows  # k distinct columns in each row
        return xp.moveaxis(dx.reshape(self.shape), -1, self.axis)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest elements along ``dim`` (the smallest with ``largest=False``), as
    ``torch.topk``: ``(values, indices)``, values differentiable, indices int64. They come
    sorted (largest first, or smallest first) whatever ``sorted`` says (PyTorch leaves the order
    unspecified for ``sorted=False``). NaN counts as the largest value; equal values come in
    the order of their positions (PyTorch promises no order among them)."""
    input = as_tensor(input)
    if input.ndim == 0:  # a 0-d tensor is one element along dim 0 or -1
        values, indices = topk(input.reshape(1), k, 0, largest, sorted)
        return ValuesIndices(values.reshape(()), indices.reshape(()))
    if not -input.ndim <= dim < input.ndim:
        raise ValueError(f"topk: dim={dim} is out of range for a tensor of shape {input.shape}")
    size = input.shape[dim]
    if isinstance(k, bool) or not isinstance(k, (int, numpy.integer)) or not 0 <= k <= size:
        raise ValueError(f"topk: k={k!r} must be an int from 0 to {size}, the size of dim {dim} "
                         f"of the input of shape {input.shape}")
    op = TopK(int(k), dim % input.ndim, largest)
    values = op(input)
    return ValuesIndices(values, Tensor(op.indices.astype(numpy.int64)))


register_operators(eq=eq, allclose=allclose, clamp=clamp, topk=topk)  # the Tensor methods


def _t(*shape, seed=0):
    r = numpy.random.default_rng(seed).standard_normal(shape)
    return Tensor(r, requires_grad=True)


GRADCHECK_CASES = [  # (op, case, make): make() returns (fn, inputs) for gradcheck
    ("clamp", "(3,4) to [-0.5, 0.7]", lambda: (lambda a: clamp(a, -0.5, 0.7) * a, [_t(3, 4)])),
    ("clamp", "(3,4) min only, tensor bound", lambda: (
        lambda a: clamp(a, min=backend.to_device(numpy.linspace(-1, 1, 4), a.device)), [_t(3, 4)])),
    ("topk", "(3,5) k=2 dim=1", lambda: (lambda a: topk(a, 2, dim=1).values * a[:, :2], [_t(3, 5)])),
    ("topk", "(4,3,2) k=3 dim=0 smallest", lambda: (lambda a: topk(a, 3, 0, largest=False).values,
                                                    [_t(4, 3, 2)])),
]
