"""Datasets: arrays of images and labels, and where they come from.

Every dataset here keeps the whole split in memory as two NumPy arrays,

* ``dataset.data``: the images, ``uint8``, shape ``(N, C, H, W)`` (NCHW, as everywhere in minicnn);
* ``dataset.targets``: the class indices, ``int64``, shape ``(N,)``;

so a mini-batch is one fancy-indexing step, ``data[indices]``, rather than a Python loop over
images (:meth:`ArrayDataset.get_batch`, which :class:`~minicnn.data.DataLoader` uses). Indexing
one example, ``dataset[i]``, returns ``(image, label)``: a ``float32`` ``(C, H, W)`` image scaled
to ``[0, 1]`` with the dataset's transform applied, and a Python ``int``.

:class:`MNIST` and :class:`FashionMNIST` look for the four official IDX files in a list of
places (see :meth:`MNIST.search_dirs`) and download them when they are nowhere to be found.
:class:`CIFAR10` reads either official format from a folder you give it. :class:`Subset`
picks some examples (or some classes) of another dataset.
"""
import http.client
import operator
import os
from pathlib import Path

import numpy as np

from . import cifar
from .download import download_file
from .idx import read_idx

#: System-wide folders searched, after the user's own, for ``<folder>/<dataset name>``.
#: Debian's ``dataset-fashion-mnist`` package installs into ``/usr/share/datasets/fashion-mnist``.
#: A module-level list so that tests (or a site configuration) can change it.
SYSTEM_DATA_DIRS = [Path("/usr/share/datasets")]

#: Environment variable naming a folder that holds data sets (directly or in ``<name>``/).
DATA_ENV = "MINICNN_DATA"


class DatasetNotFoundError(FileNotFoundError, RuntimeError):
    """A data set's files are not in any of the places searched (and could not be downloaded).

    It is both a ``FileNotFoundError`` and a ``RuntimeError``, so either ``except`` catches it.
    """


def gather_batch(data, targets, indices, transform=None):
    """The examples ``indices`` of ``(data, targets)`` as a float batch, in one vectorised step.

    ``uint8`` images are converted to ``float32`` and divided by 255 (as torchvision's
    ``ToTensor``); floating-point images are only converted to ``float32``. ``transform``, if
    given, is then applied to the whole ``(B, C, H, W)`` batch. Returns ``(x, y)`` with ``y``
    ``int64`` of shape ``(B,)``.
    """
    x = data[indices].astype(np.float32)  # fancy indexing copies; astype then converts in place
    if data.dtype == np.uint8:
        np.divide(x, 255, out=x)
    if transform is not None:
        x = transform(x)
    return x, targets[indices].astype(np.int64, copy=False)


