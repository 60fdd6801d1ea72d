"""``Tensor``: a backend array plus what autograd needs (``requires_grad``, ``grad``, its creator).

Every operator on a tensor (``+``, ``@``, ``t.sum()``, ``t[idx]`` ...) is a ``Function`` from
:mod:`minicnn.ops`; nothing here does math on gradients itself.
"""
import numpy

from . import backend
from .function import backward as _backward_walk


def _as_array(data):
    """Python data -> float32 NumPy; backend arrays keep their dtype and device."""
    if isinstance(data, Tensor):
        return data.data
    if backend.is_array(data):
        return data
    if isinstance(data, numpy.generic):
        return numpy.asarray(data)
    array = numpy.asarray(data)
    if array.dtype.kind in "iuf":  # Python numbers and lists become float32
        array = array.astype(numpy.float32)
    return array


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False)``: ``data`` is a list, a Python number, a NumPy array or a
    CuPy array. Python numbers and lists become float32; arrays keep their dtype and device.
    """

    __array_priority__ = 1000  # make numpy defer to Tensor's reflected operators

    def __init__(self, data, requires_grad=False):
        self.data = _as_array(data)
        if requires_grad and self.data.dtype.kind not in "fc":
            raise ValueError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._creator = None
        self._graph_freed = False

    # -- description --------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape), doc="The shape, a tuple of ints.")
    dtype = property(lambda self: self.data.dtype, doc="The array dtype.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    device = property(lambda self: backend.device_of(self.data), doc='"cpu", "standin" or "cuda".')

    @property
    def size(self):
        """Number of elements."""
        return int(self.data.size)

    @property
    def is_leaf(self):
        """True for tensors created by the user rather than by an op."""
        return self._creator is None and not self._graph_freed

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = numpy.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}{dev}{grad})"

    # -- autograd -----------------------------------------------------------------------
    def backward(self, grad=None):
        """Compute the gradient of this tensor w.r.t. every leaf that requires grad.

        ``grad`` (an array or Tensor of this tensor's shape) is the upstream gradient; it defaults to
        1 when the tensor has one element. Leaf gradients accumulate (``+=``) until cleared.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph")
        if self._graph_freed:
            raise RuntimeError("backward(): the graph behind this tensor was already freed by an "
                               "earlier backward(); recompute the forward pass")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(f"backward(): grad must be given for a non-scalar tensor of shape "
                                 f"{self.shape}")
            grad = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if not backend.is_array(grad) or backend.device_of(grad) != self.device:
                grad = backend.to_device(numpy.asarray(backend.to_numpy(grad)), self.device)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(): grad has shape {tuple(grad.shape)}, expected {self.shape}")
            grad = grad.astype(self.dtype, copy=False)
        _backward_walk(self, grad)

    def _accumulate(self, g):
        if self._graph_freed:
            raise RuntimeError("backward through a graph that was already freed by an earlier "
                               "backward(); recompute the forward pass")
        g = g.astype(self.dtype, copy=False)
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def detach(self):
        """A new leaf tensor sharing this tensor's data, cut from the graph."""
        return Tensor(self.data, requires_grad=False)

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place (leaves only) and return self."""
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad can only be changed on leaf tensors")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Clear the gradient (``grad = None``)."""
        self.grad = None

    # -- host/device --------------------------------------------------------------------
    def numpy(self):
        """A host NumPy copy of the data."""
        return numpy.array(backend.to_numpy(self.data), copy=True)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item(): tensor has {self.size} elements, expected 1")
        return self.data.reshape(()).item() if hasattr(self.data, "item") else float(self.data)

    def tolist(self):
        """The data as nested Python lists."""
        return backend.to_numpy(self.data).tolist()

    def to(self, device=None, dtype=None):
        """Move to ``device`` ("cpu", "cuda", "standin") and/or cast to ``dtype``; differentiable."""
        from .ops import Cast, ToDevice
        out = self
        if device is not None and backend.normalize_device(device) != self.device:
            out = ToDevice(device)(out)
        if dtype is not None and numpy.dtype(dtype) != self.dtype:
            out = Cast(dtype)(out)
        return out

    def cpu(self):
        """A copy on the host ("cpu"); differentiable."""
        return self.to("cpu")

    def cuda(self):
        """A copy on the GPU ("cuda", needs CuPy); differentiable."""
        return self.to("cuda")

    def astype(self, dtype):
        """A copy cast to ``dtype``; differentiable."""
        return self.to(dtype=dtype)

    def float(self):
        """A float32 copy; differentiable."""
        return self.to(dtype=numpy.float32)

    def double(self):
        """A float64 copy (for gradient checks); differentiable."""
        return self.to(dtype=numpy.float64)

    # -- differentiable operators --------------------------------------------------------
    def __add__(self, other):
        from .ops import Add
        return Add()(self, _lift(other, self))

    def __radd__(self, other):
        from .ops import Add
        return Add()(_lift(other, self), self)

    def __sub__(self, other):
        from .ops import Sub
        return Sub()(self, _lift(other, self))

    def __rsub__(self, other):
        from .ops import Sub
        return Sub()(_lift(other, self), self)

    def __mul__(self, other):
        from .ops import Mul
        return Mul()(self, _lift(other, self))

    def __rmul__(self, other):
        from .ops import Mul
        return Mul()(_lift(other, self), self)

    def __truediv__(self, other):
        from .ops import Div
        return Div()(self, _lift(other, self))

    def __rtruediv__(self, other):
        from .ops import Div
        return Div()(_lift(other, self), self)

    def __pow__(self, exponent):
        from .ops import Pow, PowScalar
        if isinstance(exponent, Tensor):
            return Pow()(self, exponent)
        return PowScalar(exponent)(self)

    def __rpow__(self, base):
        from .ops import Pow
        return Pow()(_lift(base, self), self)

    def __matmul__(self, other):
        from .ops import MatMul
        return MatMul()(self, _lift(other, self))

    def __rmatmul__(self, other):
        from .ops import MatMul
        return MatMul()(_lift(other, self), self)

    def __neg__(self):
        from .ops import Neg
        return Neg()(self)

    def __pos__(self):
        return self

    def __getitem__(self, index):
        from .ops import GetItem
        return GetItem(index)(self)

    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (all axes by default); a full reduction returns a 0-d tensor."""
        from .ops import Sum
        return Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (all axes by default)."""
        from .ops import Mean
        return Mean(axis, keepdims)(self)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; the gradient goes to the maximum (split between ties)."""
        from .ops import Max
        return Max(axis, keepdims)(self)

    def reshape(self, *shape):
        """The same elements in a new shape (``reshape(2, -1)`` or ``reshape((2, -1))``)."""
        from .ops import Reshape
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)

    def view(self, *shape):
        """Same as :meth:`reshape`."""
        return self.reshape(*shape)

    def flatten(self, start_dim=0):
        """Merge the axes from ``start_dim`` on into one."""
        return self.reshape(*self.shape[:start_dim], -1)

    def transpose(self, *axes):
        """Permute the axes (reverse them when none are given), as ``numpy.transpose``."""
        from .ops import Transpose
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Transpose(axes or None)(self)

    @property
    def T(self):
        return self.transpose()

    def exp(self):
        """Element-wise e**x."""
        from .ops import Exp
        return Exp()(self)

    def log(self):
        """Element-wise natural logarithm."""
        from .ops import Log
        return Log()(self)

    def sqrt(self):
        """Element-wise square root (``self ** 0.5``)."""
        return self ** 0.5

    # -- comparisons and other non-differentiable helpers (results need no gradient) ------
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def argmax(self, axis=None):
        """Indices of the maxima (not differentiable)."""
        return Tensor(self.data.argmax(axis=axis))

    __hash__ = object.__hash__


def _lift(value, like):
    """Scalars and arrays -> constant tensors on ``like``'s device; scalars take ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value
    xp = backend.get_array_module(like.data)
    if backend.is_scalar(value):
        dtype = like.dtype if like.dtype.kind == "f" else numpy.result_type(value)
        return Tensor(xp.asarray(value, dtype=dtype))
    if backend.is_array(value):
        return Tensor(value)
    return Tensor(xp.asarray(_as_array(value)))


def as_tensor(value):
    """Wrap an array-like in a constant Tensor (Tensors pass through)."""
    return value if isinstance(value, Tensor) else Tensor(value)


def tensor(data, requires_grad=False):
    """Same as ``Tensor(data, requires_grad)``, as in PyTorch."""
    return Tensor(data, requires_grad=requires_grad)
