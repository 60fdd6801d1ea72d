"""``minicnn.distributed``: several processes train one model, with PyTorch's names.

Data parallelism: every process (a *rank*, numbered 0 .. world_size-1) holds the same model and
takes its own slice of every batch. After ``backward()`` the ranks average their gradients, so
every rank takes the same optimizer step: N processes with batches of B train exactly as one
process with batches of N*B (docs/distributed.md). The ranks talk through *collectives*, each
called by every rank:

    all_reduce(t, op)   every rank's t becomes op(t of rank 0, t of rank 1, ...), in place
    broadcast(t, src)   every rank's t becomes rank src's t
    barrier()           return once every rank has got here

Backends, existing engines (minicnn implements no collective of its own):

    "mpi"    MPI through mpi4py, on the host: ``pip install 'minicnn[dist]'`` (mpi4py and MPICH)
    "nccl"   NVIDIA's NCCL through ``cupy.cuda.nccl``: CuPy arrays, one GPU per process

Launch N processes with MPI's launcher, ``mpiexec -n 2 python train.py``; rank and world size
come from it. Without a launcher a program is world size 1 and everything works the same.
A rank that raises stops every rank (MPI_Abort) instead of leaving the others waiting, and a
collective that waits longer than ``timeout`` raises on the waiting rank (which then stops all).
"""
import datetime
import enum
import os
import sys
import time

from .. import backend
from ..tensor import Tensor


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values (``dist.ReduceOp.SUM``, as PyTorch)."""
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"  # the sum divided by the world size (floating-point tensors)


_group = None          # the process group of init_process_group (None: not initialised)
_excepthook = None     # sys.excepthook before init_process_group replaced it
#: Seconds a failing rank waits, its output flushed, before MPI_Abort stops every rank.
ABORT_GRACE_SECONDS = 1.0
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # PyTorch's default


def launcher_world_size():
    """How many processes the MPI launcher says it started (None: no launcher, a plain run).

    Read from the environment that ``mpiexec`` gives each process (MPICH and Intel MPI:
    ``PMI_SIZE``; Open MPI: ``OMPI_COMM_WORLD_SIZE``), without starting MPI."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


def init_process_group(backend="mpi", *, timeout=None, world_size=-1, rank=-1):
    """Join the processes the launcher started (PyTorch's ``init_process_group``).

    ``backend``: ``"mpi"`` or ``"nccl"``. ``timeout`` (a ``datetime.timedelta``, default 30
    minutes): how long a collective waits for the other ranks before raising. ``world_size`` and
    ``rank``, when given, must agree with the launcher's (a check: the launcher decides them).
    """
    global _group
    if _group is not None:
        raise RuntimeError(f"init_process_group: already initialised (backend {_group.name!r}, "
                           f"world size {_group.size}); call destroy_process_group() first")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend must be 'mpi' or 'nccl', got {backend!r}")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if not isinstance(timeout, datetime.timedelta) or timeout.total_seconds() <= 0:
        raise ValueError(f"init_process_group: timeout must be a positive datetime.timedelta, "
                         f"got {timeout!r}")
    launched = launcher_world_size()
    if backend == "mpi":
        from .mpi import MpiGroup
        group = MpiGroup(timeout.total_seconds())
    else:
        from .nccl import NcclGroup
        group = NcclGroup(timeout.total_seconds(), launched)
    if launched is not None and launched != group.size:
        raise RuntimeError(f"init_process_group: the launcher started {launched} processes but "
                           f"MPI sees a world of {group.size}: mpiexec belongs to another MPI than "
                           f"the one mpi4py was built with (use the mpiexec of 'pip install mpich')")
    if world_size != -1 and world_size != group.size:
        raise ValueError(f"init_process_group: world_size={world_size}, but the launcher started "
                         f"{group.size} process(es) (mpiexec -n {group.size})")
    if rank != -1 and rank != group.rank:
        raise ValueError(f"init_process_group: rank={rank}, but the launcher made this process "
                         f"rank {group.rank}")
    _group = group
    if group.size > 1:
        _stop_all_ranks_on_uncaught_exception()


def _stop_all_ranks_on_uncaught_exception():
    """An exception that ends one rank ends them all (as ``python -m mpi4py`` does): otherwise the
    others would wait in their next collective for a rank that is gone."""
    global _excepthook
    _excepthook = sys.excepthook

    def excepthook(kind, value, traceback):
        _excepthook(kind, value, traceback)
        abort(1, f"rank {_group.rank} of {_group.size} failed with {kind.__name__}; "
                 f"stopping every rank")
    sys.excepthook = excepthook


def abort(exit_code=1, message=None):
    """Stop every rank now (MPI_Abort), printing ``message`` first: what a rank does when it cannot
    go on, so that the others do not wait for it. Without a group (or alone) it exits."""
    if message:
        print(f"minicnn.distributed: {message}", file=sys.stderr, flush=True)
    if _group is not None and _group.size > 1:
        # MPI_Abort kills every rank at once, and output the launcher has not forwarded yet is
        # lost (a loaded machine cut rank 0's traceback short): give it a moment first.
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        _group.abort(exit_code)
    raise SystemExit(exit_code)


def destroy_process_group():
    """Leave the process group (after a barrier); ``init_process_group`` may be called again."""
    global _group, _excepthook
    group = _require("destroy_process_group")
    if _excepthook is not None:
        sys.excepthook, _excepthook = _excepthook, None
    _group = None
    group.close()


def is_initialized():
    """Whether ``init_process_group`` has run (and no ``destroy_process_group`` since)."""
    return _group is not None


def get_backend():
    """``"mpi"`` or ``"nccl"``: the backend of the process group."""
    return _require("get_backend").name


def get_rank():
    """This process's number, 0 .. world_size - 1."""
    return _require("get_rank").rank


def get_world_size():
    """How many processes take part."""
    return _require("get_world_size").size


def barrier():
    """Return once every rank has called ``barrier()``."""
    _require("barrier").barrier()


def all_reduce(tensor, op=ReduceOp.SUM):
    """In place: ``tensor`` (a Tensor or a backend array) becomes ``op`` over every rank's."""
    group = _require("all_reduce")
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a dist.ReduceOp (SUM, PRODUCT, MIN, MAX, AVG), got {op!r}")
    array = _array("all_reduce", tensor)
    if op is ReduceOp.AVG:
        if array.dtype.kind != "f":
            raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")
        group.all_reduce(array, "sum")
        array /= group.size
    else:
        group.all_reduce(array, op.value)


def broadcast(tensor, src):
    """In place: ``tensor`` (a Tensor or a backend array) becomes rank ``src``'s on every rank."""
    group = _require("broadcast")
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < group.size:
        raise ValueError(f"broadcast: src must be a rank in 0..{group.size - 1}, got {src!r}")
    group.broadcast(_array("broadcast", tensor), src)


def _require(what):
    if _group is None:
        raise RuntimeError(f"{what}: the default process group has not been initialized; call "
                           f"minicnn.distributed.init_process_group() first")
    return _group


def _array(what, tensor):
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not backend.is_array(array):
        raise TypeError(f"{what}: expected a minicnn Tensor or a backend array, got {type(tensor).__name__}")
    return array


__all__ = ["ReduceOp", "init_process_group", "destroy_process_group", "is_initialized", "get_backend",
           "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast", "abort",
           "launcher_world_size"]
