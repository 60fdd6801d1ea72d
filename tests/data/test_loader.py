"""DataLoader batching and shuffling; ArrayDataset and Subset."""
import numpy as np
import pytest

from minicnn.data import ArrayDataset, DataLoader, RandomHorizontalFlip, Subset


def _dataset(n=10, transform=None):
    """n images of shape (2, 3, 3) holding 0, 1, 2, ... (mod 256); labels 0, 1, 2, 3, 0, ..."""
    images = (np.arange(n * 2 * 3 * 3) % 256).astype(np.uint8).reshape(n, 2, 3, 3)
    return ArrayDataset(images, np.arange(n) % 4, transform=transform)


class PlainDataset:
    """A dataset with nothing but ``len`` and ``[]``: the loader's slow path."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, dtype=np.float64), i * 10


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),
    (8, 4, False, [4, 4]),
    (8, 4, True, [4, 4]),
    (3, 5, True, []),
    (0, 2, False, []),
])
def test_batch_sizes_and_len(n, batch_size, drop_last, sizes):
    loader = DataLoader(_dataset(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert [len(x) for x, _ in batches] == sizes
    assert len(loader) == len(sizes)


def test_batches_in_order_scaled_to_unit_range():
    ds = _dataset(10)
    (x, y), *_ = DataLoader(ds, batch_size=4)
    assert x.dtype == np.float32 and x.shape == (4, 2, 3, 3)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(x, ds.data[:4] / np.float32(255))
    last_x, last_y = list(DataLoader(ds, batch_size=4))[-1]
    assert last_y.tolist() == [0, 1]


def test_seeded_shuffle_is_repeatable_and_a_permutation(seed):
    loader = DataLoader(_dataset(50), batch_size=8, shuffle=True)

    def one_pass():
        return np.concatenate([x[:, 0, 0, 0] for x, _ in loader])

    seed(123)
    first, second = one_pass(), one_pass()
    seed(123)
    again = one_pass()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # a new order every epoch
    np.testing.assert_array_equal(np.sort(first), np.sort(_dataset(50).data[:, 0, 0, 0] / np.float32(255)))


def test_labels_follow_their_images_when_shuffled(seed):
    seed(0)
    ds = _dataset(14)  # first pixel of image i: 18 * i (< 256)
    for x, y in DataLoader(ds, batch_size=4, shuffle=True):
        index = np.rint(x[:, 0, 0, 0] * 255).astype(int) // 18
        np.testing.assert_array_equal(y, ds.targets[index])


def test_dataset_and_loader_transforms_are_applied_to_batches():
    calls = []

    def record(name):
        def transform(x):
            calls.append((name, x.shape))
            return x + 1
        return transform

    loader = DataLoader(_dataset(6, transform=record("dataset")), batch_size=4,
                        transform=record("loader"))
    x, _ = next(iter(loader))
    assert calls == [("dataset", (4, 2, 3, 3)), ("loader", (4, 2, 3, 3))]
    np.testing.assert_allclose(x, _dataset(6).data[:4] / np.float32(255) + 2, atol=1e-6)


def test_generic_datasets_work_one_item_at_a_time():
    x, y = next(iter(DataLoader(PlainDataset(5), batch_size=3)))
    assert x.dtype == np.float32 and x.shape == (3, 1, 2, 2)
    assert y.dtype == np.int64 and y.tolist() == [0, 10, 20]


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)


def test_array_dataset():
    images = np.random.default_rng(0).random((5, 4, 4)).astype(np.float64)  # (N, H, W) floats
    ds = ArrayDataset(images, [0, 1, 0, 1, 2], classes=["a", "b", "c"])
    assert ds.data.shape == (5, 1, 4, 4) and ds.targets.dtype == np.int64
    x, y = ds[-1]
    np.testing.assert_allclose(x[0], images[-1].astype(np.float32))  # floats are not rescaled
    assert y == 2 and ds.classes == ["a", "b", "c"] and len(ds) == 5
    with pytest.raises(ValueError, match="targets"):
        ArrayDataset(images, [0, 1])
    with pytest.raises(ValueError, match="integer targets"):
        ArrayDataset(images, np.zeros(5))
    assert "examples: 5" in repr(ds)


def test_getitem_applies_the_transform(seed):
    ds = _dataset(3, transform=RandomHorizontalFlip(p=1.0))
    x, _ = ds[1]
    np.testing.assert_array_equal(x, ds.data[1, :, :, ::-1] / np.float32(255))


def test_subset():
    ds = _dataset(10)
    sub = Subset(ds, [7, 2, -1])
    assert len(sub) == 3 and sub.targets.tolist() == [3, 2, 1]
    x, y = next(iter(DataLoader(sub, batch_size=3)))
    np.testing.assert_array_equal(x, ds.data[[7, 2, 9]] / np.float32(255))
    assert y.tolist() == [3, 2, 1] and sub[1][1] == 2
    nested = Subset(sub, [2, 0])
    assert nested.targets.tolist() == [1, 3] and nested[0][1] == 1
    with pytest.raises(IndexError):
        Subset(ds, [10])
    with pytest.raises(ValueError, match=r"no new label for the label\(s\) \[2\]"):
        Subset(ds, [1, 2], relabel={1: 0})


def test_subset_of_classes_with_relabelling():
    ds = _dataset(12)
    ds.classes = ["zero", "one", "two", "three"]
    kept = Subset.of_classes(ds, [3, 1])
    assert kept.targets.tolist() == [1, 3, 1, 3, 1, 3] and kept.classes == ds.classes
    relabelled = Subset.of_classes(ds, [3, 1], relabel=True)
    assert relabelled.targets.tolist() == [1, 0, 1, 0, 1, 0]
    assert relabelled.classes == ["three", "one"]
    _, y = next(iter(DataLoader(relabelled, batch_size=6)))
    assert y.tolist() == [1, 0, 1, 0, 1, 0]


def test_batches_are_cpu_tensors_that_backend_helpers_accept():
    """The loader yields Tensors (as PyTorch's); code that moves arrays with
    ``backend.to_device`` (the trainer) keeps working, through ``numpy.asarray(tensor)``."""
    import minicnn as mc
    from minicnn import backend
    x, y = next(iter(DataLoader(_dataset(6), batch_size=4, num_workers=3, pin_memory=True)))
    assert isinstance(x, mc.Tensor) and isinstance(y, mc.Tensor) and x.device == "cpu"
    moved = backend.to_device(x, "standin")
    assert backend.device_of(moved) == "standin" and tuple(moved.shape) == (4, 2, 3, 3)
    np.testing.assert_array_equal(np.asarray(y), [0, 1, 2, 3])


def test_loader_keeps_the_data_set_on_the_device(device):
    """``device=...``: the same batches as on the host (same seed), as Tensors on the device; an
    array data set is copied there once, and every later batch is gathered there."""
    import minicnn as mc
    from minicnn import backend
    from minicnn.data import ArrayDataset, DataLoader
    from minicnn.data.transforms import Compose, RandomCrop, RandomHorizontalFlip
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 256, (37, 1, 8, 8), dtype=np.uint8), rng.integers(0, 10, 37))
    augment = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])

    def batches(where):
        mc.manual_seed(5)
        loader = DataLoader(data, batch_size=10, shuffle=True, transform=augment, device=where)
        out = [(x, y) for x, y in loader]
        return loader, out

    _, host = batches("cpu")
    loader, there = batches(device)
    assert len(there) == len(host) == 4
    for (xh, yh), (xd, yd) in zip(host, there):
        assert xd.device == yd.device == device and xd.dtype == np.float32 and yd.dtype == np.int64
        np.testing.assert_array_equal(backend.to_numpy(xd.data), xh.data)
        np.testing.assert_array_equal(backend.to_numpy(yd.data), yh.data)
    if device != "cpu":
        assert loader._on_device is not None and backend.device_of(loader._on_device[0]) == device
