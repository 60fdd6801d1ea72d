r"""The safetensors format: named arrays without pickle (Hugging Face's exchange format for weights).

A ``.safetensors`` file is three parts, nothing more::

    8 bytes    N, the header's length: an unsigned 64-bit little-endian integer
    N bytes    the header: a JSON object, padded with spaces
               {"__metadata__": {"architecture": "resnet20", ...},          (optional; str -> str)
                "fc.weight": {"dtype": "F32", "shape": [10, 64], "data_offsets": [0, 2560]}, ...}
    the rest   the arrays' bytes, C order, little-endian; entry k occupies bytes
               [begin, end) of this part, and the entries tile it exactly (no gap, no overlap)

``mc.save(state, "w.safetensors")`` and ``mc.load("w.safetensors")`` come here by the file's
extension (``minicnn/serialization.py``). Files are read and written by the code below, not by
the ``safetensors`` package: the format is this small, and reading it ourselves lets every field
be checked *before* anything is allocated. The tests prove the two interchangeable, in both
directions, bit for bit.

Reading refuses, with a ``ValueError`` naming the file and the entry:

* a header length past the end of the file, or a header that is not a JSON object of entries;
* a dtype outside :data:`DTYPES` (bfloat16 and the 8-bit floats have no NumPy type);
* a shape whose byte count differs from its offsets, offsets outside the data, overlapping
  entries, gaps between them or bytes after the last one;
* given ``max_bytes`` (what a well-formed file of its kind holds), entries declaring more.

So reading never allocates more than the file holds: each array is allocated once, at the size
the (checked) header declares, and filled straight from the file.
"""
import json
import math
import os

import numpy

from . import __version__

#: The format's dtype names and the NumPy types they are (little-endian).
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
          "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}
_NAMES = {numpy.dtype(v): k for k, v in DTYPES.items()}

#: The longest header accepted (the ``safetensors`` package's limit too).
MAX_HEADER_BYTES = 100_000_000


def write(stream, arrays, metadata=None):
    """Write ``arrays`` (name -> NumPy array) and ``metadata`` (str -> str, e.g. ``{"architecture":
    "resnet20"}``; ``minicnn_version`` is added) to a binary stream.

    Entries are laid out in name order. Each array is written as a C-contiguous little-endian
    copy where it is not one already (a transposed view would otherwise be written in the wrong
    order)."""
    metadata = {"minicnn_version": __version__, **(metadata or {})}
    bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
    if bad:
        raise ValueError(f"safetensors: metadata must map strings to strings; {bad[0]!r} -> "
                         f"{metadata[bad[0]]!r} does not")
    header, layout, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(arrays):
        array = numpy.asarray(arrays[name])
        kind = _NAMES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype)
        if kind is None:
            raise ValueError(f"safetensors: entry {name!r} is {array.dtype}; the format holds "
                             f"{', '.join(str(numpy.dtype(d)) for d in DTYPES.values())}")
        array = numpy.asarray(array, dtype=numpy.dtype(DTYPES[kind]), order="C")  # keeps 0-d arrays 0-d
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        layout.append(array)
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)           # pad so that the data starts 8-byte aligned
    stream.write(len(text).to_bytes(8, "little"))
    stream.write(text)
    for array in layout:
        stream.write(memoryview(array.reshape(-1)).cast("B"))


