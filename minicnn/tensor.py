"""``Tensor``: a backend array plus what autograd needs (``requires_grad``, ``grad``, its creator).

Every differentiable operator on a tensor (``+``, ``@``, ``t.sum()``, ``t[idx]`` ...) is a
``Function`` from :mod:`minicnn.ops`; nothing here does math on gradients itself. The methods
find those classes in the operator table ``_ops``, which ``minicnn.ops`` fills once when it is
imported (``register_operators``): ``ops`` imports this module, never the other way round, so
``tensor.py`` can be read (and imported) on its own.

Spellings: PyTorch's (``dim=``, ``keepdim=``, ``size()``, ``numel()``, ``t.max(1)`` giving
values and indices) and NumPy's (``axis=``, ``keepdims=``) both work; see docs/from-pytorch.md.
"""
import collections
import types

import numpy

from . import backend
from . import function
from .function import backward as _backward_walk

_ops = types.SimpleNamespace()
"""The operator table: ``_ops.Add`` is :class:`minicnn.ops.Add`, and so on (filled by ``ops``)."""


def register_operators(**functions):
    """Put ``Function`` classes into the operator table (``minicnn.ops`` calls this at import)."""
    vars(_ops).update(functions)


ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])
"""What ``t.max(dim)`` and ``t.min(dim)`` return, as PyTorch's ``torch.return_types.max``."""


def _as_array(data):
    """Python data -> NumPy (floats float32, ints int64); backend arrays keep dtype and device."""
    if isinstance(data, Tensor):
        return data.data
    if backend.is_array(data):
        return data
    if isinstance(data, numpy.generic):
        return numpy.asarray(data)
    array = numpy.asarray(data)
    if array.dtype.kind == "f":  # Python floats and float lists become float32, as in PyTorch
        array = array.astype(numpy.float32)
    elif array.dtype.kind in "iu":  # Python ints become int64
        array = array.astype(numpy.int64)
    return array


def _constructor_data(args):
    """What ``Tensor(*args)`` holds, as ``torch.Tensor``: ``Tensor(2, 3)`` (Python ints) is a
    (2, 3) float32 tensor of zeros (uninitialised memory in PyTorch), ``Tensor()`` an empty one;
    ``Tensor(data)``: Python numbers and lists of them become float32, while arrays (and NumPy
    scalars) keep their dtype and device (PyTorch makes them float32 too)."""
    if all(isinstance(n, int) and not isinstance(n, bool) for n in args):  # sizes
        if any(n < 0 for n in args):
            raise ValueError(f"Tensor{args}: sizes must be non-negative")
        return numpy.zeros(args or (0,), numpy.float32)
    if len(args) != 1:
        raise TypeError(f"Tensor(*sizes) takes Python ints, Tensor(data) one list or array; got "
                        f"{len(args)} arguments ({', '.join(type(a).__name__ for a in args)})")
    data = args[0]
    if isinstance(data, (Tensor, numpy.generic)) or backend.is_array(data):
        return _as_array(data)
    if isinstance(data, (float, bool, complex)):
        raise TypeError(f"Tensor({data!r}): one number is read as a size, as torch.Tensor does; "
                        f"for a 0-d tensor holding it write mc.tensor({data!r})")
    array = _as_array(data)
    return array.astype(numpy.float32) if array.dtype.kind in "biu" else array  # as torch.Tensor


def _one_spelling(name, torch_value, numpy_value, torch_name, numpy_name, default=None):
    """The value given as ``dim=`` (PyTorch) or ``axis=`` (NumPy); both at once is an error."""
    if torch_value is not None and numpy_value is not None:
        raise TypeError(f"{name}(): give {torch_name}= or {numpy_name}=, not both")
    if torch_value is not None:
        return torch_value
    return default if numpy_value is None else numpy_value


