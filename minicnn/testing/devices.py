"""The devices a test runs on, and the context that puts a test on one.

    cpu           NumPy
    standin       the CPU stand-in (``standin_device.py``), as strict as CuPy
    cuda-on-cpu   the stand-in on the GPU's code path: the CUDA classes of ``fast/gpu.py``, their
                  kernels compiled as C++ for the CPU (``cuda_on_cpu.py``); tests see "standin"
    cuda          CuPy, where it sees a GPU

``tests/conftest.py`` runs every op, layer and model test on each (``MINICNN_TEST_DEVICES``
narrows the list). Kernels built with ``blocks=True`` run as blocks of threads, as on a GPU, the
grid then capped at ``BLOCKS_GRID`` blocks so that a launch stays small.
"""
import contextlib
import os

from .. import backend
from ..fast import cuda_kernels
from . import cuda_on_cpu, standin_device  # noqa: F401  (standin_device registers "standin")

CUDA_ON_CPU = "cuda-on-cpu"
BLOCKS_GRID = 8


def available_devices(wanted=None):
    """The test devices of this machine, in order, narrowed to ``wanted`` (names, comma-separated;
    default: the environment's ``MINICNN_TEST_DEVICES``) when given."""
    devices = ["cpu", "standin", CUDA_ON_CPU] + (["cuda"] if backend.cuda_available() else [])
    wanted = os.environ.get("MINICNN_TEST_DEVICES") if wanted is None else wanted
    if wanted:
        unknown = set(wanted.split(",")) - {"cpu", "standin", CUDA_ON_CPU, "cuda"}
        if unknown:
            raise ValueError(f"MINICNN_TEST_DEVICES: unknown device(s) {sorted(unknown)}; expected "
                             f"cpu, standin, {CUDA_ON_CPU} or cuda")
        devices = [d for d in devices if d in wanted.split(",")]
    return devices


@contextlib.contextmanager
def on_device(name, libraries=None):
    """``with on_device(name) as device:`` the device name a test gives its arrays. For
    ``cuda-on-cpu`` that is ``"standin"``, inside ``cuda_on_cpu.cuda_paths_on_standin`` with the
    kernels of ``libraries`` (``cuda_on_cpu.build_kernels(...)``; built here when None); kernels
    built with ``blocks=True`` launch at most ``BLOCKS_GRID`` blocks meanwhile."""
    if name != CUDA_ON_CPU:
        yield backend.normalize_device(name)
        return
    libraries = cuda_on_cpu.build_kernels() if libraries is None else libraries
    saved = cuda_kernels.MAX_BLOCKS
    if any(build.blocks for build in libraries.values()):
        cuda_kernels.MAX_BLOCKS = BLOCKS_GRID
    try:
        with cuda_on_cpu.cuda_paths_on_standin(libraries):
            yield "standin"
    finally:
        cuda_kernels.MAX_BLOCKS = saved