def fetch_batch(dataset, indices):
    """Collect the examples ``indices`` of any dataset as a batch ``(x, y)``.

    Uses, in this order: the dataset's own ``get_batch`` (all datasets of this module); its
    ``data``/``targets`` arrays and ``transform`` (a user dataset shaped like ours); or, for any
    other dataset, ``dataset[i]`` once per index, stacked (slow, but works for everything).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if hasattr(dataset, "get_batch"):
        return dataset.get_batch(indices)
    data, targets = getattr(dataset, "data", None), getattr(dataset, "targets", None)
    if isinstance(data, np.ndarray) and isinstance(targets, np.ndarray):
        return gather_batch(data, targets, indices, getattr(dataset, "transform", None))
    items = [dataset[int(i)] for i in indices]
    x = np.stack([np.asarray(image, dtype=np.float32) for image, _ in items])
    y = np.array([int(label) for _, label in items], dtype=np.int64)
    return x, y


def _check_index(index, length):
    """Turn ``index`` into a non-negative int below ``length``, as Python sequences do."""
    index = operator.index(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index out of range for a dataset of {length} examples")
    return index


class ArrayDataset:
    """A dataset held as two arrays: images ``(N, C, H, W)`` and integer labels ``(N,)``.

    Parameters
    ----------
    images : array_like
        ``uint8`` (pixel values 0..255, scaled to [0, 1] when read) or floating point (used as
        they are). An ``(N, H, W)`` array is taken as single-channel and becomes ``(N, 1, H, W)``.
    targets : array_like
        ``N`` integer class indices, stored as ``int64``.
    transform : callable, optional
        Applied to float images; it receives whole batches ``(B, C, H, W)`` (see
        :mod:`minicnn.data.transforms`, whose transforms all accept batches).
    classes : list of str, optional
        Class names, ``classes[k]`` for label ``k``.
    """

    classes = None

    def __init__(self, images, targets, transform=None, classes=None):
        images = np.asarray(images)
        targets = np.asarray(targets)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (N, C, H, W) or (N, H, W), got {images.shape}")
        if targets.shape != (len(images),):
            raise ValueError(f"expected {len(images)} targets of shape ({len(images)},), got {targets.shape}")
        if targets.dtype.kind not in "iu":
            raise ValueError(f"expected integer targets, got dtype {targets.dtype}")
        self.data = images
        self.targets = targets.astype(np.int64, copy=False)
        self.transform = transform
        if classes is not None:
            self.classes = list(classes)

    def __len__(self):
        return len(self.data)

    def get_batch(self, indices):
        """Examples ``indices`` as ``(x float32 (B, C, H, W), y int64 (B,))``, transform applied."""
        return gather_batch(self.data, self.targets, indices, self.transform)

    def __getitem__(self, index):
        """Example ``index`` as ``(image float32 (C, H, W) in [0, 1], label int)``."""
        index = _check_index(index, len(self))
        x, y = self.get_batch(np.array([index]))
        return x[0], int(y[0])

    def __repr__(self):
        lines = [f"{type(self).__name__}(", f"    examples: {len(self)}",
                 f"    image shape: {tuple(self.data.shape[1:])}"]
        lines += [f"    {key}: {value}" for key, value in self._repr_extra()]
        if self.transform is not None:
            lines.append(f"    transform: {self.transform!r}")
        return "\n".join(lines + [")"])

    def _repr_extra(self):
        return []


#: ``TensorDataset`` is another name for :class:`ArrayDataset` (two arrays: images, targets).
TensorDataset = ArrayDataset


class Subset:
    """The examples ``indices`` of ``dataset``, in that order, as a dataset of their own.

    Batches are still gathered in one step from the underlying arrays. ``relabel``, a dict
    from old to new label covering every label in the subset, changes the labels on the way
    out (see :meth:`of_classes`).
    """

    def __init__(self, dataset, indices, relabel=None):
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of {n} examples")
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + n, indices)
        self.classes = getattr(dataset, "classes", None)
        self._lookup = None
        if relabel is not None:
            size = max(relabel) + 1
            self._lookup = np.full(size, -1, dtype=np.int64)
            for old, new in relabel.items():
                self._lookup[old] = new
            if hasattr(dataset, "targets"):
                present = np.unique(np.asarray(dataset.targets)[self.indices])
                missing = sorted(set(present.tolist()) - set(relabel))
                if missing:
                    raise ValueError(f"Subset: relabel has no new label for the label(s) {missing}")

    @classmethod
    def of_classes(cls, dataset, classes, relabel=False):
        """The examples of ``dataset`` whose label is in ``classes`` (e.g. to fine-tune on some
        classes). With ``relabel=True`` the labels become ``0 .. len(classes)-1`` in the order
        given, so a new ``len(classes)``-way output layer can be trained on them."""
        classes = [int(c) for c in classes]
        indices = np.flatnonzero(np.isin(dataset.targets, classes))
        mapping = {old: new for new, old in enumerate(classes)} if relabel else None
        subset = cls(dataset, indices, relabel=mapping)
        if relabel and getattr(dataset, "classes", None) is not None:
            subset.classes = [dataset.classes[c] for c in classes]
        return subset

    def __len__(self):
        return len(self.indices)

    def _map_labels(self, y):
        return y if self._lookup is None else self._lookup[y]

    def get_batch(self, indices):
        """Examples ``indices`` of the subset, fetched from the underlying dataset in one step."""
        x, y = fetch_batch(self.dataset, self.indices[np.asarray(indices, dtype=np.int64)])
        return x, self._map_labels(y)

    def __getitem__(self, index):
        x, y = self.get_batch(np.array([_check_index(index, len(self))]))
        return x[0], int(y[0])

    @property
    def targets(self):
        """The subset's labels (``int64``), after relabelling."""
        return self._map_labels(np.asarray(self.dataset.targets)[self.indices])

    def __repr__(self):
        return f"Subset({len(self)} of {len(self.dataset)} examples of {type(self.dataset).__name__})"