def read_header(path):
    """``(metadata, entries)`` of the file at ``path``, every field checked against
    the file's size (see the module docstring); ``entries`` maps name -> (dtype, shape, begin,
    end), with offsets from the start of the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = f.read(8)
        if len(start) < 8:
            raise ValueError(f"load: {path} is not a safetensors file: {size} bytes, shorter "
                             f"than the 8-byte header length")
        n = int.from_bytes(start, "little")
        if n > size - 8 or n > MAX_HEADER_BYTES:
            raise ValueError(f"load: {path}: the header claims {n} bytes but the file holds "
                             f"{size - 8} after the length; not a safetensors file, or truncated")
        text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ValueError(f"load: {path}: the safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"load: {path}: the safetensors header is a JSON "
                         f"{type(header).__name__}, not an object of entries")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"load: {path}: __metadata__ must map strings to strings")
    data_start, data_size = 8 + n, size - 8 - n
    entries = {name: _entry(path, name, fields, data_size) for name, fields in header.items()}
    _check_tiling(path, entries, data_size)
    return metadata, {k: (d, s, data_start + b, data_start + e) for k, (d, s, b, e) in entries.items()}


def _entry(path, name, fields, data_size):
    """One header entry as ``(dtype, shape, begin, end)``, its fields checked."""
    if not isinstance(fields, dict) or set(fields) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"load: {path}: entry {name!r} must hold exactly dtype, shape and "
                         f"data_offsets, got {fields!r}")
    kind, shape, offsets = fields["dtype"], fields["shape"], fields["data_offsets"]
    if kind not in DTYPES:
        raise ValueError(f"load: {path}: entry {name!r} has dtype {kind!r}; readable are "
                         f"{', '.join(DTYPES)}")

    def is_count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if not (isinstance(shape, list) and all(is_count(v) for v in shape)):
        raise ValueError(f"load: {path}: entry {name!r} has shape {shape!r}; expected a list of "
                         f"non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_count(v) for v in offsets)
            and offsets[0] <= offsets[1] <= data_size):
        raise ValueError(f"load: {path}: entry {name!r} has data_offsets {offsets!r}; expected "
                         f"[begin, end] with 0 <= begin <= end <= {data_size} (the data's size)")
    dtype = numpy.dtype(DTYPES[kind])
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != offsets[1] - offsets[0]:
        raise ValueError(f"load: {path}: entry {name!r} declares shape {tuple(shape)} of {kind} "
                         f"({nbytes} bytes) but its offsets span {offsets[1] - offsets[0]} bytes")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _check_tiling(path, entries, data_size):
    """The entries must cover the data part exactly once, in some order (as the package demands)."""
    end = 0
    for name, (_, _, begin, stop) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != end:
            what = "overlaps the entry before it" if begin < end else f"leaves bytes {end}..{begin} unused"
            raise ValueError(f"load: {path}: entry {name!r} at bytes [{begin}, {stop}) {what}")
        end = stop
    if end != data_size:
        raise ValueError(f"load: {path}: {data_size - end} bytes after the last entry; the file "
                         f"is damaged or forged")


def metadata(path):
    """The ``__metadata__`` of the file at ``path`` (str -> str), read from its header alone."""
    return read_header(os.fspath(path))[0]


def read(path, keys=None, max_bytes=None):
    """``(arrays, metadata)`` of the file at ``path``: name -> NumPy array, and the header's
    ``__metadata__``. ``keys`` and ``max_bytes`` as :func:`minicnn.load`: only the entries named
    in ``keys`` (or under them: ``"model"`` reads ``model.*``), refused beyond ``max_bytes``."""
    path = os.fspath(path)
    metadata, entries = read_header(path)
    chosen = {k: v for k, v in entries.items()
              if keys is None or any(k == p or k.startswith(p + ".") for p in keys)}
    total = sum(end - begin for _, _, begin, end in chosen.values())
    if max_bytes is not None and total > max_bytes:
        raise ValueError(f"load: {path}: the entries declare {total} bytes, more than the "
                         f"{max_bytes} a well-formed file of this kind holds; the file is damaged "
                         f"or forged")
    arrays = {}
    with open(path, "rb") as f:
        for name, (dtype, shape, begin, end) in chosen.items():
            array = numpy.empty(shape, dtype=dtype)
            f.seek(begin)
            if f.readinto(memoryview(array.reshape(-1)).cast("B")) != end - begin:
                raise ValueError(f"load: {path}: entry {name!r} is truncated")
            arrays[name] = array
    return arrays, metadata
