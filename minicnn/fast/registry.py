"""The one place that decides which implementation of an op runs: reference or fast.

Every op in ``minicnn.functional`` (and ``minicnn.ops``) is a reference ``Function`` class. A fast
path is a *subclass* of it that computes the same thing faster on one kind of device, and is
registered here::

    register(Conv2d, ThreadedConv2d, devices=("cpu",))

When a ``Function`` is applied (``Function.__call__``), the engine asks :func:`choose`, which
looks at the device of the input arrays and, if a fast subclass is registered for that class and
device, switches the instance to it (``fn.__class__ = ...``: same attributes, same arguments, only
``forward``/``backward`` differ). Only exact reference classes are replaced, never a subclass a
student wrote. Inside ``with disabled():``, or with ``MINICNN_FAST=0`` in the environment, nothing
is replaced: every op runs the code in ``minicnn/functional``.

Code that is no ``Function`` asks :func:`call` instead, with the reference as an argument, and an
optimizer asks :func:`step_group` whether a fast path updates a whole parameter group at once;
fast versions of both register under a name (:func:`register_function`).

This module and ``minicnn/backend.py`` are the only code that looks at the device.
"""
import contextlib
import os
import threading

from .. import backend

_FAST = {}          # (reference class, device) -> fast subclass
_REFERENCE_OF = {}  # fast subclass -> the reference class it replaces
_HAS_FAST = set()   # reference classes with at least one fast path
_FAST_FUNCTIONS = {}  # (name, device) -> fast function (updates that are not Functions: optimizers)
_PATHS_OF = {}  # device -> the device whose fast paths it runs (see paths_of)
_state = threading.local()


def _env_enabled():
    value = os.environ.get("MINICNN_FAST", "1").strip().lower()
    if value not in ("0", "1", "false", "true", "off", "on", ""):
        raise ValueError(f"MINICNN_FAST must be 1 (fast paths, the default) or 0 (reference code "
                         f"only), got {value!r}")
    return value not in ("0", "false", "off")


_default = _env_enabled()


def register(reference, fast, devices):
    """Use ``fast`` (a subclass of ``reference``) for ``reference`` on each of ``devices``.

    The instance is built by the reference's ``__init__`` and only switched to ``fast`` when it
    runs, so ``fast`` works from the reference's attributes and defines no ``__init__`` of its own.
    """
    if not issubclass(fast, reference):
        raise TypeError(f"{fast.__name__} must subclass {reference.__name__} to replace it")
    if "__init__" in vars(fast):
        raise TypeError(f"{fast.__name__} must not define __init__: it takes over instances that "
                        f"{reference.__name__}.__init__ built")
    for device in devices:
        _FAST[(reference, backend.normalize_device(device))] = fast
    _REFERENCE_OF[fast] = reference
    _HAS_FAST.add(reference)
    return fast


def is_enabled():
    """Whether fast paths are used now (in this thread)."""
    return getattr(_state, "enabled", _default)


@contextlib.contextmanager
def _set(enabled):
    previous = is_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def disabled():
    """``with minicnn.fast.disabled():`` every op runs its reference implementation."""
    return _set(False)


def enabled():
    """``with minicnn.fast.enabled():`` fast paths on again (inside ``disabled()``)."""
    return _set(True)


@contextlib.contextmanager
def paths_of(device, on):
    """``with paths_of("cuda", on="standin"):`` arrays on device ``on`` get the fast paths that are
    registered for ``device``. ``minicnn.testing.cuda_on_cpu`` runs the CUDA classes on the stand-in
    this way, their kernels compiled for the CPU, to test and count them without a GPU."""
    device, on = backend.normalize_device(device), backend.normalize_device(on)
    previous = _PATHS_OF.get(on)
    _PATHS_OF[on] = device
    try:
        yield
    finally:
        if previous is None:
            del _PATHS_OF[on]
        else:
            _PATHS_OF[on] = previous


def _paths_device(device):
    device = backend.normalize_device(device)
    return _PATHS_OF.get(device, device)


def implementation(reference, device):
    """The class that runs ``reference`` on ``device`` now (``reference`` itself if no fast path)."""
    if not is_enabled():
        return reference
    return _FAST.get((reference, _paths_device(device)), reference)


def choose(fn, arrays):
    """Called by ``Function.__call__``: give ``fn`` the implementation for its inputs' device."""
    cls = type(fn)
    reference = _REFERENCE_OF.get(cls, cls)     # a fast class (from an earlier call) maps back
    if reference not in _HAS_FAST:              # no fast path, or a subclass someone wrote
        return
    device = next((backend.device_of(a) for a in arrays if backend.is_array(a)), "cpu")
    chosen = implementation(reference, device)
    if chosen is not cls:
        fn.__class__ = chosen


def reference_of(cls):
    """The reference class that ``cls`` (a registered fast subclass) replaces; ``cls`` otherwise."""
    return _REFERENCE_OF.get(cls, cls)


def register_function(name, fast, devices):
    """Use ``fast`` for the plain function called ``name`` (see :func:`call`) on each device."""
    for device in devices:
        _FAST_FUNCTIONS[(name, backend.normalize_device(device))] = fast
    return fast


def call(name, reference, *arrays, **kwargs):
    """``reference(*arrays, **kwargs)``, or the fast function registered as ``name`` for the device
    of ``arrays`` (arrays, or lists of arrays): how code that is no ``Function`` (an optimizer's
    update rule) gets a fast path."""
    if is_enabled():
        flat = [a for x in arrays for a in (x if isinstance(x, (list, tuple)) else (x,))]
        device = next((backend.device_of(a) for a in flat if backend.is_array(a)), "cpu")
        fast = _FAST_FUNCTIONS.get((name, _paths_device(device)))
        if fast is not None:
            result = fast(*arrays, **kwargs)
            if result is not NotImplemented:  # the fast function declined (a dtype it lacks)
                return result
    return reference(*arrays, **kwargs)


def step_group(name, optimizer, group, params):
    """Whether a fast path registered as ``name`` for the parameters' device updated the whole
    ``group`` (``fast(optimizer, group, params)``; it may decline with ``NotImplemented``). When
    False, the optimizer's reference updates the parameters one at a time."""
    if not (params and is_enabled()):
        return False
    fast = _FAST_FUNCTIONS.get((name, _paths_device(backend.device_of(params[0].data))))
    return fast is not None and fast(optimizer, group, params) is not NotImplemented


def registered():
    """``{(reference class name, device): fast class name}``: what is registered (for docs, tests)."""
    classes = {(ref.__name__, device): fast.__name__ for (ref, device), fast in _FAST.items()}
    return {**classes, **{(name, device): fn.__name__ for (name, device), fn in _FAST_FUNCTIONS.items()}}
