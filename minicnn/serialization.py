"""``save``/``load``: checkpoints as ``.npz`` files of plain arrays, never pickles.

``save(state, path)`` flattens nested dicts to dotted keys (``{"model": {"fc.weight": w}}`` is
stored as ``"model.fc.weight"``) and writes atomically: to a temporary file in the same folder,
then ``os.replace`` onto the real name, so a crash mid-save never leaves a half-written file there.

``load(path)`` never unpickles (unpickling runs arbitrary code): it opens the zip archive itself
and reads each member's ``.npy`` header before allocating anything, refusing with ``ValueError``

* pickled content (object arrays, or a pickle -- e.g. a ``torch.save`` file -- in disguise);
* a member whose header declares more (or fewer) bytes than the zip entry holds, or a compressed
  entry claiming more than deflate can produce (a "zip bomb": a tiny file that would allocate
  gigabytes), or, given ``max_bytes`` (what a well-formed file of its kind holds: a checkpoint of
  the model at hand), arrays declaring more than that together;
* complex numbers (minicnn never writes them: such a file is not a minicnn state);
* anything that is not a zip archive, with a message that says so.

Each array is allocated once, at the size its header declares, and filled from the archive in
1 MB steps (:func:`read_into`): reading costs the arrays and a megabyte, never a second copy.

Float entries holding NaN or inf are returned as they are: ``load`` returns data, and whether a
value is acceptable is decided where it is used (``load_state_dict``, the fine-tuning and
evaluation code refuse non-finite weights, naming the entry).

It returns the flat dict (dotted keys -> NumPy arrays; strings come back as ``str``), a
:class:`LoadedState`: ``state["model"]`` also works, giving the ``"model.*"`` entries as a dict
of their own, as when a nested dict is loaded in PyTorch.
"""
import contextlib
import math
import os
import tempfile
import tokenize
import zipfile

import numpy

from . import backend, safetensors

#: Deflate never compresses better than about 1032:1; a zip entry claiming more is lying.
MAX_DEFLATE_RATIO = 1100


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


def save(state, path, metadata=None):
    """Write ``state`` (a possibly nested dict of arrays/Tensors/numbers/strings) to ``path``.

    ``mc.save(model.state_dict(), path)`` saves a model's weights; a whole Module (or an
    optimizer) is refused: minicnn stores arrays, never pickled Python objects. A ``path`` ending
    in ``.safetensors`` is written in that format (:mod:`minicnn.safetensors`), with ``metadata``
    (str -> str, e.g. ``{"architecture": "resnet20"}``) in its header.
    """
    if not isinstance(state, dict):
        what = type(state).__name__
        if callable(getattr(state, "state_dict", None)):
            raise TypeError(f"save: got a {what} object; minicnn saves arrays, never pickled "
                            f"objects: save its state_dict() instead, mc.save(model.state_dict(), "
                            f"path), and restore with model.load_state_dict(mc.load(path))")
        raise TypeError(f"save: expected a dict of arrays/tensors/numbers (e.g. model.state_dict()), "
                        f"got a {what}; wrap a single tensor as {{'name': t}}")
    flat = flatten(state)
    if _is_safetensors(path):  # by extension: minicnn/safetensors.py (``metadata``: str -> str)
        with atomic_write(path) as f:
            safetensors.write(f, flat, metadata)
        return os.fspath(path)
    if metadata is not None:
        raise ValueError(f"save: metadata is stored in .safetensors files only, not in {path}")
    with atomic_write(path) as f:
        numpy.savez(f, **flat)
    return os.fspath(path)


class LoadedState(dict):
    """What :func:`load` returns: a flat dict with dotted keys (``"model.fc.weight"``), which also
    answers a prefix as PyTorch's nested dicts do: ``state["model"]`` is the dict of the
    ``"model.*"`` entries with the prefix removed, and ``"model" in state`` is true."""

    def __missing__(self, key):
        sub = subdict(self, key) if isinstance(key, str) else {}
        if not sub:
            raise KeyError(key)
        return LoadedState(sub)

    def __contains__(self, key):
        return dict.__contains__(self, key) or (
            isinstance(key, str) and any(k.startswith(key + ".") for k in self))

    def get(self, key, default=None):
        return self[key] if key in self else default


