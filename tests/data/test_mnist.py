"""MNIST / Fashion-MNIST: real files, the search order, downloading, the not-found message."""
from pathlib import Path

import numpy as np
import pytest

import minicnn.data.datasets as datasets
from minicnn.data import MNIST, DatasetNotFoundError, FashionMNIST
from minicnn.data.download import md5sum
from minicnn.data.idx import write_idx

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (SYSTEM_FASHION / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    train = FashionMNIST(root=SYSTEM_FASHION, train=True, download=False)
    test = FashionMNIST(root=SYSTEM_FASHION, train=False, download=False)
    assert train.data.shape == (60000, 1, 28, 28) and train.data.dtype == np.uint8
    assert test.data.shape == (10000, 1, 28, 28)
    assert train.targets.dtype == np.int64 and train.targets.shape == (60000,)
    assert train.targets.min() == 0 and train.targets.max() == 9
    assert np.bincount(test.targets).tolist() == [1000] * 10  # the test set is balanced
    assert test.targets[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, ...
    assert len(train.classes) == 10 and train.classes[9] == "Ankle boot"
    x, y = test[0]
    assert x.dtype == np.float32 and x.shape == (1, 28, 28)
    assert 0 <= x.min() and x.max() == 1.0 and y == 9


def test_loads_gz_and_raw_files_from_root(fake_mnist, tmp_path, isolated):
    for gz in (True, False):
        folder = tmp_path / ("gz" if gz else "raw")
        written = fake_mnist(folder, gz=gz)
        for split, train in (("train", True), ("test", False)):
            ds = FashionMNIST(root=folder, train=train, download=False)
            images, labels = written[split]
            np.testing.assert_array_equal(ds.data[:, 0], images)
            np.testing.assert_array_equal(ds.targets, labels)
            assert ds.data.shape == (len(images), 1, 28, 28) and ds.targets.dtype == np.int64
            x, y = ds[-1]
            np.testing.assert_allclose(x[0], images[-1] / np.float32(255))
            assert y == labels[-1] and isinstance(y, int)
            with pytest.raises(IndexError):
                ds[len(ds)]


def test_search_order(fake_mnist, tmp_path, isolated, monkeypatch):
    """root, root/<name> and nothing else when a root is given; otherwise $MINICNN_DATA,
    $MINICNN_DATA/<name>, ~/.minicnn/data/<name>, system."""
    places = {
        "root": tmp_path / "root",
        "root-sub": tmp_path / "root2" / "fashion-mnist",
        "env": tmp_path / "env",
        "env-sub": tmp_path / "env2" / "fashion-mnist",
        "home": isolated / ".minicnn" / "data" / "fashion-mnist",
        "system": tmp_path / "sys" / "fashion-mnist",
    }
    for fill, folder in enumerate(places.values()):
        fake_mnist(folder, fill=fill)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [tmp_path / "sys"])

    def found(root=None, env=None):
        if env is None:
            monkeypatch.delenv("MINICNN_DATA", raising=False)
        else:
            monkeypatch.setenv("MINICNN_DATA", str(env))
        ds = FashionMNIST(root=root, download=False)
        return list(places.values()).index(ds.folder), int(ds.data[0, 0, 0, 0])

    assert found(root=places["root"], env=places["env"]) == (0, 0)
    assert found(root=tmp_path / "root2", env=places["env"]) == (1, 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError):  # never a fall-back from a given root
        found(root=tmp_path / "empty", env=places["env"])
    assert found(env=places["env"]) == (2, 2)
    assert found(env=tmp_path / "env2") == (3, 3)
    assert found() == (4, 4)
    for path in places["home"].iterdir():
        path.unlink()
    assert found() == (5, 5)


def test_folder_with_only_some_files_is_skipped(fake_mnist, tmp_path, isolated, monkeypatch):
    fake_mnist(tmp_path / "full", fill=7)
    partial = tmp_path / "partial"
    fake_mnist(partial, fill=1)
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MINICNN_DATA", str(partial))
    ds = FashionMNIST(root=tmp_path / "full", download=False)
    assert ds.folder == tmp_path / "full"
    assert len(FashionMNIST(train=False, download=False).data) == 5  # test files are there
    with pytest.raises(DatasetNotFoundError):  # a given root is the only place searched
        FashionMNIST(root=partial, download=False)


def test_not_found_message_lists_every_place_and_the_remedies(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [tmp_path / "sys"])
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(download=False)
    message = str(info.value)
    for place in [tmp_path / "env", tmp_path / "env" / "fashion-mnist",
                  isolated / ".minicnn" / "data" / "fashion-mnist", tmp_path / "sys" / "fashion-mnist"]:
        assert f"\n  {place}\n" in message + "\n"
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(root=tmp_path / "root", download=False)
    assert f"Looked in:\n  {tmp_path / 'root'}\n  {tmp_path / 'root' / 'fashion-mnist'}\n" in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "MINICNN_DATA" in message and "download=False" in message
    assert "--data-root DIR" in message  # what a command-line user passes
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, FileNotFoundError)


