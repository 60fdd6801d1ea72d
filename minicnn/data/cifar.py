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
into an array. Every pixel of a genuine batch takes at least one byte in the file, so
:func:`read_cifar10_python` refuses a batch that claims more pixels than its file has bytes,
before building the array, and reports running out of memory as a clear ``MemoryError``.

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


def _check_labels(labels, count, path):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (count,):
        raise ValueError(f"{path}: expected {count} integer labels, found {labels.dtype} "
                         f"array of shape {labels.shape}")
    if count and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{path}: labels must lie in [0, {len(CLASSES)}), found "
                         f"{labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


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

    The file is unpickled with :class:`RestrictedUnpickler` and must hold a dict with at least
    the keys ``data`` (integer array or nested list, ``N x 3072``, values 0..255) and ``labels``
    (``N`` integers in 0..9); keys may be ``bytes`` (as in the official files) or ``str``.
    Anything else raises ``ValueError``. Returns ``(images uint8 (N,3,32,32), labels int64 (N,))``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        batch = restricted_loads(raw)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = {"data", "labels"} - set(batch)
    if missing:
        raise ValueError(f"{path}: expected the keys 'data' and 'labels', found {sorted(map(str, batch))}")

    data = batch["data"]
    if not isinstance(data, (np.ndarray, list)):
        raise ValueError(f"{path}: expected 'data' to be an array or a list, found {type(data).__name__}")
    if isinstance(data, list) and len(data) * IMAGE_BYTES > len(raw):
        raise ValueError(f"{path}: 'data' lists {len(data)} images = {len(data) * IMAGE_BYTES} "
                         f"pixels, more than the {len(raw)} bytes of the file can hold (each "
                         f"pixel takes at least one byte): the file is damaged or hostile")
    try:
        data = np.asarray(data)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{path}: 'data' is not a rectangular array ({err})") from None
    except MemoryError:
        raise MemoryError(f"{path}: not enough memory for the 'data' of this batch") from None
    if data.dtype.kind not in "iu" or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise ValueError(f"{path}: expected 'data' to be an integer array of shape (N, {IMAGE_BYTES}), "
                         f"found {data.dtype} array of shape {data.shape}")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"{path}: pixel values must lie in 0..255, found {data.min()}..{data.max()}")
    labels = batch["labels"]
    if not isinstance(labels, (np.ndarray, list)):
        raise ValueError(f"{path}: expected 'labels' to be a list, found {type(labels).__name__}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: expected {len(data)} integer labels (one per image), found "
                         f"{len(labels)}")
    labels = _check_labels(labels, len(data), path)
    images = data.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
    return images, labels


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