#: Bytes read per step: an array is filled in steps of this size, never through a second copy.
READ_CHUNK = 1 << 20


def read_into(stream, buffer):
    """Fill ``buffer`` (an array or bytearray) from the binary ``stream`` in steps of
    :data:`READ_CHUNK` bytes, so that reading never holds more than the buffer and one step;
    returns the number of bytes read (fewer than the buffer's size at the end of the stream)."""
    view = memoryview(buffer).cast("B")
    done = 0
    while done < len(view):
        n = stream.readinto(view[done:done + READ_CHUNK])
        if not n:
            break
        done += n
    return done


def _read_header(member, key, path):
    """``(shape, fortran, dtype, nbytes)`` of one ``.npy`` member, read and checked."""
    version = numpy.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"load: {path}: entry {key!r} has .npy format {version}, not 1.0 or 2.0")
    read_header = (numpy.lib.format.read_array_header_1_0 if version == (1, 0)
                   else numpy.lib.format.read_array_header_2_0)
    try:
        shape, fortran, dtype = read_header(member)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as err:
        raise ValueError(f"load: {path}: entry {key!r} has a damaged .npy header "
                         f"({type(err).__name__}: {err})") from None
    if dtype.hasobject:
        raise ValueError(f"load: {path}: entry {key!r} holds pickled Python objects; minicnn "
                         f"never unpickles (it could run arbitrary code)")
    if dtype.kind == "c":
        raise ValueError(f"load: {path}: entry {key!r} holds complex numbers ({dtype}); minicnn "
                         f"states are real arrays")
    if dtype.kind not in "biufSU":
        raise ValueError(f"load: {path}: entry {key!r} holds {dtype} values; minicnn states are "
                         f"numbers and strings")
    return shape, fortran, dtype, math.prod(shape) * dtype.itemsize


def _read_member(archive, info, path, budget):
    """One ``.npy`` member as an array: its header checked against the zip entry, and its size
    against ``budget`` (the bytes still allowed; ``None``: no limit), before allocating."""
    key = info.filename[:-4]
    claimed_ratio = info.file_size / max(info.compress_size, 1)
    if info.compress_type != zipfile.ZIP_STORED and claimed_ratio > MAX_DEFLATE_RATIO:
        raise ValueError(f"load: {path}: entry {key!r} claims {info.file_size} bytes from "
                         f"{info.compress_size} compressed (more than deflate can produce); refused")
    with archive.open(info) as member:
        shape, fortran, dtype, nbytes = _read_header(member, key, path)
        header = member.tell()
        if header + nbytes != info.file_size:
            raise ValueError(f"load: {path}: entry {key!r} declares shape {shape} of {dtype} "
                             f"({nbytes} bytes) but the archive entry holds {info.file_size - header} "
                             f"bytes; the file is damaged or forged")
        if budget is not None and nbytes > budget:
            raise ValueError(f"load: {path}: entry {key!r} declares shape {shape} of {dtype} "
                             f"({nbytes} bytes), more than the {budget} bytes left of what a "
                             f"well-formed file of this kind holds; the file is damaged or forged")
        array = numpy.empty(math.prod(shape), dtype=dtype)
        if read_into(member, array) != nbytes:
            raise ValueError(f"load: {path}: entry {key!r} is truncated")
    return array.reshape(shape, order="F" if fortran else "C")


def _is_safetensors(path):
    """Whether ``path`` names a safetensors file (by its extension) rather than an ``.npz``."""
    return os.fspath(path).endswith(".safetensors")


def _selected(key, keys):
    """Whether entry ``key`` is one of ``keys`` or under one of them (``"model"``: ``model.*``)."""
    return keys is None or any(key == k or key.startswith(k + ".") for k in keys)


