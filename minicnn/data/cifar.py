"""The two file formats CIFAR-10 is published in, read safely, and writers for test data.

CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html) has 50,000 training images in five
batches ``data_batch_1`` ... ``data_batch_5`` and 10,000 test images in ``test_batch``, each a
32x32 colour image stored as 3072 bytes: the 1024 red values row by row, then the 1024 green,
then the 1024 blue. That is exactly NCHW order, so a batch is ``bytes.reshape(N, 3, 32, 32)``.

* The **binary version** (``cifar-10-batches-bin/data_batch_1.bin`` ...) is a plain sequence of
  records of 1 label byte followed by the 3072 pixel bytes.
* The **Python version** (``cifar-10-batches-py/data_batch_1`` ...) is a pickled dict
  ``{b'batch_label': ..., b'labels': [...], b'data': uint8 array (10000, 3072), b'filenames': [...]}``.

Unpickling runs code: a pickle may name any importable function and have it called (the classic
payload is ``os.system``). :class:`RestrictedUnpickler` therefore resolves only the handful of
NumPy internals an array's pickle refers to and refuses every other name, and
:func:`read_cifar10_python` then checks that what came out is a dict with the expected keys,
types and shapes. Prefer the binary version, which needs no unpickling at all.

A pickle can also be small and still expand hugely: a list that refers to the same row object
100,000 times costs a few bytes per reference in the file but 3072 numbers per row once turned
into an array, and a row of lists that each refer to one long list becomes a 3-D array of
gigabytes. Memory is therefore bounded by the file: a file larger than a batch of 10,000 images
can be (:data:`MAX_PYTHON_BATCH_BYTES`) is refused unread, so the unpickled objects are bounded by
the file's size; a batch claiming more images than 10,000 or than its bytes can hold (every pixel
takes at least one) is refused before its array is allocated; and a list is converted row by row
after checking that each row is a list of 3072 integers (never handed whole to NumPy, which would
expand nested lists), into a ``uint8`` array of the final size.

:func:`write_cifar10_binary` and :func:`write_cifar10_python` write small files in both formats,
for tests and for experimenting without the real data.
"""
import io
import os
import pickle

import numpy as np

try:  # NumPy >= 2 keeps its internals in numpy._core; pickles made by NumPy 1 name numpy.core.
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32  # 3072
RECORD_BYTES = 1 + IMAGE_BYTES  # label byte + pixels, binary version
#: Images in one batch file of the official data set (five training batches, one test batch).
BATCH_IMAGES = 10_000
#: The largest a pickled batch of :data:`BATCH_IMAGES` images can be: every pixel in at most two
#: bytes (a Python 3 pickle stores the array's bytes as UTF-8 text, and a nested list an int in two
#: bytes), plus a megabyte for labels, file names and framing. Larger files are refused unread.
MAX_PYTHON_BATCH_BYTES = 2 * BATCH_IMAGES * RECORD_BYTES + (1 << 20)


def _latin1_encode(text, encoding):
    """The only use of ``_codecs.encode`` we allow: turning a str back into bytes.

    Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(latin1_text, 'latin1')``,
    which an array's raw data goes through. Any other encoding is refused.
    """
    if not isinstance(text, str) or encoding != "latin1":
        raise ValueError("refusing _codecs.encode with anything but a str and 'latin1'")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and plain Python data, and nothing else.

    ``pickle`` turns the names it meets in a stream (``GLOBAL`` opcodes) into objects by
    calling :meth:`find_class`; overriding it is the documented way to restrict unpickling.
    Dicts, lists, tuples, strings, bytes and numbers need no names. A NumPy array needs its
    rebuild function, ``numpy.ndarray`` and ``numpy.dtype`` (under NumPy 1 or 2 module names);
    every other name raises ``ValueError`` before anything it names is imported or called.
    """

    ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,  # protocol 5 arrays
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,  # bytes pickled by Python 3 at protocol 2
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise ValueError(f"refusing to unpickle {module}.{name}: only NumPy arrays and "
                             f"plain Python data are allowed") from None


def restricted_loads(data):
    """Unpickle ``data`` (bytes) with :class:`RestrictedUnpickler`.

    ``encoding='bytes'`` keeps Python 2 strings (the official files were written by Python 2)
    as ``bytes``, which is why the official keys read as ``b'data'``.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ValueError:
        raise
    except Exception as err:  # a damaged stream can fail in many ways; report them as one
        raise ValueError(f"not a valid pickle ({type(err).__name__}: {err})") from None


