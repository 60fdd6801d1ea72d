"""The stand-in device ``"standin"``: CuPy's strictness on the CPU, to test device code without a GPU.

CI machines have no GPU, yet code that quietly calls ``numpy`` on device data is the commonest way
to break GPU support. The stand-in is a small fake of CuPy's *strictness*: its arrays
(:class:`StandinArray`) wrap NumPy arrays, but

* mixing them with plain ``numpy.ndarray`` objects in any operation raises ``TypeError``
  (CuPy: "Unsupported type <class 'numpy.ndarray'>");
* converting them implicitly to NumPy (``numpy.asarray(x)``, ``numpy.zeros(...) + x`` ...) raises
  ``TypeError`` (CuPy: "Implicit conversion to a NumPy array is not allowed");
* full reductions return 0-d arrays rather than NumPy scalars, as CuPy does.

Its array module (:data:`standin`) mirrors NumPy's namespace and returns stand-in arrays. Running
the test suite on ``"standin"`` therefore proves that an op takes its array module from its inputs.
Importing this module adds the row ``"standin"`` to the device table (``minicnn.backend``), and
gives it the fast paths of ``fast/gpu.py`` that are whole-array code (no kernels).

It can also be watched (:func:`watch_standin`): every operation is reported with what it would be
on a GPU (a kernel launch, a view, an allocation, a copy to or from the host), which is how
``benchmarks/launches.py`` counts the launches of a training step without a GPU.
"""
import contextlib
import types

import numpy

from .. import backend
from ..fast import gpu, registry

_watchers = []  # callbacks of watch_standin(), called as callback(kind, name)


@contextlib.contextmanager
def watch_standin(callback):
    """``with watch_standin(callback):`` report each stand-in operation as ``callback(kind, name)``.

    ``kind`` says what the operation would cost on a GPU: ``"launch"`` (a kernel: any result that
    is new data, an in-place write, a reduction), ``"view"`` (a result sharing its input's memory:
    reshape, transpose, basic slicing), ``"alloc"`` (``empty``/``empty_like``: memory, no launch),
    ``"upload"`` (host to device) or ``"download"`` (device to host: a sync, the GPU is waited for).
    ``name`` is the NumPy function or method (``"numpy.add"``, ``"ndarray.sum"``, ``"__setitem__"``).
    """
    _watchers.append(callback)
    try:
        yield callback
    finally:
        _watchers.remove(callback)


def notify_standin(kind, name):
    """Report an operation to the watchers (``minicnn.testing.cuda_on_cpu`` reports its kernels)."""
    for callback in list(_watchers):
        callback(kind, name)


