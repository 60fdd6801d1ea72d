"""Which array library holds the data: a table of devices.

    device   its arrays        its array module ``xp``
    "cpu"    numpy.ndarray     numpy
    "cuda"   cupy.ndarray      cupy   (optional: pip install 'minicnn[gpu]', and a GPU)

This is the only module that knows CuPy exists. Everything else asks it for the *array module*
of its inputs (``xp = get_array_module(x)``) and then writes ``xp.zeros(...)``, ``xp.maximum(...)``,
exactly as Chainer and CuPy recommend. Code written that way runs unchanged on every device.

A row of the table (:class:`Device`) says how to recognise the device's arrays, which module
makes them, and how an array crosses to and from the host. Test devices add rows of their own
(:func:`register_device`): ``import minicnn.testing`` registers ``"standin"``, a CPU stand-in as
strict as CuPy, on which the tests run every op. Without it a program sees ``cpu`` and ``cuda``.
"""
import dataclasses
import numbers

import numpy

from . import rng

try:  # CuPy is optional: importing minicnn must never fail for lack of it (or of a GPU).
    import cupy as _cupy
except Exception:  # ImportError, or a broken CUDA installation
    _cupy = None


@dataclasses.dataclass(frozen=True)
class Device:
    """A row of the device table."""
    name: str
    array_type: type        # the class of its arrays (None: its library is not installed)
    module: object          # its array module, ``xp``
    from_host: object       # numpy.ndarray -> a new array on the device
    to_host: object         # an array of the device -> numpy.ndarray
    available: object = lambda: True  # () -> whether it can be used here
    why_not: str = ""       # the error when it is asked for but not available


_DEVICES = {}  # name -> Device
_BY_TYPE = {}  # array class -> Device


def register_device(device):
    """Add ``device`` (a :class:`Device`) to the table; it replaces a row of the same name."""
    _DEVICES[device.name] = device
    if device.array_type is not None:
        _BY_TYPE[device.array_type] = device
    return device


def cuda_available():
    """True when CuPy is importable and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


register_device(Device("cpu", numpy.ndarray, numpy, from_host=lambda host: host, to_host=numpy.asarray))
register_device(Device("cuda", getattr(_cupy, "ndarray", None), _cupy,
                       from_host=lambda host: _cupy.asarray(host), to_host=lambda x: _cupy.asnumpy(x),
                       available=lambda: cuda_available(),
                       why_not="device 'cuda' requested but CuPy is not installed or sees no GPU "
                               "(pip install 'minicnn[gpu]')"))


# -- Which device an array lives on, and its array module ---------------------------------------
def _row_of(x):
    """The table's row for the array ``x``, or None when ``x`` is no array of any device."""
    row = _BY_TYPE.get(type(x))
    if row is None:  # a subclass (numpy.memmap ...)
        row = next((d for d in _DEVICES.values() if d.array_type and isinstance(x, d.array_type)), None)
    return row


def is_array(x):
    """True for a backend array of any device."""
    return _row_of(x) is not None


def get_array_module(*arrays):
    """The array module (``numpy``, ``cupy`` ...) that holds the first of ``arrays`` that is one.

    Tensors are looked through to their data; scalars and ``None`` are ignored.
    """
    for x in arrays:
        row = _row_of(x) or _row_of(getattr(x, "data", None))
        if row is not None:
            return row.module
    return numpy


def device_of(x):
    """The device name of a backend array (``"cpu"`` for anything that is no device array)."""
    row = _row_of(x)
    return "cpu" if row is None else row.name


def device_names():
    """The names of the table's devices (``("cpu", "cuda")``, and test devices once registered)."""
    return tuple(_DEVICES)


def normalize_device(device):
    """The table's name for ``device`` (``"cuda:0"`` -> ``"cuda"``); unknown names are an error."""
    name = str(device).lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in _DEVICES:
        raise ValueError(f"unknown device {name!r}; expected one of {tuple(_DEVICES)} (test devices "
                         f"such as 'standin' exist once minicnn.testing is imported)")
    return name


def _available(name):
    row = _DEVICES[normalize_device(name)]
    if not row.available():
        raise RuntimeError(row.why_not)
    return row


def module_for_device(device):
    """The array module of a device name."""
    return _available(device).module


# -- Moving arrays between devices --------------------------------------------------------------
def to_numpy(x):
    """A host ``numpy.ndarray`` copy (or view, on the CPU) of a backend array."""
    row = _row_of(x)
    return numpy.asarray(x) if row is None else row.to_host(x)


def to_device(x, device):
    """Move a backend array (or a Tensor's array, or an array-like) to ``device``; a no-op when it
    is already there (a Tensor's array is then returned as it is, never copied via the host)."""
    target = _available(device)
    if not is_array(x) and is_array(getattr(x, "data", None)):
        x = x.data
    if _row_of(x) is target:
        return x
    return target.from_host(to_numpy(x))


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


def is_scalar(x):
    """True for a Python or NumPy number (not an array)."""
    return isinstance(x, (numbers.Number, numpy.generic))


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) draws of ``shape`` on ``xp``'s device, from the package's seeded generator."""
    draw_dtype = numpy.float32 if numpy.dtype(dtype) == numpy.float32 else numpy.float64
    host = rng.generator().random(shape, dtype=draw_dtype).astype(dtype, copy=False)
    return host if xp is numpy else xp.asarray(host)