# --------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------

class MNIST(ArrayDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey, 10 classes.

    Parameters
    ----------
    root : str or path, optional
        A folder holding the IDX files (directly or in a ``<name>`` sub-folder). When given, it
        is the only place searched (never a fall-back to other folders, which could hold other
        data) and where missing files are downloaded to.
    train : bool
        The training split (``train-*`` files) or the test split (``t10k-*`` files).
    transform : callable, optional
        Applied to float images, batch-wise (see :class:`ArrayDataset`).
    download : bool
        Download the files when they are not found. They go to ``root``, or to
        ``~/.minicnn/data/<name>`` when no root is given, and are checked against the official
        MD5 checksums.

    ``data`` is ``uint8`` ``(N, 1, 28, 28)``; ``targets`` ``int64`` ``(N,)``. The files may be
    gzipped or not (``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``).
    """

    name = "mnist"
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    # MD5 of the official gzipped files, as published with torchvision's MNIST dataset.
    md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    install_hint = ""
    #: The most examples a split has (the training split's 60,000): a file whose header promises
    #: more is refused before anything is allocated.
    max_examples = 60_000

    def __init__(self, root=None, train=True, transform=None, download=True):
        self.train = train
        prefix = "train" if train else "t10k"
        self.files = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
        self.folder = self._locate(root, download)
        images_path, labels_path = (self._existing(self.folder, stem) for stem in self.files)
        images = read_idx(images_path, max_bytes=self.max_examples * 28 * 28)
        labels = read_idx(labels_path, max_bytes=self.max_examples)
        self._validate(images, labels, images_path, labels_path)
        super().__init__(images[:, None], labels, transform=transform)

    # -- finding the files ---------------------------------------------------------------

    @classmethod
    def search_dirs(cls, root=None):
        """The folders searched for the files, in order: ``root`` and ``root/<name>`` when a
        ``root`` is given (and nothing else); otherwise ``$MINICNN_DATA`` and
        ``$MINICNN_DATA/<name>``, ``~/.minicnn/data/<name>``, and ``<d>/<name>`` for each ``d``
        in ``SYSTEM_DATA_DIRS`` (``/usr/share/datasets/<name>``).
        """
        if root is not None:
            return [Path(root), Path(root) / cls.name]
        dirs = []
        env = os.environ.get(DATA_ENV)
        if env:
            dirs += [Path(env), Path(env) / cls.name]
        dirs.append(cls.home_dir())
        dirs += [Path(d) / cls.name for d in SYSTEM_DATA_DIRS]
        return dirs

    @classmethod
    def home_dir(cls):
        """``~/.minicnn/data/<name>``, the default download folder."""
        return Path.home() / ".minicnn" / "data" / cls.name

    @staticmethod
    def _existing(folder, stem):
        """``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first), else None."""
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def _locate(self, root, download):
        """The first searched folder holding both files of the split; download if none does."""
        searched = self.search_dirs(root)
        for folder in searched:
            if all(self._existing(folder, stem) for stem in self.files):
                return folder
        problem = "download=False, so nothing was downloaded."
        if download:
            target = Path(root) if root is not None else self.home_dir()
            try:
                for stem in self.files:
                    if self._existing(target, stem) is None:
                        filename = f"{stem}.gz"
                        download_file(self.url + filename, target / filename, md5=self.md5[filename])
                return target
            except (OSError, RuntimeError, http.client.HTTPException) as err:  # URLError is an OSError
                problem = f"Downloading from {self.url} into {target} failed: {err}"
        raise DatasetNotFoundError(self._not_found_message(searched, problem))

    def _not_found_message(self, searched, problem):
        places = "".join(f"\n  {d}" for d in searched)
        ways = [f"download the four files from {self.url} into a folder and give that folder "
                f"as --data-root DIR on the command line (root=... in Python, or set "
                f"{DATA_ENV}=/that/folder)",
                f"run once with network access (download=True in Python), which saves them to "
                f"{self.home_dir()}"]
        if self.install_hint:
            ways.insert(0, self.install_hint)
        return (f"{type(self).__name__}: could not find {self.files[0]}[.gz] and "
                f"{self.files[1]}[.gz].\nLooked in:{places}\n{problem}\n"
                f"To get the data, do one of:" + "".join(f"\n  - {way}" for way in ways))

    # -- checking what was read ----------------------------------------------------------

    def _validate(self, images, labels, images_path, labels_path):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                             f"found {images.dtype} {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{labels_path}: expected a 1-D uint8 array of labels, "
                             f"found {labels.dtype} {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{labels_path}: expected {len(images)} labels (one per image in "
                             f"{images_path}), found {len(labels)}")
        if len(labels) and labels.max() >= len(self.classes):
            raise ValueError(f"{labels_path}: labels must lie in [0, {len(self.classes)}), "
                             f"found a {labels.max()}")

    def _repr_extra(self):
        return [("split", "train" if self.train else "test"), ("folder", self.folder)]


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, with photos of 10 kinds of clothing.

    Same parameters and search order as :class:`MNIST`, with the folder name ``fashion-mnist``.
    On Debian/Ubuntu ``apt-get install dataset-fashion-mnist`` installs the files into
    ``/usr/share/datasets/fashion-mnist``, where they are found without downloading. (Debian
    re-compresses the files, so they do not match the MD5 sums below; those are checked only on
    downloads. Files found on disk are checked by their IDX headers.)
    """

    name = "fashion-mnist"
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    # MD5 of the official gzipped files, as published with torchvision's FashionMNIST dataset.
    md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    install_hint = "on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist"


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------

