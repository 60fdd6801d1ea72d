"""Programs that the distributed tests run under ``mpiexec -n 2`` (and, for the reference, in one
process): ``python tests/distributed/dist_scenarios.py NAME OUT_DIR``.

Each writes what the test compares to ``OUT_DIR/<name>-rank<r>.npz``. The helpers here are
imported by the tests too, so that the reference run is the same code on one process.
"""
import os
import sys
import time

import numpy as np

import minicnn as mc
import minicnn.distributed as dist
from minicnn import nn, optim
from minicnn.nn.parallel import DistributedDataParallel
from minicnn.utils.data import DistributedSampler

GLOBAL_BATCH, EXAMPLES, EPOCHS = 8, 24, 2


def small_net(sync):
    """A little CNN with batch norm in both its forms (2-D after the conv, 1-D after the linear)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 3 * 3, 6), nn.BatchNorm1d(6), nn.ReLU(),
                        nn.Linear(6, 3)).double()
    return nn.SyncBatchNorm.convert_sync_batchnorm(net) if sync else net


def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((EXAMPLES, 1, 6, 6)), rng.integers(0, 3, EXAMPLES)


def train(model, rank, world_size):
    """Momentum SGD over EPOCHS epochs of EXAMPLES examples in global batches of GLOBAL_BATCH,
    this rank's share drawn by DistributedSampler. Returns the state dict of the bare model."""
    x, y = data()
    sampler = DistributedSampler(range(EXAMPLES), num_replicas=world_size, rank=rank, seed=3)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    local = GLOBAL_BATCH // world_size
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        order = np.array(list(sampler))
        for start in range(0, len(order), local):
            idx = order[start:start + local]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(mc.tensor(x[idx])), mc.tensor(y[idx]))
            loss.backward()
            opt.step()
    bare = model.module if isinstance(model, DistributedDataParallel) else model
    return bare.state_dict()


def run(name, out_dir):
    if name == "cli_rank_fails":  # minicnn train where rank 1 alone cannot read its data
        from minicnn.cli import main
        data_root = out_dir if os.environ["PMI_RANK"] == "1" else sys.argv[3]
        sys.exit(main(["train", "--model", "lenet5", "--data-root", data_root, "--batch-size", "8",
                       "--epochs", "1", "--out", os.path.join(out_dir, "run"), "--quiet"]))
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    out = os.path.join(out_dir, f"{name}-rank{rank}.npz")
    if name in ("sync_bn", "plain_bn"):
        mc.manual_seed(100 + rank)  # different starts: the construction broadcast must fix that
        model = DistributedDataParallel(small_net(sync=name == "sync_bn"), bucket_cap_mb=0.001)
        np.savez(out, **train(model, rank, world))
    elif name == "collectives":
        t = mc.tensor(np.arange(3, dtype=np.float64) + 10 * rank)
        dist.all_reduce(t)
        m = mc.tensor(np.array([rank], dtype=np.int64))
        dist.all_reduce(m, dist.ReduceOp.MAX)
        a = mc.tensor(np.full(2, float(rank + 1)))
        dist.all_reduce(a, dist.ReduceOp.AVG)
        b = np.full((2, 3), float(rank))[:, ::2]    # a strided view: reduced through a copy
        dist.broadcast(b, 1)
        dist.barrier()
        np.savez(out, sum=t.data, max=m.data, avg=a.data, bcast=b, world=world)
    elif name == "raise":
        if rank == 1:
            raise RuntimeError("rank 1 gives up")
        dist.all_reduce(mc.tensor(np.zeros(1)))    # rank 0 waits here for a rank that is gone
    elif name == "silent":  # rank 1 never joins the collective: rank 0's timeout stops both
        dist.destroy_process_group()
        dist.init_process_group("mpi", timeout=__import__("datetime").timedelta(seconds=2))
        if rank == 1:
            time.sleep(120)
        dist.all_reduce(mc.tensor(np.zeros(1)))
    elif name == "single":  # no launcher: world size 1, DDP's step is the bare model's step
        mc.manual_seed(5)
        bare = small_net(sync=True)
        twin = small_net(sync=False)
        twin.load_state_dict(bare.state_dict())
        ddp = DistributedDataParallel(bare)
        state = train(ddp, 0, 1)
        keys = sorted(ddp.state_dict())
        ddp.load_state_dict(bare.state_dict())            # the bare form loads too
        class Half(nn.Module):  # a parameter that takes no part in the loss
            def __init__(self):
                super().__init__()
                self.used, self.unused = nn.Linear(2, 2), nn.Linear(2, 2)

            def forward(self, x):
                return self.used(x)
        try:
            DistributedDataParallel(Half())(mc.ones(1, 2)).sum().backward()
            missing = "no error"
        except RuntimeError as err:
            missing = str(err)
        np.savez(out, world=world, keys=np.array(keys), missing=missing, **{"ddp." + k: v for k, v in state.items()},
                 **{"twin." + k: v for k, v in train(twin, 0, 1).items()})
    elif name == "nccl_single":  # on one GPU: NCCL's collectives, and DDP's step = the bare step
        dist.destroy_process_group()
        dist.init_process_group("nccl")
        t = mc.tensor(np.arange(4.0)).to("cuda")
        dist.all_reduce(t, dist.ReduceOp.MAX)
        dist.broadcast(t, 0)
        dist.barrier()
        mc.manual_seed(5)
        bare = small_net(sync=True).to("cuda")
        twin = small_net(sync=False).to("cuda")
        twin.load_state_dict(bare.state_dict())
        x, y = data()
        for model in (DistributedDataParallel(bare), twin):
            nn.functional.cross_entropy(model(mc.tensor(x).to("cuda")), mc.tensor(y).to("cuda")).backward()
        np.savez(out, t=t.numpy(), backend=dist.get_backend(),
                 **{f"ddp.{i}": p.grad.get() for i, p in enumerate(bare.parameters())},
                 **{f"twin.{i}": p.grad.get() for i, p in enumerate(twin.parameters())})
    elif name == "world_size":
        dist.destroy_process_group()
        dist.init_process_group("mpi", world_size=4)
    dist.destroy_process_group()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])  # (cli_rank_fails: sys.argv[3] is the data folder of rank 0)
