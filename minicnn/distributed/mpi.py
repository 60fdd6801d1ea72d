"""The ``"mpi"`` backend: collectives by MPI, through mpi4py (``pip install 'minicnn[dist]'``).

The launcher (``mpiexec -n N``) starts N copies of the program; MPI numbers them 0..N-1 in
``MPI.COMM_WORLD``. Each collective here is MPI's own (``Iallreduce``, ``Ibcast``, ``Ibarrier``):
started without blocking and then waited for, so that a rank that never joins is reported after
the group's timeout instead of hanging every other rank for ever.

MPI reads and writes host memory: NumPy arrays are reduced where they are; arrays of another
device (CuPy) are copied to the host and back.
"""
import time

import numpy

from .. import backend

try:  # optional: importing this module must work without it (init_process_group then explains)
    from mpi4py import MPI
except ImportError:
    MPI = None

_OPS = {"sum": "SUM", "product": "PROD", "min": "MIN", "max": "MAX"}  # ReduceOp value -> MPI op


class MpiGroup:
    """Every process of ``MPI.COMM_WORLD``; ``timeout`` in seconds for each collective."""
    name = "mpi"

    def __init__(self, timeout):
        if MPI is None:
            raise RuntimeError("init_process_group: backend 'mpi' is not available: mpi4py is not "
                               "installed (pip install 'minicnn[dist]' brings mpi4py and MPICH)")
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = timeout

    def all_reduce(self, array, op):
        mpi_op = getattr(MPI, _OPS[op])
        self._in_place(array, lambda buf: self._wait(self.comm.Iallreduce(MPI.IN_PLACE, buf, op=mpi_op),
                                                     "all_reduce"))

    def broadcast(self, array, src):
        self._in_place(array, lambda buf: self._wait(self.comm.Ibcast(buf, root=src), "broadcast"))

    def barrier(self):
        self._wait(self.comm.Ibarrier(), "barrier")

    def abort(self, exit_code):
        self.comm.Abort(exit_code)  # MPI ends every rank; mpiexec exits with a non-zero status

    def close(self):
        self.barrier()  # MPI itself is finalised by mpi4py when the process exits

    def _in_place(self, array, collective):
        """Run ``collective(buffer)`` on ``array``'s values and leave the result in ``array``."""
        if isinstance(array, numpy.ndarray) and array.flags.c_contiguous:
            collective(array.reshape(-1))
            return
        host = numpy.ascontiguousarray(backend.to_numpy(array))  # another device, or a strided view
        collective(host.reshape(-1))
        array[...] = backend.to_device(host, backend.device_of(array))

    def _wait(self, request, what):
        """Wait for a started collective; after ``timeout`` seconds, raise naming it."""
        start = time.monotonic()
        while not request.Test():
            waited = time.monotonic() - start
            if waited > self.timeout:
                raise TimeoutError(f"minicnn.distributed: {what} on rank {self.rank} of {self.size} "
                                   f"waited {waited:.0f} s for the other ranks (timeout "
                                   f"{self.timeout:g} s): a rank has stopped, or the ranks run "
                                   f"different collectives")
            time.sleep(0 if waited < 0.002 else 0.0005)  # spin briefly, then leave the core to others