def _integers(values, count, path, what):
    """``values``, a list of ``count`` Python (or NumPy) integers or an integer array of shape
    ``(count,)``, as an int64 array. A list is checked element type by element type before it is
    converted, so a nested list (which NumPy would expand into a huge array) is refused at once."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu" or values.shape != (count,):
            raise ValueError(f"{path}: expected {count} integer {what}, found a {values.dtype} "
                             f"array of shape {values.shape}")
        return values.astype(np.int64)
    if not isinstance(values, list) or len(values) != count:
        found = f"{len(values)}" if isinstance(values, list) else f"a {type(values).__name__}"
        raise ValueError(f"{path}: expected {count} integer {what} in a list, found {found}")
    kinds = set(map(type, values))
    if not all(issubclass(kind, (int, np.integer)) for kind in kinds):
        raise ValueError(f"{path}: expected {count} integer {what}, found "
                         f"{sorted(k.__name__ for k in kinds)} values")
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise ValueError(f"{path}: {what} holds an integer too large for a pixel or label") from None


def _check_labels(labels, count, path):
    labels = _integers(labels, count, path, "labels (one per image)")
    if count and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{path}: labels must lie in [0, {len(CLASSES)}), found "
                         f"{labels.min()}..{labels.max()}")
    return labels


def _check_pixels(values, path, where):
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError(f"{path}: pixel values must lie in 0..255, found {values.min()}..{values.max()} "
                         f"{where}")


def _images(data, path, file_size):
    """A batch's ``data`` (an integer array or a list of rows, ``N x 3072``, values 0..255) as
    ``uint8 (N, 3072)``, with ``N`` at most :data:`BATCH_IMAGES` and what the file can hold (every
    pixel takes at least one byte of it), checked before anything of that size is allocated."""
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "iu" or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
            raise ValueError(f"{path}: expected 'data' to be an integer array of shape (N, "
                             f"{IMAGE_BYTES}), found {data.dtype} array of shape {data.shape}")
        _check_pixels(data, path, "in 'data'")
        rows = len(data)
    elif isinstance(data, list):
        rows = len(data)
    else:
        raise ValueError(f"{path}: expected 'data' to be an array or a list, found {type(data).__name__}")
    most = min(BATCH_IMAGES, file_size // IMAGE_BYTES)
    if rows > most:
        raise ValueError(f"{path}: 'data' holds {rows} images = {rows * IMAGE_BYTES} pixels; a "
                         f"{file_size}-byte batch file holds at most {most} (each pixel takes at "
                         f"least one byte, and a batch has at most {BATCH_IMAGES} images): the "
                         f"file is damaged or hostile")
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8)
    images = np.empty((rows, IMAGE_BYTES), dtype=np.uint8)
    for i, row in enumerate(data):
        values = _integers(row, IMAGE_BYTES, path, f"pixels in row {i} of 'data'")
        _check_pixels(values, path, f"in row {i} of 'data'")
        images[i] = values
    return images


def read_cifar10_binary(path):
    """Read one batch of the binary version. Returns ``(images uint8 (N,3,32,32), labels int64 (N,))``."""
    path = os.fspath(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except MemoryError:
        raise MemoryError(f"{path}: not enough memory to read this CIFAR-10 batch") from None
    if raw.size % RECORD_BYTES:
        raise ValueError(f"{path}: expected a whole number of {RECORD_BYTES}-byte records "
                         f"(1 label byte + {IMAGE_BYTES} pixels), found {raw.size} bytes")
    records = raw.reshape(-1, RECORD_BYTES)
    labels = _check_labels(records[:, 0], len(records), path)
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE).copy()
    return images, labels


def read_cifar10_python(path):
    """Read one pickled batch of the Python version, safely.

    The file (at most :data:`MAX_PYTHON_BATCH_BYTES`) is unpickled with
    :class:`RestrictedUnpickler` and must hold a dict with at least the keys ``data`` (integer
    array or list of rows, ``N x 3072`` with ``N`` at most 10,000, values 0..255) and ``labels``
    (``N`` integers in 0..9); keys may be ``bytes`` (as in the official files) or ``str``.
    Anything else raises ``ValueError``. Returns ``(images uint8 (N,3,32,32), labels int64 (N,))``.
    """
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    if file_size > MAX_PYTHON_BATCH_BYTES:
        raise ValueError(f"{path}: {file_size} bytes, more than a pickled batch of {BATCH_IMAGES} "
                         f"images takes (at most {MAX_PYTHON_BATCH_BYTES}): the file is damaged "
                         f"or hostile")
    with open(path, "rb") as f:
        raw = f.read(file_size + 1)
    if len(raw) != file_size:
        raise ValueError(f"{path}: the file changed while it was read ({len(raw)} bytes, "
                         f"expected {file_size}); is it a regular file?")
    try:
        batch = restricted_loads(raw)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    del raw
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = {"data", "labels"} - set(batch)
    if missing:
        raise ValueError(f"{path}: expected the keys 'data' and 'labels', found {sorted(map(str, batch))}")
    try:
        images = _images(batch["data"], path, file_size)
    except MemoryError:
        raise MemoryError(f"{path}: not enough memory for the 'data' of this batch") from None
    labels = _check_labels(batch["labels"], len(images), path)
    return images.reshape(-1, *IMAGE_SHAPE), labels


def _check_for_writing(images, labels):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 images of shape (N, 3, 32, 32), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),):
        raise ValueError(f"expected {len(images)} labels, got shape {labels.shape}")
    return images, labels


def write_cifar10_binary(path, images, labels):
    """Write ``images`` (uint8, (N, 3, 32, 32)) and ``labels`` as a binary-version batch file."""
    images, labels = _check_for_writing(images, labels)
    records = np.empty((len(images), RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(len(images), IMAGE_BYTES)
    records.tofile(os.fspath(path))


def write_cifar10_python(path, images, labels, batch_label="fake batch", protocol=2):
    """Write ``images`` and ``labels`` as a pickled Python-version batch, laid out as the official
    files are (bytes keys, ``data`` an (N, 3072) uint8 array, ``labels`` a list of ints)."""
    images, labels = _check_for_writing(images, labels)
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), IMAGE_BYTES),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(images))],
    }
    with open(os.fspath(path), "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
