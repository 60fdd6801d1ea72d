"""Parts of minicnn.distributed that need no second process: errors without a process group,
the backward callback that DDP uses, SyncBatchNorm's conversion, DDP's buckets."""
import datetime

import numpy as np
import pytest

import minicnn as mc
import minicnn.distributed as dist
from minicnn import nn
from minicnn.function import Function, queue_callback
from minicnn.nn.parallel.distributed import _buckets


@pytest.mark.parametrize("call", [dist.get_rank, dist.get_world_size, dist.barrier, dist.get_backend,
                                  dist.destroy_process_group,
                                  lambda: dist.all_reduce(mc.zeros(2)), lambda: dist.broadcast(mc.zeros(2), 0),
                                  lambda: nn.parallel.DistributedDataParallel(nn.Linear(2, 2))])
def test_without_init_process_group_every_call_says_so(call):
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"has not been initialized; call "
                                           r"minicnn.distributed.init_process_group\(\) first"):
        call()


@pytest.mark.parametrize("kwargs, message", [
    (dict(backend="gloo"), "init_process_group: backend must be 'mpi' or 'nccl', got 'gloo'"),
    (dict(backend="mpi", timeout=30), "timeout must be a positive datetime.timedelta, got 30"),
    (dict(backend="mpi", timeout=datetime.timedelta(0)), "timeout must be a positive"),
])
def test_bad_init_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dist.init_process_group(**kwargs)
    assert not dist.is_initialized()


def test_the_launcher_is_read_from_the_environment(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert dist.launcher_world_size() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert dist.launcher_world_size() == 3
    monkeypatch.setenv("PMI_SIZE", "2")
    assert dist.launcher_world_size() == 2


class Twice(Function):
    """y = 2x; its backward queues a note of its own."""

    def __init__(self, log, name):
        self.log, self.name = log, name

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        log, name = self.log, self.name  # (the walk frees the Function before callbacks run)
        queue_callback(lambda: log.append((name, w.grad.data.copy())))
        return 2 * g


w = mc.tensor(np.ones(2), requires_grad=True)


def test_queued_callbacks_run_once_the_walk_is_done_with_every_gradient_in_place():
    log = []
    w.grad = None
    Twice(log, "outer")(Twice(log, "inner")(w)).sum().backward()
    assert [name for name, _ in log] == ["outer", "inner"]  # in the order queued
    for _, grad in log:  # run after the leaf got its gradient
        np.testing.assert_array_equal(grad, [4.0, 4.0])


def test_queue_callback_outside_a_backward_and_a_failed_walk():
    with pytest.raises(RuntimeError, match=r"queue_callback\(\): no backward\(\) is running"):
        queue_callback(print)

    class Fails(Twice):
        def backward(self, g):
            log = self.log
            queue_callback(lambda: log.append("ran"))
            raise ArithmeticError("stop")
    log = []
    with pytest.raises(ArithmeticError):
        Twice(log, "x")(Fails(log, "f")(w)).sum().backward()
    assert log == []  # a walk that raises runs none
    with pytest.raises(RuntimeError, match="no backward"):
        queue_callback(print)  # and leaves none behind


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_mode():
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, momentum=0.2),
                          nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12, eps=1e-3)))
    model.eval()
    state, weight = model.state_dict(), model[1].weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert isinstance(model[1], nn.SyncBatchNorm) and isinstance(model[2][1], nn.SyncBatchNorm)
    assert model[1].weight is weight and model[1].momentum == 0.2 and model[2][1].eps == 1e-3
    assert not model[1].training
    assert sorted(model.state_dict()) == sorted(state)
    alone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(4))
    assert type(alone) is nn.SyncBatchNorm


def test_without_a_process_group_sync_batchnorm_is_batchnorm():
    mc.manual_seed(1)
    x = mc.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)), requires_grad=True)
    plain, sync = nn.BatchNorm2d(3).double(), nn.SyncBatchNorm(3).double()
    for layer in (plain, sync):
        (layer(x) ** 2).sum().backward()
    np.testing.assert_array_equal(plain.running_var, sync.running_var)
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        sync(mc.zeros(2, 4))


def test_buckets_keep_the_order_and_the_cap_and_split_by_dtype():
    params = [(str(i), nn.Parameter(np.zeros(n, dtype=dt))) for i, (n, dt) in
              enumerate([(100, np.float32), (100, np.float32), (300, np.float32), (10, np.float64), (5, np.float64)])]
    buckets = _buckets(params, cap_bytes=800)
    assert [[name for name, _ in b] for b in buckets] == [["0", "1"], ["2"], ["3", "4"]]
    assert [[name for name, _ in b] for b in _buckets(params, 25 * 2**20)] == [["0", "1", "2"], ["3", "4"]]
