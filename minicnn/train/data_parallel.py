"""``mpiexec -n N minicnn train``: the same run on N processes, each on its share of every batch.

``run.py`` asks this module at each point where a data-parallel run differs from one process:

* **start**: join the launcher's processes (``init_process_group``: ``"mpi"`` on the CPU,
  ``"nccl"`` with ``--device cuda``); each process uses its share of the node's cores.
* **data**: ``--batch-size`` is per process (as PyTorch's DataLoader under DDP), so the global
  batch is N times it. Each rank's loader draws its share of every epoch with a
  :class:`~minicnn.utils.data.DistributedSampler` seeded by the run's seed.
* **model**: batch norm becomes :class:`~minicnn.nn.SyncBatchNorm` and the model is wrapped in
  :class:`~minicnn.nn.parallel.DistributedDataParallel`: N processes then take the step of one
  process on the global batch (docs/distributed.md).
* **learning rate**: with ``--scale-lr`` the rate is multiplied by N, the *linear scaling rule*
  (Goyal et al., 2017: k times the batch, k times the rate; pair it with ``--warmup-epochs``).
  Without it the rate is the one given.
* **output**: rank 0 alone evaluates, prints, draws the progress bar and writes the folder.
* **failure**: a rank that ends with a non-zero status (an error, divergence, Ctrl-C) stops every
  rank (MPI_Abort) after its message, instead of leaving the others waiting.
"""
import os

from .. import distributed as dist
from .. import rng
from ..data import DataLoader
from ..fast.threads import get_num_threads, set_num_threads
from ..nn import SyncBatchNorm
from ..nn.parallel import DistributedDataParallel
from ..utils.data import DistributedSampler
from .config import UsageError


def start(config, resume_path, scale_lr, threads):
    """Join the processes the launcher started; returns ``(rank, world_size)``, or ``None`` for a
    run of one process. Raises :class:`UsageError` for a launch that cannot work."""
    launched = dist.launcher_world_size() or 1
    trained_on = config.get("world_size", 1) if resume_path else launched
    if trained_on != launched:
        raise UsageError(f"--resume: the run was trained on {trained_on} process(es), this launch "
                         f"has {launched}; resume it with 'mpiexec -n {trained_on}'")
    if launched == 1:
        if scale_lr:
            raise UsageError("--scale-lr multiplies the learning rate by the number of processes: "
                             "launch N > 1 of them with 'mpiexec -n N minicnn train ...'")
        return None
    try:
        dist.init_process_group("nccl" if config.get("device") == "cuda" else "mpi")
    except (RuntimeError, ValueError) as err:
        raise UsageError(str(err)) from None
    world = dist.get_world_size()
    if resume_path:
        if scale_lr:
            raise UsageError("--scale-lr applies when a run starts; a resumed run keeps its "
                             f"learning rate ({config['lr']:g})")
    elif scale_lr:
        config["lr"] = config["lr"] * world
        config["lr_scaled_by"] = world
    config["world_size"] = world
    if threads is None:  # the node's cores shared by its processes
        on_node = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
        set_num_threads(max(1, get_num_threads() // int(on_node or world)))
    return dist.get_rank(), world


def shard(loader, config, rank, world):
    """The training loader for this rank: the same loader, drawing its share of each epoch."""
    sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=True,
                                 seed=config["seed"])
    return DataLoader(loader.dataset, batch_size=loader.batch_size, drop_last=loader.drop_last,
                      collate_fn=loader.collate_fn, transform=loader.transform,
                      device=loader.device, sampler=sampler)


def wrap(model, config, rank):
    """Synchronised batch norm, rank 0's weights everywhere, gradients averaged after backward;
    then each rank its own random stream (dropout masks, augmentation) from the run's seed."""
    ddp = DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))
    rng.manual_seed(config["seed"] + rank)
    return ddp


def finish(status):
    """Leave the process group; a non-zero status stops every rank (this one's message is out)."""
    if not dist.is_initialized():
        return status
    if status != 0:
        dist.abort(status, f"rank {dist.get_rank()} of {dist.get_world_size()} stopped with exit "
                           f"status {status}; stopping every rank")
    dist.destroy_process_group()
    return status


def after_resume(config, rank, world, done):
    """A resumed run restored rank 0's random stream on every rank: give each its own again."""
    rng.manual_seed(config["seed"] + rank + world * done)
