"""Which array library holds the data: NumPy (``"cpu"``), CuPy (``"cuda"``), or the CPU stand-in.

This is the only module that knows CuPy exists. Everything else asks it for the *array module*
of its inputs (``xp = get_array_module(x)``) and then writes ``xp.zeros(...)``, ``xp.maximum(...)``,
exactly as Chainer and CuPy recommend. Code written that way runs unchanged on the GPU.

The CPU stand-in (device ``"standin"``)
---------------------------------------
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

It can also be watched (:func:`watch_standin`): every operation is reported with what it would be
on a GPU (a kernel launch, a view, an allocation, a copy to or from the host), which is how
``benchmarks/launches.py`` counts the launches of a training step without a GPU.
"""
import contextlib
import numbers
import threading
import types

import numpy

from . import rng

try:  # CuPy is optional: importing minicnn must never fail for lack of it (or of a GPU).
    import cupy as _cupy
except Exception:  # ImportError, or a broken CUDA installation
    _cupy = None

DEVICES = ("cpu", "standin", "cuda")


# ---------------------------------------------------------------------------------------------
# The stand-in device
# ---------------------------------------------------------------------------------------------
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
    """Report an operation to the watchers (``minicnn.fast.cuda_on_cpu`` reports its kernels)."""
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


# ---------------------------------------------------------------------------------------------
# The public backend functions
# ---------------------------------------------------------------------------------------------
def cuda_available():
    """True when CuPy is importable and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _is_cupy(x):
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def has_cuda_kernels(x):
    """True for a CuPy float32/float64 array: the ops' hand-written CUDA kernels apply to it."""
    return _is_cupy(x) and x.dtype in (numpy.float32, numpy.float64)


def is_array(x):
    """True for a backend array of any device."""
    return isinstance(x, (numpy.ndarray, StandinArray)) or _is_cupy(x)


def get_array_module(*arrays):
    """The array module (``numpy``, ``cupy`` or the stand-in) that holds ``arrays``.

    Tensors are looked through to their data; scalars and ``None`` are ignored.
    """
    xp = None
    for x in arrays:
        x = getattr(x, "data", x) if not is_array(x) else x
        if isinstance(x, StandinArray):
            module = standin
        elif _is_cupy(x):
            module = _cupy
        elif isinstance(x, numpy.ndarray):
            module = numpy
        else:
            continue
        xp = module if xp is None else xp
    return numpy if xp is None else xp


def device_of(x):
    """``"cpu"``, ``"standin"`` or ``"cuda"`` for a backend array."""
    if isinstance(x, StandinArray):
        return "standin"
    if _is_cupy(x):
        return "cuda"
    return "cpu"


def module_for_device(device):
    """The array module of a device name."""
    device = normalize_device(device)
    if device == "cpu":
        return numpy
    if device == "standin":
        return standin
    if not cuda_available():
        raise RuntimeError("device 'cuda' requested but CuPy is not installed or sees no GPU "
                           "(pip install 'minicnn[gpu]')")
    return _cupy


def normalize_device(device):
    device = str(device).lower()
    if device.startswith("cuda"):
        device = "cuda"
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


def to_numpy(x):
    """A host ``numpy.ndarray`` copy (or view, on the CPU) of a backend array."""
    if isinstance(x, StandinArray):
        _note("to_numpy", (), 0)
        return x._a
    if _is_cupy(x):
        return _cupy.asnumpy(x)
    return numpy.asarray(x)


def to_device(x, device):
    """Move a backend array (or a Tensor's array, or an array-like) to ``device``; a no-op when it
    is already there (a Tensor's array is then returned as it is, never copied via the host)."""
    device = normalize_device(device)
    if not is_array(x) and is_array(getattr(x, "data", None)):
        x = x.data
    if is_array(x) and device_of(x) == device:
        return x
    host = to_numpy(x)
    if device == "cpu":
        return host
    if device == "standin":
        notify_standin("upload", "to_device")
        return StandinArray(numpy.array(host, copy=True))
    return module_for_device("cuda").asarray(host)


def check_same_device(op_name, arrays):
    """Raise ``TypeError`` when an op receives arrays from different devices."""
    kinds = {}
    for a in arrays:
        if is_array(a):
            kinds.setdefault(device_of(a), type(a))
    if len(kinds) > 1:
        names = " and ".join(f"{t.__module__}.{t.__name__} ({d})" for d, t in kinds.items())
        raise TypeError(f"{op_name}: inputs live on different devices: {names}; "
                        f"move them with .to(device) first")


