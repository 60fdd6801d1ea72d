"""Reading and writing IDX files, the format MNIST and Fashion-MNIST are published in.

An IDX file is a tiny header followed by the raw array, all numbers big-endian::

    offset  size        meaning
    0       2 bytes     always 0x00 0x00
    2       1 byte      element type code (0x08 = unsigned byte, see ``IDX_DTYPES``)
    3       1 byte      number of dimensions, ndim
    4       4 * ndim    the size of each dimension, as big-endian uint32
    4+4*ndim ...        the elements, in C (row-major) order, big-endian

For example ``train-images-idx3-ubyte`` starts with ``00 00 08 03``, then the sizes 60000, 28
and 28, then 60000 * 28 * 28 bytes of pixels. The files are usually distributed gzipped
(``.gz``); :func:`read_idx` recognises a gzip stream by its first two bytes (``1f 8b``), so it
does not matter whether the file name ends in ``.gz``.

Everything the header promises is checked against what the file holds, *before* any array is
allocated: a file that is not IDX, uses an unknown type code or is cut short raises
``ValueError`` saying which file, what was expected and what was found. The declared size is
computed with Python integers (no int64 overflow) and checked against the file: a raw file must
hold exactly that many bytes, and a gzipped one cannot expand more than deflate allows
(:data:`MAX_GZIP_RATIO` to 1), so a small hostile file that claims gigabytes is refused at once;
a gzip stream is then decompressed into a buffer of exactly the declared size, never more.
"""
import gzip
import os
import zlib

import numpy as np

# Element type code -> big-endian NumPy dtype, as listed in the format's description on
# Yann LeCun's MNIST page.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),  # unsigned byte
    0x09: np.dtype(">i1"),  # signed byte
    0x0B: np.dtype(">i2"),  # short (2 bytes)
    0x0C: np.dtype(">i4"),  # int (4 bytes)
    0x0D: np.dtype(">f4"),  # float (4 bytes)
    0x0E: np.dtype(">f8"),  # double (8 bytes)
}

_GZIP_MAGIC = b"\x1f\x8b"

#: The most a gzip file can expand: deflate's longest back-reference copies 258 bytes and costs at
#: least two bits, so no stream decompresses to more than about 1032 times its size. A gzip file
#: whose IDX header promises more is damaged or hostile.
MAX_GZIP_RATIO = 1032

_CHUNK = 1 << 20  # compressed bytes fed to the decompressor per step


def _decompress(path, raw, max_size):
    """The gzip stream ``raw`` decompressed, but never more than ``max_size`` bytes (one more is
    asked for, so that a stream longer than declared is noticed)."""
    stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
    out = bytearray()
    try:
        for start in range(0, len(raw), _CHUNK):
            out += stream.decompress(raw[start:start + _CHUNK], max_size + 1 - len(out))
            if len(out) > max_size:
                break
        if len(out) <= max_size:
            out += stream.flush()
    except zlib.error as err:
        raise ValueError(f"{path}: damaged gzip stream ({err})") from None
    if len(out) <= max_size and not stream.eof:
        raise ValueError(f"{path}: damaged gzip stream (it stops before its end)")
    return bytes(out)


def _header(path, head):
    """``(dtype, shape, header_len)`` from the first bytes ``head`` of an IDX file."""
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file: expected a 4-byte header, found {len(head)} bytes")
    if head[0:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file: expected the magic bytes 00 00, "
                         f"found {head[0]:02x} {head[1]:02x}")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code: expected one of {known}, found 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: bad IDX header: expected at least 1 dimension, found 0")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(f"{path}: truncated IDX header: expected {header_len} bytes for "
                         f"{ndim} dimensions, found {len(head)}")
    shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return IDX_DTYPES[code], shape, header_len


def declared_bytes(shape, dtype):
    """The payload size the header promises, as a Python int (never overflows)."""
    count = 1
    for size in shape:
        count *= int(size)
    return count * dtype.itemsize


def _size_error(path, shape, dtype, expected, found, what):
    dims = "x".join(str(s) for s in shape)
    return ValueError(f"{path}: IDX payload {what}: the header promises {dims} elements of "
                      f"{dtype.itemsize} byte(s) = {expected} bytes, found {found}")


def _read_payload(path):
    """``(dtype, shape, payload bytes)`` of an IDX file, every size checked before allocating."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = f.read(max(2, min(file_size, 4 + 4 * 255)))
        if start[:2] != _GZIP_MAGIC:
            dtype, shape, header_len = _header(path, start)
            expected = declared_bytes(shape, dtype)
            found = file_size - header_len
            if found != expected:
                what = "truncated" if found < expected else "has trailing bytes"
                raise _size_error(path, shape, dtype, expected, found, what)
            f.seek(header_len)
            return dtype, shape, f.read()
        f.seek(0)
        raw = f.read()
    # gzip: decompress just the header first, then check the promised size against the limit
    head = _decompress(path, raw[:_CHUNK], 4 + 4 * 255)
    dtype, shape, header_len = _header(path, head)
    expected = declared_bytes(shape, dtype)
    limit = MAX_GZIP_RATIO * len(raw)
    if header_len + expected > limit:
        dims = "x".join(str(s) for s in shape)
        raise ValueError(f"{path}: IDX header promises {dims} elements = {expected} bytes, more "
                         f"than a {len(raw)}-byte gzip file can hold (at most {limit} bytes): "
                         f"the file is damaged or hostile")
    data = _decompress(path, raw, header_len + expected)
    found = len(data) - header_len
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise _size_error(path, shape, dtype, expected, f"{found}{'+' if found > expected else ''}",
                          what)
    return dtype, shape, data[header_len:]


def read_idx(path):
    """Read an IDX file (raw or gzipped) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order whose shape is the one in the header, e.g.
        ``(60000, 28, 28)`` ``uint8`` for the Fashion-MNIST training images.

    Raises
    ------
    ValueError
        If the magic bytes, the type code or the number of dimensions are wrong, or the
        payload is shorter or longer than the header says. The message names the file and
        states what was expected and what was found.
    """
    path = os.fspath(path)
    try:
        dtype, shape, payload = _read_payload(path)
        flat = np.frombuffer(payload, dtype=dtype)
        # astype copies into native byte order, which also makes the array writable
        # (np.frombuffer over ``bytes`` is read-only).
        return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    except MemoryError:
        raise MemoryError(f"{path}: not enough memory to read this IDX file") from None


def write_idx(path, array):
    """Write ``array`` as an IDX file; gzip it when ``path`` ends in ``.gz``.

    Used by the tests and by tooling that makes small MNIST-like data sets. The array's dtype
    must be one the format knows (uint8, int8, int16, int32, float32 or float64); it is stored
    big-endian, as the format requires. Gzipped files are written with a zero timestamp, so
    the same array always gives the same bytes.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: expected an array with 1 to 255 dimensions, got {array.ndim}")
    by_kind = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in by_kind:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX type code; expected one of "
                         f"uint8, int8, int16, int32, float32, float64")
    code = by_kind[native]

    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.endswith(".gz"):
        with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
            gz.write(header + payload)
    else:
        with open(path, "wb") as f:
            f.write(header + payload)