def entry_shapes(path):
    """``{key: shape}`` of the arrays in a file written by :func:`save`, from their headers
    alone (nothing of their size is read or allocated)."""
    path = os.fspath(path)
    if _is_safetensors(path):
        return {key: entry[1] for key, entry in safetensors.read_header(path)[1].items()}
    shapes = {}
    with _open_archive(path) as archive:
        for key, info in _members(archive, path):
            with archive.open(info) as member:
                shapes[key] = _read_header(member, key, path)[0]
    return shapes


@contextlib.contextmanager
def _open_archive(path):
    """The zip archive at ``path``; ``ValueError`` saying what the file is if it is not one."""
    with open(path, "rb") as f:
        start = f.read(8)
    if not start.startswith(b"PK"):
        raise _not_an_archive(path, start)
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise ValueError(f"load: {path} is not a readable .npz archive ({e})") from e


_CONVERT_TORCH = ("convert a PyTorch state dict with 'minicnn convert-torch {path} weights.npz' "
                  "(needs torch), then load weights.npz")


def _members(archive, path):
    """``(key, zip entry)`` of each ``.npy`` member; any other member is a ``ValueError``."""
    for info in archive.infolist():
        if info.filename == "data.pkl" or info.filename.endswith("/data.pkl"):  # torch.save's zip
            raise ValueError(f"load: {path} is a PyTorch file (torch.save), which minicnn never "
                             f"unpickles; {_CONVERT_TORCH.format(path=path)}")
        if not info.filename.endswith(".npy"):
            raise ValueError(f"load: {path}: entry {info.filename!r} is not a .npy array")
        yield info.filename[:-4], info


def _not_an_archive(path, start):
    """The ``ValueError`` for a file that is not a zip archive, saying what it seems to be."""
    if start.startswith(b"\x93NUMPY"):
        kind = "a single .npy array (numpy.save), not an .npz archive of named arrays"
    elif start[:1] == b"\x80":
        kind = (f"a Python pickle (a torch.save file, for example), which minicnn never unpickles; "
                f"{_CONVERT_TORCH.format(path=path)}")
    elif not start:
        kind = "empty"
    else:
        kind = "not an .npz (zip) archive"
    return ValueError(f"load: {path} is {kind}")


def load(path, map_location=None, weights_only=True, *, keys=None, max_bytes=None):
    """Read a file written by :func:`save` into a flat :class:`LoadedState` (see the module
    docstring for what is refused).

    ``map_location`` (PyTorch's argument): ``None`` or ``"cpu"`` keeps NumPy arrays; ``"cuda"``
    (or ``mc.device("cuda")``) returns CuPy arrays. ``weights_only`` is accepted for PyTorch code:
    minicnn files only ever hold arrays, so both values load them the same way.

    ``keys``: read only these entries and those under them (``keys=("model",)`` reads
    ``model.*``). ``max_bytes``: the most the arrays read may hold together, what a well-formed
    file of its kind holds (a checkpoint: see :func:`minicnn.train.checkpoint.max_checkpoint_bytes`);
    an entry whose header declares more is refused before it is allocated.
    """
    path = os.fspath(path)
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"load: map_location must be None or a device name such as 'cpu' or "
                        f"'cuda', got {map_location!r}")
    device = backend.normalize_device(map_location or "cpu")
    out = LoadedState()
    if _is_safetensors(path):
        arrays = safetensors.read(path, keys, max_bytes)[0]
        out.update((k, a if device == "cpu" else backend.to_device(a, device)) for k, a in arrays.items())
        return out
    budget = max_bytes
    with _open_archive(path) as archive:
        for key, info in _members(archive, path):
            if not _selected(key, keys):
                continue
            array = _read_member(archive, info, path, budget)
            if budget is not None:
                budget -= array.nbytes
            if array.dtype.kind == "U" and array.ndim == 0:
                out[key] = str(array)
            else:
                out[key] = array if device == "cpu" else backend.to_device(array, device)
    return out