class CIFAR10(ArrayDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, 10 classes.

    ``root`` is a folder holding ``cifar-10-batches-bin/`` (the binary version) or
    ``cifar-10-batches-py/`` (the Python version), as unpacked from the official archives at
    https://www.cs.toronto.edu/~kriz/cifar.html, or one of those two folders itself. When both
    are there the binary version is used: it needs no unpickling. Pickled batches are read with
    a restricted unpickler that can build nothing but arrays (see :mod:`minicnn.data.cifar`).

    ``data`` is ``uint8`` ``(N, 3, 32, 32)``; ``targets`` ``int64`` ``(N,)``. Nothing is
    downloaded.
    """

    classes = cifar.CLASSES
    FORMATS = {  # folder name -> (training batch files, test batch files, reader)
        "cifar-10-batches-bin": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"],
                                 cifar.read_cifar10_binary),
        "cifar-10-batches-py": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                                cifar.read_cifar10_python),
    }

    def __init__(self, root, train=True, transform=None):
        self.train = train
        self.folder, files, reader = self._locate(Path(root), train)
        parts = [reader(self.folder / name) for name in files]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        super().__init__(images, labels, transform=transform)

    def _locate(self, root, train):
        """The batch folder, the files of the split, and the reader for their format."""
        looked = []
        for format_dir, (train_files, test_files, reader) in self.FORMATS.items():
            files = train_files if train else test_files
            for folder in (root / format_dir, root):
                looked.append(f"  {folder}/{{{', '.join(files)}}}")
                if all((folder / name).is_file() for name in files):
                    return folder, files, reader
        split = "training" if train else "test"
        raise DatasetNotFoundError(
            f"CIFAR10: could not find the {split} batches under {root}. Looked for:\n"
            + "\n".join(looked)
            + "\nDownload and unpack cifar-10-binary.tar.gz (or cifar-10-python.tar.gz) from "
              "https://www.cs.toronto.edu/~kriz/cifar.html and give the folder as --data-root "
              "DIR on the command line (root=... in Python).")

    def _repr_extra(self):
        return [("split", "train" if self.train else "test"), ("folder", self.folder)]