def _buffers(obj):
    """The NumPy arrays inside (nested) arguments or results."""
    if isinstance(obj, numpy.ndarray):
        yield obj
    elif isinstance(obj, StandinArray):
        yield obj._a
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _buffers(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _buffers(o)


def _note(name, inputs, result, in_place=False):
    """Classify one operation for the watchers (see :func:`watch_standin`)."""
    if not _watchers:
        return
    results = list(_buffers(result))
    if name in ("numpy.empty", "numpy.empty_like"):
        kind = "alloc"
    elif in_place or result is None:
        kind = "launch"
    elif isinstance(result, numpy.generic):
        kind = "launch"  # a reduction to one value (a 0-d device array on the stand-in and CuPy)
    elif isinstance(result, numpy.dtype) and not list(_buffers(inputs)):
        return           # result_type of dtypes: host bookkeeping, no device data read
    elif not results:
        kind = "download"  # a Python value out of device data: .item(), .tolist()
    elif any(numpy.may_share_memory(r, i) for r in results for i in _buffers(inputs)):
        kind = "view"
    else:
        kind = "launch"
    notify_standin(kind, name)


def _unwrap(obj, where):
    """Stand-in arrays -> their NumPy buffers; plain ndarrays are refused (as CuPy refuses them)."""
    if isinstance(obj, StandinArray):
        return obj._a
    if isinstance(obj, numpy.ndarray):
        raise TypeError(f"{where}: cannot mix a standin (device) array with a host numpy.ndarray "
                        f"(shape {obj.shape}); move it with xp.asarray first")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, where) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, where) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """NumPy results -> stand-in arrays (scalars become 0-d arrays, as CuPy returns)."""
    if isinstance(obj, numpy.ndarray):
        return StandinArray(obj)
    if isinstance(obj, numpy.generic):
        return StandinArray(numpy.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class StandinArray(numpy.lib.mixins.NDArrayOperatorsMixin):
    """A NumPy array dressed up as a device array: strict about mixing and implicit conversion."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, a):
        self._a = a

    # -- what makes it strict ------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion of a standin (device) array to a NumPy array is not "
                        "allowed; use minicnn.backend.to_numpy(x) or Tensor.numpy()")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}.{method}" if method != "__call__" else f"numpy.{ufunc.__name__}"
        inputs = _unwrap(inputs, where)
        kwargs = _unwrap(kwargs, where)
        out = getattr(ufunc, method)(*inputs, **kwargs)
        _note(where, inputs, out, in_place=method == "at" or "out" in kwargs)
        if method == "at":
            return None
        return _wrap(out)

    def __array_function__(self, func, types_, args, kwargs):
        where = f"numpy.{func.__name__}"
        args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
        out = func(*args, **kwargs)
        _note(where, (args, kwargs), out, in_place="out" in kwargs)
        return _wrap(out)

    # -- the ndarray surface ---------------------------------------------------------------
    def __getattr__(self, name):
        if name.startswith("__"):  # never expose __array_interface__ & co: that is implicit conversion
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args, **kwargs):
                where = f"ndarray.{name}"
                args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
                out = attr(*args, **kwargs)
                _note(where, (self._a, args, kwargs), out, in_place=name == "fill" or "out" in kwargs)
                return _wrap(out)
            return method
        return _wrap(attr)

    def __getitem__(self, index):
        out = self._a[_unwrap(index, "__getitem__")]
        _note("__getitem__", self._a, out)
        return _wrap(out)

    def __setitem__(self, index, value):
        self._a[_unwrap(index, "__setitem__")] = _unwrap(value, "__setitem__")
        _note("__setitem__", (), None)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return "standin." + repr(self._a)

    def __float__(self):
        _note("__float__", (), 0)
        return float(self._a)

    def __int__(self):
        _note("__int__", (), 0)
        return int(self._a)

    def __index__(self):
        _note("__index__", (), 0)
        return self._a.__index__()

    def __bool__(self):
        _note("__bool__", (), 0)
        return bool(self._a)

    def __complex__(self):
        _note("__complex__", (), 0)
        return complex(self._a)

    def __format__(self, spec):
        _note("__format__", (), 0)
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def T(self):
        return StandinArray(self._a.T)

    @property
    def data(self):
        """The buffer, as CuPy's ``x.data`` (its address is ``x.data.ptr``: kernels that take tables
        of array addresses read it; on the stand-in those kernels run on the CPU)."""
        return types.SimpleNamespace(ptr=self._a.ctypes.data)

    def get(self):
        """Copy to the host, as ``cupy.ndarray.get()``."""
        _note("ndarray.get", (), 0)
        return self._a.copy()


class _StandinFunction:
    """A NumPy callable (function or ufunc) whose array arguments and results live on the stand-in."""

    def __init__(self, fn, name, host_inputs_ok=False):
        self._fn, self._name, self._host_ok = fn, name, host_inputs_ok

    def __call__(self, *args, **kwargs):
        if self._host_ok:  # xp.asarray / xp.array: the explicit host -> device copy is allowed
            from_host = args and not isinstance(args[0], StandinArray)
            args = tuple(a._a if isinstance(a, StandinArray) else a for a in args)
            out = self._fn(*args, **kwargs)
            if from_host:
                notify_standin("upload", f"numpy.{self._name}")
            else:
                _note(f"numpy.{self._name}", args, out)
            return _wrap(out)
        args, kwargs = _unwrap(args, self._name), _unwrap(kwargs, self._name)
        out = self._fn(*args, **kwargs)
        _note(f"numpy.{self._name}", (args, kwargs), out, in_place="out" in kwargs)
        return _wrap(out)

    def __getattr__(self, name):  # ufunc methods: xp.add.at, xp.maximum.reduce, ...
        attr = getattr(self._fn, name)
        return _StandinFunction(attr, f"{self._name}.{name}") if callable(attr) else attr


class _StandinModule(types.ModuleType):
    """Mirrors a NumPy (sub)module: ``standin.zeros``, ``standin.lib.stride_tricks.as_strided`` ..."""

    _HOST_OK = {"asarray", "array", "asanyarray", "ascontiguousarray"}

    def __init__(self, module, name):
        super().__init__(name)
        self._module = module

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            value = _StandinModule(attr, f"{self.__name__}.{name}")
        elif isinstance(attr, type) or not callable(attr):
            value = attr  # dtypes, constants (xp.float32, xp.newaxis, xp.pi)
        else:
            value = _StandinFunction(attr, name, host_inputs_ok=name in self._HOST_OK)
        setattr(self, name, value)
        return value



standin = _StandinModule(numpy, "standin")
"""The stand-in device's array module (use it like ``numpy`` or ``cupy``)."""


def _to_host(x):
    _note("to_numpy", (), 0)
    return x._a


def _from_host(host):
    notify_standin("upload", "to_device")
    return StandinArray(numpy.array(host, copy=True))


DEVICE = backend.register_device(backend.Device("standin", StandinArray, standin, _from_host, _to_host))
registry.register(gpu.Conv2d, gpu.DeviceConv2d, devices=("standin",))
registry.register(gpu.AdaptiveAvgPool2d, gpu.DeviceAdaptiveAvgPool2d, devices=("standin",))