def _is_dtype(value):
    """True for what ``numpy.dtype`` accepts as a type (``numpy.float32``, ``"int64"`` is not)."""
    return isinstance(value, numpy.dtype) or (isinstance(value, type) and issubclass(value, numpy.generic))


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False)``: ``data`` is a list, a NumPy array or a CuPy array.
    Python numbers become float32, as ``torch.Tensor`` (``mc.tensor`` keeps ints int64); arrays
    keep their dtype and device. ``Tensor(2, 3)`` is a (2, 3) float32 tensor of zeros.
    """

    __array_priority__ = 1000  # make numpy defer to Tensor's reflected operators

    def __init__(self, *data, requires_grad=False):
        self.data = _constructor_data(data)
        if requires_grad and self.data.dtype.kind not in "fc":
            raise ValueError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self._grad = None
        self._creator = None
        self._graph_freed = False
        self._version = 0  # how many in-place changes (the backward walk checks what ops saved)
        self._hooks = {}  # register_hook: key -> hook(grad), run in order by the backward walk
        self._retains_grad = False  # retain_grad(): a non-leaf keeps its gradient in .grad

    # -- description --------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape), doc="The shape, a tuple of ints.")
    dtype = property(lambda self: self.data.dtype, doc="The array dtype.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    device = property(lambda self: backend.device_of(self.data), doc='"cpu" or "cuda" (or a test device).')

    def size(self, dim=None):
        """The shape (``size()``), or the length of axis ``dim`` (``size(0)``), as in PyTorch."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        """Number of elements."""
        return int(self.data.size)

    def dim(self):
        """Number of dimensions (same as ``ndim``)."""
        return self.data.ndim

    @property
    def is_leaf(self):
        """True for tensors created by the user rather than by an op."""
        return self._creator is None and not self._graph_freed

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """Iterate over the first axis (``for row in t``), as PyTorch and NumPy do."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = numpy.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}{dev}{grad})"

    # -- one-element tensors as Python numbers --------------------------------------------
    def _scalar(self, what):
        if self.numel() != 1:
            raise ValueError(f"{what}: only a one-element tensor can be converted to a Python "
                             f"number; this one has shape {self.shape}")
        return self.item()

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.numel()} elements is "
                               f"ambiguous; use t.any() or t.all()")
        return bool(self.item())

    def __int__(self):
        return int(self._scalar("int()"))

    def __float__(self):
        return float(self._scalar("float()"))

    def __index__(self):
        """An integer one-element tensor used as an index (``classes[label]``)."""
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self._scalar("index"))

    def __format__(self, spec):
        """``f"{loss:.3f}"`` formats a one-element tensor's value; others need an empty spec."""
        if self.numel() == 1:
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"format spec {spec!r} needs a one-element tensor, got shape {self.shape}")
        return repr(self)

    def __array__(self, dtype=None, copy=None):
        """``numpy.asarray(t)``: the data on the host (a copy when it lives on a GPU)."""
        host = backend.to_numpy(self.data)
        return host if dtype is None else host.astype(dtype, copy=False)

    # -- autograd -----------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False, *, gradient=None):
        """Compute the gradient of this tensor w.r.t. every leaf that requires grad.

        ``grad`` (an array or Tensor of this tensor's shape; PyTorch's keyword ``gradient=`` works
        too) is the upstream gradient; it defaults to 1 when the tensor has one element. Leaf
        gradients accumulate (``+=``) until cleared. The graph is freed afterwards unless
        ``retain_graph=True`` (then ``backward`` may run again).
        """
        grad = _one_spelling("backward", gradient, grad, "gradient", "grad")
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph")
        if self._graph_freed:
            raise RuntimeError("backward(): the graph behind this tensor was already freed by an "
                               "earlier backward(); recompute the forward pass, or pass "
                               "retain_graph=True to the first backward()")
        _backward_walk(self, self._upstream_gradient(grad, "backward()"), retain_graph=retain_graph)

    def _upstream_gradient(self, grad, caller):
        """``grad`` (None, an array or a Tensor) as a new backend array of this tensor's shape,
        dtype and device, for ``caller`` (None: ones, for a one-element tensor)."""
        if grad is None:
            if self.numel() != 1:
                raise ValueError(f"{caller}: grad must be given for a non-scalar tensor of shape "
                                 f"{self.shape}")
            return backend.get_array_module(self.data).ones(self.shape, dtype=self.dtype)
        grad = grad.data if isinstance(grad, Tensor) else grad
        if not backend.is_array(grad) or backend.device_of(grad) != self.device:
            grad = backend.to_device(numpy.asarray(backend.to_numpy(grad)), self.device)
        if tuple(grad.shape) != self.shape:
            raise ValueError(f"{caller}: grad has shape {tuple(grad.shape)}, expected {self.shape}")
        return grad.astype(self.dtype, copy=True)  # the caller's array is never kept as a .grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` each time the backward walk has this tensor's whole gradient (a
        Tensor); a hook that returns a Tensor replaces the gradient (for the rest of the walk, and
        for a leaf before it accumulates into ``.grad``). Hooks run in the order registered.
        Returns a handle whose ``.remove()`` unregisters the hook, as in PyTorch."""
        if not self.requires_grad:
            raise RuntimeError(f"register_hook(): this tensor (shape {self.shape}) does not require "
                               f"grad, so no gradient will reach it")
        key = object()
        self._hooks[key] = hook
        return function.RemovableHandle(self._hooks, key)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` (accumulated, as a leaf's), after its
        hooks have run. Leaves keep theirs anyway."""
        if not self.requires_grad:
            raise RuntimeError(f"retain_grad(): this tensor (shape {self.shape}) does not require grad")
        self._retains_grad = not self.is_leaf

    @property
    def retains_grad(self):
        """True for a non-leaf tensor whose ``retain_grad()`` was called."""
        return self._retains_grad

    @property
    def grad(self):
        """``None``, or a Tensor with this tensor's shape, dtype and device that holds the
        gradient (and needs none of its own), as in PyTorch: ``p.grad.data`` is its array,
        ``p.grad.zero_()`` clears it in place. Set it to a Tensor of the same shape, or ``None``."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__} "
                                f"(wrap an array: mc.Tensor(array))")
            if value.shape != self.shape or value.device != self.device:
                raise ValueError(f"grad of shape {value.shape} on {value.device} for a tensor of "
                                 f"shape {self.shape} on {self.device}")
        self._grad = value

    def _accumulate(self, g, owned=False):
        """``grad += g``. The first gradient is copied unless ``owned`` (the backward walk's word
        that ``g`` is a new array nothing else holds: see ``function._accumulate_leaves``)."""
        if self._graph_freed:
            raise RuntimeError("backward through a graph that was already freed by an earlier "
                               "backward(); recompute the forward pass")
        if self._grad is None:
            self._grad = Tensor(g if owned and g.dtype == self.dtype
                                else g.astype(self.dtype, copy=True))
        else:
            self._grad.data += g

    def detach(self):
        """A new leaf tensor sharing this tensor's data, cut from the graph."""
        return Tensor(self.data, requires_grad=False)

    def clone(self):
        """A copy of the data that stays in the graph (gradients flow back to this tensor)."""
        return _ops.Clone()(self)

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place (leaves only) and return self."""
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad can only be changed on leaf tensors")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Clear the gradient (``grad = None``)."""
        self.grad = None

    # -- host/device and dtype --------------------------------------------------------------
    def numpy(self):
        """A host NumPy copy of the data."""
        return numpy.array(backend.to_numpy(self.data), copy=True)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise ValueError(f"item(): tensor has {self.numel()} elements, expected 1")
        return backend.to_numpy(self.data).reshape(()).item()

    def tolist(self):
        """The data as nested Python lists (a Python number for a 0-d tensor)."""
        return backend.to_numpy(self.data).tolist()

    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False):
        """Move and/or cast; differentiable. As PyTorch: ``to("cuda")``, ``to(mc.device("cpu"))``,
        ``to(mc.float64)``, ``to(device, dtype)``, ``to(other_tensor)`` (its device and dtype).
        ``non_blocking`` is accepted and has no effect (copies are synchronous)."""
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif _is_dtype(arg):
                dtype = arg
            elif isinstance(arg, str):
                device = arg
            else:
                raise TypeError(f"to(): expected a device, a dtype or a tensor, got {arg!r}")
        out = self
        if device is not None and backend.normalize_device(device) != self.device:
            out = _ops.ToDevice(device)(out)
        if dtype is not None and numpy.dtype(dtype) != self.dtype:
            out = _ops.Cast(dtype)(out)
        if copy and out is self:
            out = self.clone()
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

    def long(self):
        """An int64 copy (class labels, indices)."""
        return self.to(dtype=numpy.int64)

    def int(self):
        """An int32 copy."""
        return self.to(dtype=numpy.int32)

    def bool(self):
        """A boolean copy."""
        return self.to(dtype=numpy.bool_)

    # -- differentiable operators --------------------------------------------------------
    def __add__(self, other):
        return _ops.Add()(self, _lift(other, self))

    def __radd__(self, other):
        return _ops.Add()(_lift(other, self), self)

    def __sub__(self, other):
        return _ops.Sub()(self, _lift(other, self))

    def __rsub__(self, other):
        return _ops.Sub()(_lift(other, self), self)

    def __mul__(self, other):
        return _ops.Mul()(self, _lift(other, self))

    def __rmul__(self, other):
        return _ops.Mul()(_lift(other, self), self)

    def __truediv__(self, other):
        return _ops.Div()(self, _lift(other, self))

    def __rtruediv__(self, other):
        return _ops.Div()(_lift(other, self), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return _ops.Pow()(self, exponent)
        return _ops.PowScalar(exponent)(self)

    def __rpow__(self, base):
        return _ops.Pow()(_lift(base, self), self)

    def __matmul__(self, other):
        return _ops.MatMul()(self, _lift(other, self))

    def __rmatmul__(self, other):
        return _ops.MatMul()(_lift(other, self), self)

    # -- in place, as PyTorch (``x += y``, ``x.add_(y)``) -----------------------------------
    def _in_place(self, name, ufunc, other=None, **kwargs):
        """``self.data = ufunc(self.data, other)`` in place, under PyTorch's rules: allowed inside
        ``no_grad()`` or when no tensor involved requires gradients; refused on a leaf that
        requires them (an update belongs in ``no_grad()``) and on a tensor of the graph (minicnn
        records no in-place ops). The backward walk refuses an op whose saved input changed."""
        others = [other] if isinstance(other, Tensor) else []
        if function.is_grad_enabled() and any(t.requires_grad for t in [self] + others):
            if self.requires_grad and self.is_leaf:
                raise RuntimeError(f"{name}: a leaf tensor that requires grad (shape {self.shape}) "
                                   f"is changed in place while gradients are recorded; do the "
                                   f"update inside `with mc.no_grad():`, as an optimizer step does")
            raise RuntimeError(f"{name}: in-place change of a tensor in the autograd graph (shape "
                               f"{self.shape}); minicnn records no in-place ops: write it out of "
                               f"place (x = x + y), or inside `with mc.no_grad():`")
        xp = backend.get_array_module(self.data)
        if isinstance(other, Tensor):
            other = other.data
        elif other is not None and not (backend.is_scalar(other) or backend.is_array(other)):
            other = xp.asarray(_as_array(other))                 # a list
        if backend.is_array(other):
            backend.check_same_device(name, [self.data, other])
        try:
            if other is None:
                ufunc(self.data, out=self.data, **kwargs)
            else:
                ufunc(self.data, other, out=self.data, **kwargs)
        except TypeError as error:           # numpy's UFuncTypeError: float into an int tensor
            raise TypeError(f"{name}: the result cannot be stored in place in a {self.dtype} "
                            f"tensor ({error})") from None
        except ValueError as error:          # shapes that do not broadcast to this tensor's
            raise ValueError(f"{name}: {error} (in place, the result must keep the shape "
                             f"{self.shape})") from None
        self._version += 1
        return self

    def __iadd__(self, other):
        return self._in_place("+=", backend.get_array_module(self.data).add, other)

    def __isub__(self, other):
        return self._in_place("-=", backend.get_array_module(self.data).subtract, other)

    def __imul__(self, other):
        return self._in_place("*=", backend.get_array_module(self.data).multiply, other)

    def __itruediv__(self, other):
        return self._in_place("/=", backend.get_array_module(self.data).true_divide, other)

    def add_(self, other, *, alpha=1):
        """``self += alpha * other``, in place."""
        return self.__iadd__(other if alpha == 1 else _lift(other, self) * alpha)

    def sub_(self, other, *, alpha=1):
        """``self -= alpha * other``, in place."""
        return self.__isub__(other if alpha == 1 else _lift(other, self) * alpha)

    def mul_(self, other):
        """``self *= other``, in place."""
        return self.__imul__(other)

    def div_(self, other):
        """``self /= other``, in place."""
        return self.__itruediv__(other)

    def copy_(self, src):
        """Copy ``src``'s values into this tensor (broadcast, cast to this dtype), in place."""
        xp = backend.get_array_module(self.data)
        return self._in_place("copy_", lambda a, b, out: xp.copyto(out, b, casting="unsafe"), src)

    def fill_(self, value):
        """Set every element to ``value``, in place."""
        return self.copy_(value)

    def zero_(self):
        """Set every element to 0, in place (``p.grad.zero_()``)."""
        return self.copy_(0)

    def clamp_(self, min=None, max=None):
        """Limit the values to [min, max] (either may be None), in place."""
        if min is None and max is None:
            raise ValueError("clamp_(): give min=, max= or both")
        xp = backend.get_array_module(self.data)
        return self._in_place("clamp_", lambda a, out: xp.clip(a, min, max, out=out))

    def __neg__(self):
        return _ops.Neg()(self)

    def __pos__(self):
        return self

    def __getitem__(self, index):
        return _ops.GetItem(index)(self)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (or ``axis``; all axes by default); a full reduction gives a 0-d tensor."""
        axis = _one_spelling("sum", dim, axis, "dim", "axis")
        keep = _one_spelling("sum", keepdims, None, "keepdims", "keepdim", default=keepdim)
        return _ops.Sum(axis, bool(keep))(self)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Mean over ``dim`` (or ``axis``; all axes by default)."""
        axis = _one_spelling("mean", dim, axis, "dim", "axis")
        keep = _one_spelling("mean", keepdims, None, "keepdims", "keepdim", default=keepdim)
        return _ops.Mean(axis, bool(keep))(self)

    def var(self, dim=None, keepdim=False, *, unbiased=True, axis=None, keepdims=None):
        """Variance over ``dim`` (or ``axis``; all by default), divided by ``n - 1`` as PyTorch's
        default (``unbiased=False``: by ``n``, as NumPy's); differentiable."""
        axis = _one_spelling("var", dim, axis, "dim", "axis")
        keep = bool(_one_spelling("var", keepdims, None, "keepdims", "keepdim", default=keepdim))
        centred = self - self.mean(axis=axis, keepdims=True)
        squares = (centred * centred).sum(axis=axis, keepdims=keep)
        n = self.numel() // max(squares.numel(), 1)  # elements per reduced value
        return squares / (n - 1 if unbiased else n)

    def std(self, dim=None, keepdim=False, *, unbiased=True, axis=None, keepdims=None):
        """Standard deviation, ``var(...) ** 0.5`` (unbiased by default, as PyTorch)."""
        return self.var(dim, keepdim, unbiased=unbiased, axis=axis, keepdims=keepdims) ** 0.5

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The maximum; the gradient goes to the maximum (split between ties).

        ``t.max()`` is a 0-d tensor and ``t.max(axis=1)`` the maxima along axis 1 (NumPy). Given a
        ``dim`` (``t.max(1)``, ``t.max(dim=1)``) it returns ``(values, indices)``, as PyTorch.
        """
        if dim is not None and axis is not None:
            raise TypeError("max(): give dim= or axis=, not both")
        keep = bool(_one_spelling("max", keepdims, None, "keepdims", "keepdim", default=keepdim))
        if dim is None:
            return _ops.Max(axis, keep)(self)
        return ValuesIndices(_ops.Max(dim, keep)(self), self.argmax(dim, keep))

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The minimum, as :meth:`max` (``t.min(dim)`` returns ``(values, indices)``)."""
        if dim is not None and axis is not None:
            raise TypeError("min(): give dim= or axis=, not both")
        keep = bool(_one_spelling("min", keepdims, None, "keepdims", "keepdim", default=keepdim))
        if dim is None:
            return -_ops.Max(axis, keep)(-self)
        return ValuesIndices(-_ops.Max(dim, keep)(-self), self.argmin(dim, keep))

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Indices (int64) of the maxima along ``dim``/``axis`` (of the flattened tensor when
        none is given); not differentiable."""
        return self._arg_reduce("argmax", dim, keepdim, axis, keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Indices (int64) of the minima; see :meth:`argmax`."""
        return self._arg_reduce("argmin", dim, keepdim, axis, keepdims)

    def _arg_reduce(self, name, dim, keepdim, axis, keepdims):
        axis = _one_spelling(name, dim, axis, "dim", "axis")
        keep = _one_spelling(name, keepdims, None, "keepdims", "keepdim", default=keepdim)
        xp = backend.get_array_module(self.data)
        indices = getattr(self.data, name)(axis=axis).astype(numpy.int64)
        if keep:
            indices = indices.reshape((1,) * self.ndim) if axis is None else xp.expand_dims(indices, axis)
        return Tensor(indices)

    def softmax(self, dim=-1, *, axis=None):
        """``exp(t) / sum(exp(t))`` along ``dim`` (or ``axis``), the maximum subtracted first so
        that nothing overflows; differentiable (built from ``-``, ``exp``, ``sum`` and ``/``)."""
        axis = _one_spelling("softmax", None, axis, "dim", "axis", default=dim)
        e = (self - self.max(axis=axis, keepdims=True).detach()).exp()
        return e / e.sum(axis=axis, keepdims=True)

    def log_softmax(self, dim=-1, *, axis=None):
        """``t - logsumexp(t)`` along ``dim`` (or ``axis``), computed stably; differentiable."""
        axis = _one_spelling("log_softmax", None, axis, "dim", "axis", default=dim)
        shifted = self - self.max(axis=axis, keepdims=True).detach()
        return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()

    def reshape(self, *shape):
        """The same elements in a new shape (``reshape(2, -1)`` or ``reshape((2, -1))``)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.Reshape(shape)(self)

    def view(self, *shape):
        """Same as :meth:`reshape`."""
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge the axes ``start_dim`` .. ``end_dim`` (all by default) into one."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1:])

    def unsqueeze(self, dim):
        """Insert an axis of length 1 at position ``dim``."""
        dim = dim % (self.ndim + 1)
        return self.reshape(*self.shape[:dim], 1, *self.shape[dim:])

    def squeeze(self, dim=None):
        """Remove axes of length 1 (only axis ``dim`` when given, if its length is 1)."""
        if dim is None:
            return self.reshape(*[n for n in self.shape if n != 1])
        dim = dim % self.ndim
        return self.reshape(*(self.shape[:dim] + self.shape[dim + 1:])) if self.shape[dim] == 1 else self

    def transpose(self, *axes):
        """With no argument or a full permutation: as ``numpy.transpose``. With two axes,
        ``t.transpose(0, 1)`` on a tensor of more dimensions swaps just those two (PyTorch)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2:
            order = list(range(self.ndim))
            a, b = axes[0] % self.ndim, axes[1] % self.ndim
            order[a], order[b] = order[b], order[a]
            axes = tuple(order)
        return _ops.Transpose(axes or None)(self)

    def permute(self, *dims):
        """Reorder the axes (``t.permute(0, 2, 3, 1)``)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _ops.Transpose(dims)(self)

    @property
    def T(self):
        return self.transpose()

    def exp(self):
        """Element-wise e**x."""
        return _ops.Exp()(self)

    def log(self):
        """Element-wise natural logarithm."""
        return _ops.Log()(self)

    def abs(self):
        """Element-wise absolute value."""
        return _ops.Abs()(self)

    __abs__ = abs

    def norm(self, p=2, dim=None, keepdim=False):
        """The ``p``-norm over ``dim`` (every element by default), as ``torch.norm``: ``p=2``
        (Euclidean), ``p=1``, ``p=float("inf")`` (largest magnitude) or any other ``p > 0``."""
        p = float(p)
        if p == float("inf"):
            return self.abs().max(dim=dim, keepdim=keepdim)
        if not p > 0:
            raise ValueError(f"norm(): p must be > 0 (or inf), got {p}")
        if p == 2:
            return (self * self).sum(dim=dim, keepdim=keepdim) ** 0.5
        if p == 1:
            return self.abs().sum(dim=dim, keepdim=keepdim)
        return (self.abs() ** p).sum(dim=dim, keepdim=keepdim) ** (1.0 / p)

    def sqrt(self):
        """Element-wise square root (``self ** 0.5``)."""
        return self ** 0.5

    # -- comparisons: element-wise, boolean results that need no gradient -------------------
    def _compare(self, other, op):
        if isinstance(other, Tensor):
            other = other.data
        elif not (other is None or backend.is_scalar(other) or backend.is_array(other)):
            other = backend.to_device(numpy.asarray(other), self.device)  # a list
        return Tensor(op(self.data, other))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def any(self):
        """True (a 0-d boolean tensor) when any element is non-zero."""
        return Tensor(self.data.any())

    def all(self):
        """True (a 0-d boolean tensor) when every element is non-zero."""
        return Tensor(self.data.all())

    # -- PyTorch's idioms defined with the free functions in minicnn/factories.py ---------------
    def eq(self, other):
        """Element-wise ``self == other`` (``torch.eq``)."""
        return _ops.eq(self, other)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """``mc.allclose(self, other, ...)``: a Python bool."""
        return _ops.allclose(self, other, rtol, atol, equal_nan)

    def clamp(self, min=None, max=None):
        """Values limited to ``[min, max]``, differentiable (``mc.clamp``); also ``clip``."""
        return _ops.clamp(self, min, max)

    clip = clamp

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """``(values, indices)`` of the ``k`` largest along ``dim`` (``mc.topk``)."""
        return _ops.topk(self, k, dim, largest, sorted)

    __hash__ = object.__hash__  # hashed by identity, as in PyTorch (== is element-wise)


def _lift(value, like):
    """Scalars and arrays -> constant tensors on ``like``'s device; scalars take ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value
    xp = backend.get_array_module(like.data)
    if backend.is_scalar(value):
        dtype = like.dtype if like.dtype.kind == "f" else _as_array(value).dtype
        return Tensor(xp.asarray(value, dtype=dtype))
    if backend.is_array(value):
        return Tensor(value)
    return Tensor(xp.asarray(_as_array(value)))


def as_tensor(value):
    """Wrap an array-like in a constant Tensor (Tensors pass through)."""
    return value if isinstance(value, Tensor) else Tensor(_as_array(value))  # ints stay int64


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor from ``data``, as ``torch.tensor``: Python floats become float32, ints int64,
    arrays keep their dtype unless ``dtype`` is given; ``device`` moves it ("cpu", "cuda")."""
    array = _as_array(data)
    if dtype is not None:
        array = array.astype(dtype)
    if device is not None:
        array = backend.to_device(array, device)
    if array is data or (isinstance(data, Tensor) and array is data.data):
        array = array.copy()     # torch.tensor copies: the new tensor never shares the caller's data
    return Tensor(array, requires_grad=requires_grad)


function.use_tensor_type(Tensor, as_tensor)  # Function.__call__ returns Tensors
