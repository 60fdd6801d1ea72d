"""``save``/``load``: checkpoints as ``.npz`` files of plain arrays, never pickles.

``save(state, path)`` flattens nested dicts to dotted keys (``{"model": {"fc.weight": w}}`` is
stored as ``"model.fc.weight"``) and writes atomically: to a temporary file in the same folder,
then ``os.replace`` onto the real name, so a crash mid-save never leaves a half-written file there.

``load(path)`` reads with ``allow_pickle=False``: a file holding pickled objects (object arrays,
or a pickle in disguise) is refused with ``ValueError``, because unpickling runs arbitrary code.
It returns the flat dict (dotted keys -> NumPy arrays; strings come back as ``str``).
"""
import contextlib
import os
import tempfile
import zipfile

import numpy

from . import backend


def flatten(state, prefix=""):
    """Nested dicts -> one dict with dotted keys; values become host NumPy arrays."""
    flat = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
            continue
        if hasattr(value, "data") and backend.is_array(getattr(value, "data")):
            value = value.data  # a Tensor
        if backend.is_array(value):
            array = numpy.asarray(backend.to_numpy(value))
        elif value is None:
            raise ValueError(f"save: entry {name!r} is None; only arrays, numbers and strings are stored")
        else:
            array = numpy.asarray(value)
        if array.dtype == object:
            raise ValueError(f"save: entry {name!r} ({type(value).__name__}) is not an array of "
                             f"numbers or strings")
        flat[name] = array
    return flat


def subdict(flat, prefix):
    """The entries of a flat dict under ``prefix.``, with the prefix removed."""
    p = prefix.rstrip(".") + "."
    return {k[len(p):]: v for k, v in flat.items() if k.startswith(p)}


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """``with atomic_write(path) as f:`` writes to a temporary file in ``path``'s folder that
    replaces ``path`` (``os.replace``, atomic on one file system) only when the block succeeds; on
    an exception it is deleted and ``path`` is left as it was. The file gets the usual permissions
    (0666 less the umask), not ``mkstemp``'s owner-only ones. Checkpoints, metrics and downloads
    all write through it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(state, path):
    """Write ``state`` (a possibly nested dict of arrays/Tensors/numbers/strings) to ``path``."""
    flat = flatten(state)
    with atomic_write(path) as f:
        numpy.savez(f, **flat)
    return os.fspath(path)


def load(path):
    """Read a file written by :func:`save` into a flat dict; pickled content raises ``ValueError``."""
    path = os.fspath(path)
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, numpy.lib.npyio.NpzFile):
                raise ValueError(f"load: {path} is a single .npy array, not an .npz archive")
            out = {}
            for key in npz.files:
                array = npz[key]
                out[key] = str(array) if array.dtype.kind == "U" and array.ndim == 0 else array
            return out
    except ValueError as e:
        if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
            raise ValueError(f"load: {path} holds pickled Python objects; minicnn never unpickles "
                             f"(it could run arbitrary code)") from e
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"load: {path} is not a readable .npz archive ({e})") from e