# ---------------------------------------------------------------------------------------------
# Checks of device values: now, or at the training loop's next read-back
# ---------------------------------------------------------------------------------------------
class DeferredChecks:
    """Checks of device values kept for one read-back (:meth:`check`) instead of a sync each.

    ``where`` (set by the loop, e.g. ``"epoch 1, step 7"``) is recorded with each check and named
    in its error."""

    def __init__(self):
        self.pending, self.where = [], None

    def check(self):
        """Copy every pending flag to the host at once; raise ``ValueError`` for the first true one."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        xp = get_array_module(pending[0][0])
        flags = to_numpy(xp.stack([flag.reshape(()) for flag, _, _ in pending]))
        for flag, (_, message, where) in zip(flags, pending):
            if flag:
                raise ValueError(message() + (f" ({where})" if where else ""))


_deferring = threading.local()


@contextlib.contextmanager
def deferred_checks():
    """``with deferred_checks() as checks:`` :func:`require` on device arrays waits for
    ``checks.check()``, which the training loop calls when it reads its metrics back (every few
    steps): no device-to-host copy per step for them. Checks left at the end run then."""
    previous, _deferring.checks = getattr(_deferring, "checks", None), DeferredChecks()
    try:
        yield _deferring.checks
        _deferring.checks.check()
    finally:
        _deferring.checks = previous


def require(flag, message):
    """Raise ``ValueError(message())`` if the one-element boolean array ``flag`` is true. Reading
    a device value waits for the GPU, so inside :func:`deferred_checks` a device flag is kept
    for the block's next ``check()`` instead (the caller must keep going safely meanwhile)."""
    checks = getattr(_deferring, "checks", None)
    if checks is not None and is_array(flag) and device_of(flag) != "cpu":
        checks.pending.append((flag, message, checks.where))
    elif bool(flag):
        raise ValueError(message())


# ---------------------------------------------------------------------------------------------
# TF32: the precision of CuPy's float32 matrix products
# ---------------------------------------------------------------------------------------------
_tf32 = {"matmul": False, "conv": False}  # what minicnn.backends' flags say


def tf32_allowed(kind):
    """Whether float32 GEMMs of ``kind`` (``"matmul"``, or ``"conv"``: convolution's GEMMs) may
    use TF32 tensor cores (``minicnn.backends.cuda.matmul.allow_tf32`` / ``cudnn.allow_tf32``)."""
    return _tf32[kind]


def allow_tf32(kind, enabled):
    """Set the TF32 flag of ``kind``; matrix products then follow the ``"matmul"`` flag, and conv's
    GEMMs run inside :func:`tf32_for` ``("conv", x)``. TF32 rounds the inputs of a float32 product to
    10 mantissa bits (about 1e-3 relative error) and accumulates in float32: several times the
    float32 rate on Ampere and later GPUs. Without CuPy, or without a GPU for it, the flags are
    only kept."""
    _tf32[kind] = bool(enabled)
    if kind == "matmul" and cuda_available():  # CuPy's switch asks the GPU for its compute capability
        _set_compute_type(_tf32["matmul"])


def _set_compute_type(tf32):
    linalg = getattr(getattr(_cupy, "_core", None), "_routines_linalg", None)
    if not hasattr(linalg, "set_compute_type") or not hasattr(linalg, "COMPUTE_TYPE_TF32"):
        raise RuntimeError(f"TF32: this CuPy ({getattr(_cupy, '__version__', '?')}) has no switch for the "
                           f"precision of float32 products (cupy._core._routines_linalg.set_compute_type)")
    linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)


@contextlib.contextmanager
def _compute_type(tf32):
    _set_compute_type(tf32)
    try:
        yield
    finally:
        _set_compute_type(_tf32["matmul"])


def tf32_for(kind, x):
    """A context for GEMMs of ``kind`` on ``x``'s device: TF32 as its flag says, where ``x`` is a
    CuPy array and the flag differs from the ``"matmul"`` flag (which is in force everywhere
    else); otherwise a no-op."""
    if not _is_cupy(x) or _tf32[kind] == _tf32["matmul"]:
        return contextlib.nullcontext()
    return _compute_type(_tf32[kind])


def is_scalar(x):
    return isinstance(x, (numbers.Number, numpy.generic))


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) draws of ``shape`` on ``xp``'s device, from the package's seeded generator."""
    draw_dtype = numpy.float32 if numpy.dtype(dtype) == numpy.float32 else numpy.float64
    host = rng.generator().random(shape, dtype=draw_dtype).astype(dtype, copy=False)
    return host if xp is numpy else xp.asarray(host)
