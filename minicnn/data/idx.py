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
(:data:`MAX_GZIP_RATIO` to 1), so a small hostile file that claims gigabytes is refused at once.
A caller that knows the largest well-formed file of its kind passes ``max_bytes`` (MNIST's
images: 60000x28x28 bytes), refused likewise. The payload is then read, or decompressed
incrementally, in 1 MB steps straight into the array, so the peak memory is the declared size
plus a megabyte; one byte more than declared (trailing data, a second gzip member) is refused.
"""
import gzip
import os
import zlib

import numpy as np

from ..serialization import read_into

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


def _read_bytes(stream, n):
    """Up to ``n`` bytes of ``stream`` (fewer at its end)."""
    buffer = bytearray(n)
    return bytes(buffer[:read_into(stream, buffer)])


def _read_array(stream, path, file_size, gzipped, max_bytes):
    """The array of an open IDX stream (raw or gzip), every size checked before allocating it:
    the header's promise against ``max_bytes`` and against what the file can hold (exactly its
    size when raw; deflate's limit when gzipped). Nothing is read past the promised size but one
    byte, to refuse trailing data."""
    head = _read_bytes(stream, 4)
    if len(head) == 4 and head[:2] == b"\x00\x00":
        head += _read_bytes(stream, 4 * head[3])  # the sizes of the dimensions
    dtype, shape, header_len = _header(path, head)
    expected = declared_bytes(shape, dtype)
    dims = "x".join(str(s) for s in shape)
    if max_bytes is not None and expected > max_bytes:
        raise ValueError(f"{path}: IDX header promises {dims} elements = {expected} bytes, more "
                         f"than a file of this kind holds (at most {max_bytes} bytes): the file "
                         f"is damaged or hostile")
    if gzipped and header_len + expected > MAX_GZIP_RATIO * file_size:
        raise ValueError(f"{path}: IDX header promises {dims} elements = {expected} bytes, more "
                         f"than a {file_size}-byte gzip file can hold (at most "
                         f"{MAX_GZIP_RATIO * file_size} bytes): the file is damaged or hostile")
    if not gzipped and file_size - header_len != expected:
        found = file_size - header_len
        what = "truncated" if found < expected else "has trailing bytes"
        raise _size_error(path, shape, dtype, expected, found, what)
    array = np.empty(expected // dtype.itemsize, dtype=dtype.newbyteorder("="))
    found = read_into(stream, array)
    if found < expected:
        raise _size_error(path, shape, dtype, expected, found, "truncated")
    if stream.read(1):
        raise _size_error(path, shape, dtype, expected, f"{expected}+", "has trailing bytes")
    if dtype.byteorder == ">":  # big-endian, and this machine is not
        array.byteswap(inplace=True)  # the file is big-endian; the array is native
    return array.reshape(shape)


def read_idx(path, max_bytes=None):
    """Read an IDX file (raw or gzipped) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte.gz``.
    max_bytes : int, optional
        The most bytes a well-formed file of this kind holds (e.g. 60000x28x28 for MNIST's
        images): a header promising more is refused before anything is allocated.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order whose shape is the one in the header, e.g.
        ``(60000, 28, 28)`` ``uint8`` for the Fashion-MNIST training images.

    Raises
    ------
    ValueError
        If the magic bytes, the type code or the number of dimensions are wrong, the header
        promises more than ``max_bytes`` or than the file can hold, or the payload is shorter
        or longer than the header says. The message names the file and states what was
        expected and what was found.
    """
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            if f.read(2) != _GZIP_MAGIC:
                f.seek(0)
                return _read_array(f, path, file_size, False, max_bytes)
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _read_array(stream, path, file_size, True, max_bytes)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: damaged gzip stream ({err or 'it stops before its end'})") from None
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
