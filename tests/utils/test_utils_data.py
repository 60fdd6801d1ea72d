"""minicnn.utils.data, as torch.utils.data: Dataset, TensorDataset, DataLoader, random_split."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.data import ArrayDataset
from minicnn.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split


def test_tensor_dataset_accepts_tensors_arrays_and_lists():
    X = mc.randn(10, 4)
    for Y in (mc.tensor(list(range(10))), np.arange(10), list(range(10))):
        ds = TensorDataset(X, Y)
        x, y = ds[3]
        assert isinstance(x, mc.Tensor) and x.shape == (4,) and x.dtype == np.float32
        assert y.item() == 3 and y.dtype == np.int64 and len(ds) == 10
    assert [t.shape for t in TensorDataset(X, np.zeros((10, 2, 2)), X).tensors] == [(10, 4), (10, 2, 2), (10, 4)]
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(X, mc.zeros(9))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_loader_yields_cpu_tensors_float32_images_int64_labels():
    images = (np.arange(6 * 4) % 256).astype(np.uint8).reshape(6, 1, 2, 2)
    loader = DataLoader(ArrayDataset(images, np.arange(6) % 3), batch_size=4, shuffle=False,
                        num_workers=2, pin_memory=True, drop_last=False)
    (x, y), (x2, y2) = list(loader)
    assert isinstance(x, mc.Tensor) and x.device == "cpu" and x.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 0] and x2.shape == (2, 1, 2, 2)
    np.testing.assert_allclose(x.numpy(), images[:4] / 255, rtol=1e-6)
    assert x.to("standin").device == "standin"          # the PyTorch habit: x.to(device)


def test_loader_over_a_tensor_dataset_keeps_its_dtypes_and_covers_every_row():
    X, Y = mc.arange(20).reshape(10, 2), mc.arange(10)
    batches = list(DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=True))
    assert [len(yb) for _, yb in batches] == [3, 3, 3, 1]
    seen = np.concatenate([yb.numpy() for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.numpy()[:, 0], 2 * yb.numpy())
        assert xb.dtype == np.int64


class Squares(Dataset):
    """A user dataset written the PyTorch way: __len__ and __getitem__ only."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return mc.full((1, 2, 2), float(i)), i * i


def test_user_dataset_and_collate_fn():
    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.shape == (3, 1, 2, 2) and x.dtype == np.float32 and y.tolist() == [0, 1, 4]
    batch = next(iter(DataLoader(Squares(), batch_size=2, collate_fn=lambda items: [b for _, b in items])))
    assert batch == [0, 1]
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


def test_loader_argument_checks():
    ds = TensorDataset(mc.zeros(4, 1), mc.zeros(4))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="collate_fn"):
        DataLoader(ds, collate_fn=3)


@pytest.mark.parametrize("lengths, sizes", [([7, 3], [7, 3]), ([0.8, 0.2], [8, 2]),
                                            ([0.5, 0.25, 0.25], [6, 2, 2]), ([10], [10])])
def test_random_split_sizes_disjoint_and_seeded(lengths, sizes):
    ds = TensorDataset(mc.arange(10).reshape(10, 1).float(), mc.arange(10))
    mc.manual_seed(1)
    parts = random_split(ds, lengths)
    assert [len(p) for p in parts] == sizes and all(isinstance(p, Subset) for p in parts)
    indices = np.concatenate([p.indices for p in parts])
    assert sorted(indices.tolist()) == list(range(10))
    mc.manual_seed(1)
    np.testing.assert_array_equal(np.concatenate([p.indices for p in random_split(ds, lengths)]), indices)
    fixed = random_split(ds, lengths, generator=np.random.default_rng(0))
    assert sum(len(p) for p in fixed) == 10


def test_random_split_refuses_lengths_that_do_not_add_up():
    ds = TensorDataset(mc.zeros(10, 1), mc.zeros(10))
    with pytest.raises(ValueError, match="summing to 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="fractions"):
        random_split(ds, [0.5, 0.6])


def test_module_paths_match_pytorch():
    import minicnn.nn.functional as F
    import minicnn.utils.data as data
    assert mc.utils.data is data and mc.nn.functional is F
    assert data.DataLoader is mc.data.DataLoader and data.TensorDataset is mc.data.TensorDataset
    for name in ("conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "relu", "softmax",
                 "log_softmax", "cross_entropy", "nll_loss", "linear", "dropout", "batch_norm",
                 "flatten", "mse_loss", "one_hot"):
        assert callable(getattr(F, name)), name