def _mirror(fake_mnist, tmp_path, cls, monkeypatch):
    """Serve fake files from a local folder through a file:// URL, with their true MD5s."""
    mirror = tmp_path / "mirror"
    written = fake_mnist(mirror)
    monkeypatch.setattr(cls, "url", mirror.as_uri() + "/")
    monkeypatch.setattr(cls, "md5", {p.name: md5sum(p) for p in mirror.iterdir()})
    return written


def test_download_to_home_checks_md5_and_leaves_no_temp_files(fake_mnist, tmp_path, isolated,
                                                              monkeypatch, capsys):
    written = _mirror(fake_mnist, tmp_path, MNIST, monkeypatch)
    ds = MNIST(train=False)  # download=True is the default
    target = isolated / ".minicnn" / "data" / "mnist"
    assert ds.folder == target
    assert sorted(p.name for p in target.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                        "t10k-labels-idx1-ubyte.gz"]
    np.testing.assert_array_equal(ds.targets, written["test"][1])
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # a progress line was shown
    # Found on disk the next time, without the mirror.
    monkeypatch.setattr(MNIST, "url", (tmp_path / "nowhere").as_uri() + "/")
    assert MNIST(train=False).folder == target


def test_download_into_root_when_given(fake_mnist, tmp_path, isolated, monkeypatch):
    _mirror(fake_mnist, tmp_path, FashionMNIST, monkeypatch)
    ds = FashionMNIST(root=tmp_path / "mine", train=True)
    assert ds.folder == tmp_path / "mine" and len(ds) == 12


def test_checksum_mismatch_discards_the_download(fake_mnist, tmp_path, isolated, monkeypatch):
    _mirror(fake_mnist, tmp_path, MNIST, monkeypatch)
    monkeypatch.setitem(MNIST.md5, "train-images-idx3-ubyte.gz", "0" * 32)
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        MNIST(train=True)
    target = isolated / ".minicnn" / "data" / "mnist"
    assert list(target.iterdir()) == []


def test_offline_gives_one_clear_error(tmp_path, isolated, monkeypatch):
    monkeypatch.setattr(MNIST, "url", (tmp_path / "offline").as_uri() + "/")
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(train=True)
    message = str(info.value)
    assert "Downloading from" in message and "failed" in message
    assert str(isolated / ".minicnn" / "data" / "mnist") in message
    assert "apt-get" not in message  # the Debian package only exists for Fashion-MNIST


def test_inconsistent_files_are_refused(fake_mnist, tmp_path, isolated):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 12 labels"):
        FashionMNIST(root=tmp_path, download=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        FashionMNIST(root=tmp_path, download=False)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        FashionMNIST(root=tmp_path, download=False)


def test_download_progress_in_a_log_file_is_one_line():
    import io

    from minicnn.data.download import _TextProgress
    log = io.StringIO()  # not a terminal
    bar = _TextProgress(3000, "train-images-idx3-ubyte.gz", stream=log)
    for _ in range(30):
        bar.update(100)
    bar.close()
    assert log.getvalue() == "train-images-idx3-ubyte.gz  3.0 kB / 3.0 kB  100%\n"
