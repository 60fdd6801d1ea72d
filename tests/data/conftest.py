"""Shared helpers for the tests of minicnn.data: seeding and small fake data files."""
import numpy as np
import pytest

from minicnn.data.idx import write_idx

try:
    from minicnn import manual_seed
except ImportError:  # the top-level package may not export it yet
    from minicnn.rng import manual_seed


@pytest.fixture
def seed():
    """``seed(s)`` reseeds minicnn's generator (``mc.manual_seed``)."""
    return manual_seed


def write_fake_mnist(folder, n_train=12, n_test=5, gz=True, fill=None):
    """Write the four MNIST-style IDX files into ``folder``; returns ``{"train": (x, y), "test": (x, y)}``.

    Images are random uint8 (or all ``fill`` when given, to tell folders apart), labels 0..9.
    """
    folder.mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(len(str(folder)))
    suffix = ".gz" if gz else ""
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = gen.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        if fill is not None:
            images[:] = fill
        labels = gen.integers(0, 10, size=n).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        out[split] = (images, labels)
    return out


@pytest.fixture
def fake_mnist():
    """The function :func:`write_fake_mnist` (fixtures work whatever pytest's import mode)."""
    return write_fake_mnist


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No real data anywhere: HOME is a fresh folder, $MINICNN_DATA unset, no system folders."""
    import minicnn.data.datasets as datasets

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [])
    return home
