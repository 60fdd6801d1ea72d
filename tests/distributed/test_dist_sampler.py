"""DistributedSampler: each epoch, the ranks' shares partition the data set (PyTorch's rules)."""
import numpy as np
import pytest

from minicnn.utils.data import DistributedSampler


def shares(n, replicas, epoch, **kwargs):
    samplers = [DistributedSampler(range(n), num_replicas=replicas, rank=r, **kwargs) for r in range(replicas)]
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers]


@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
def test_every_epoch_the_shares_partition_the_data_set_exactly(replicas):
    n = 12 * replicas
    orders = []
    for epoch in range(4):
        parts = shares(n, replicas, epoch, seed=5)
        assert all(len(p) == 12 for p in parts)
        assert sorted(i for p in parts for i in p) == list(range(n))  # disjoint, complete
        orders.append([i for p in parts for i in p])
    assert len({tuple(o) for o in orders}) == 4  # a new order each epoch


def test_the_same_epoch_and_seed_give_the_same_shares_and_another_seed_another():
    assert shares(40, 2, 3, seed=1) == shares(40, 2, 3, seed=1)
    assert shares(40, 2, 3, seed=1) != shares(40, 2, 3, seed=2)


def test_uneven_lengths_pad_with_the_first_indices_or_drop_the_rest():
    padded = shares(10, 4, 0, shuffle=False)
    assert padded == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    dropped = shares(10, 4, 0, shuffle=False, drop_last=True)
    assert dropped == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert len(DistributedSampler(range(10), num_replicas=4, rank=0)) == 3
    tiny = shares(2, 4, 0, shuffle=False)  # fewer examples than ranks: repeated to fill
    assert tiny == [[0], [1], [0], [1]]


def test_shuffled_uneven_shares_still_cover_everything():
    parts = shares(23, 3, 2, seed=9)
    flat = [i for p in parts for i in p]
    assert set(flat) == set(range(23)) and len(flat) == 24 and len({len(p) for p in parts}) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_replicas=2, rank=2), r"DistributedSampler: rank must be in \[0, 1\], got 2"),
    (dict(num_replicas=2, rank=-1), r"rank must be in \[0, 1\], got -1"),
    (dict(num_replicas=0, rank=0), "num_replicas must be >= 1, got 0"),
    (dict(num_replicas=5, rank=0, drop_last=True), "drop_last with 4 examples for 5 replicas"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistributedSampler(range(4), **kwargs)


def test_without_a_process_group_num_replicas_and_rank_are_needed():
    with pytest.raises(RuntimeError, match="process group has not been initialized"):
        DistributedSampler(range(4))
    with pytest.raises(TypeError, match="rank must be an int, got 1.0"):
        DistributedSampler(range(4), num_replicas=2, rank=1.0)


def test_the_order_is_a_permutation_drawn_from_the_seed_and_epoch():
    s = DistributedSampler(range(8), num_replicas=1, rank=0, seed=4)
    s.set_epoch(2)
    assert list(s) == np.random.default_rng(6).permutation(8).tolist()


def test_a_dataloader_takes_a_sampler_as_pytorch():
    from minicnn.utils.data import DataLoader, TensorDataset
    import minicnn as mc
    data = TensorDataset(mc.tensor(np.arange(10.0)), mc.tensor(np.arange(10)))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, seed=0)
    loader = DataLoader(data, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [int(i) for _, y in loader for i in y.numpy()] == list(sampler)
    with pytest.raises(ValueError, match="DataLoader: sampler and shuffle=True cannot both be given"):
        DataLoader(data, batch_size=2, sampler=sampler, shuffle=True)
