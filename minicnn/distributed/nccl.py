"""The ``"nccl"`` backend: NVIDIA's NCCL through CuPy (``cupy.cuda.nccl``), one GPU per process.

As in ChainerMN: MPI (mpi4py) starts the processes and tells each its rank; rank 0 asks NCCL for
a unique id and broadcasts it over MPI; every rank then joins the NCCL communicator with that id.
Collectives run on the current CUDA stream, on CuPy arrays in place. A process started without
a launcher (world size 1) needs no MPI.

NCCL refuses two ranks on one GPU, so this backend is verified on one GPU (world size 1) and, for
several ranks, only on machines with several GPUs.
"""
from .. import backend

try:  # optional: CuPy (pip install 'minicnn[gpu]'), and NCCL behind it
    import cupy
except Exception:  # ImportError, or a broken CUDA installation
    cupy = None
try:
    from cupy.cuda import nccl
except Exception:
    nccl = None
try:
    from mpi4py import MPI
except ImportError:
    MPI = None

_OPS = {"sum": "NCCL_SUM", "product": "NCCL_PROD", "min": "NCCL_MIN", "max": "NCCL_MAX"}
_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
           "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "int64": "NCCL_INT64"}


class NcclGroup:
    """One NCCL communicator over every process the launcher started."""
    name = "nccl"

    def __init__(self, timeout, launcher_size):
        if cupy is None:
            raise RuntimeError("init_process_group: backend 'nccl' is not available: CuPy is not "
                               "installed (pip install 'minicnn[gpu]')")
        if not backend.cuda_available():
            raise RuntimeError("init_process_group: backend 'nccl' needs a CUDA GPU and CuPy sees "
                               "none; use backend='mpi' on CPUs")
        if nccl is None:
            raise RuntimeError("init_process_group: backend 'nccl' is not available: CuPy found no "
                               "NCCL library (pip install nvidia-nccl-cu12)")
        if MPI is None and (launcher_size or 1) > 1:
            raise RuntimeError(f"init_process_group: backend 'nccl' with {launcher_size} processes "
                               f"needs mpi4py to hand out NCCL's id (pip install 'minicnn[dist]')")
        self.mpi = None if MPI is None else MPI.COMM_WORLD
        self.rank = 0 if self.mpi is None else self.mpi.Get_rank()
        self.size = 1 if self.mpi is None else self.mpi.Get_size()
        self.timeout = timeout  # NCCL's own collectives are not timed out (they run on the GPU)
        local = (0, 1) if self.mpi is None else _local_rank_and_size(self.mpi)
        gpus = cupy.cuda.runtime.getDeviceCount()
        if local[1] > gpus:
            raise RuntimeError(f"init_process_group: backend 'nccl' needs one GPU per process: "
                               f"{local[1]} processes on this node, {gpus} GPU(s)")
        cupy.cuda.Device(local[0]).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        if self.mpi is not None:
            uid = self.mpi.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def all_reduce(self, array, op):
        self._check("all_reduce", array)
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, _nccl_dtype(array),
                            getattr(nccl, _OPS[op]), cupy.cuda.get_current_stream().ptr)

    def broadcast(self, array, src):
        self._check("broadcast", array)
        self.comm.bcast(array.data.ptr, array.size, _nccl_dtype(array), src,
                        cupy.cuda.get_current_stream().ptr)

    def barrier(self):
        token = cupy.zeros(1, dtype=cupy.float32)
        self.all_reduce(token, "sum")
        cupy.cuda.get_current_stream().synchronize()

    def abort(self, exit_code):
        if self.mpi is not None:
            self.mpi.Abort(exit_code)
        raise SystemExit(exit_code)

    def close(self):
        self.barrier()
        self.comm.destroy()

    def _check(self, what, array):
        if backend.device_of(array) != "cuda" or not array.flags.c_contiguous:
            raise TypeError(f"{what}: backend 'nccl' needs a contiguous CUDA array, got a "
                            f"{backend.device_of(array)} array of shape {tuple(array.shape)}")


def _nccl_dtype(array):
    name = _DTYPES.get(array.dtype.name)
    if name is None:
        raise TypeError(f"backend 'nccl': no NCCL type for dtype {array.dtype}; expected one of "
                        f"{', '.join(_DTYPES)}")
    return getattr(nccl, name)


def _local_rank_and_size(comm):
    """This process's number among the processes on its node, and how many there are."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    return node.Get_rank(), node.Get_size()
