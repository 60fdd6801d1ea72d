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

Everything the header promises is checked against what the file holds: a file that is not IDX,
uses an unknown type code or is cut short raises ``ValueError`` saying which file, what was
expected and what was found.
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


def _read_bytes(path):
    """All bytes of ``path``, decompressed first if the file is a gzip stream."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        # EOFError: the compressed stream stops early; OSError/zlib.error: it is corrupt.
        raise ValueError(f"{path}: damaged gzip stream ({err})") from None


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
    raw = _read_bytes(path)

    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: expected a 4-byte header, found {len(raw)} bytes")
    if raw[0:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file: expected the magic bytes 00 00, "
                         f"found {raw[0]:02x} {raw[1]:02x}")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code: expected one of {known}, found 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: bad IDX header: expected at least 1 dimension, found 0")

    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header: expected {header_len} bytes for "
                         f"{ndim} dimensions, found {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))

    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        dims = "x".join(str(s) for s in shape)
        raise ValueError(f"{path}: IDX payload {what}: the header promises {dims} elements of "
                         f"{dtype.itemsize} byte(s) = {expected} bytes, found {found}")

    flat = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    # astype copies into native byte order, which also makes the array writable
    # (np.frombuffer over ``bytes`` is read-only).
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


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
