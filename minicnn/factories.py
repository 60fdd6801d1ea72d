"""PyTorch's top-level functions: tensor factories, ``device``, ``inference_mode``, and the
reductions PyTorch also offers as functions (``mc.max(x, 1)``, ``mc.flatten(x, 1)``).

Each factory builds its array on the host and moves it to ``device`` ("cpu" by default).
Python-style sizes work both ways: ``mc.zeros(2, 3)`` and ``mc.zeros((2, 3))``. The random ones
(``rand``, ``randn``, ``randint``) draw from :func:`minicnn.rng.generator`, so
``mc.manual_seed(seed)`` makes them repeatable, like every other random draw in minicnn.
"""
import numpy

from . import backend, rng
from .function import no_grad
from .tensor import Tensor, as_tensor


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
    value = Tensor(fill_value).data  # Python number -> float32 / int64 0-d array
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
