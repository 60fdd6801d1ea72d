"""The CUDA paths without a GPU: every kernel of ``cuda_kernels`` compiled as C++ and run on the CPU.

A CUDA kernel in this package is a grid-stride loop: thread ``t`` of ``T`` threads handles the
elements ``t, t + T, t + 2T, ...``. With one block of one thread the loop visits every element in
turn, so the very source CuPy compiles for the GPU also compiles as plain C++ once ``SHIM`` defines
``__global__``, ``blockIdx`` and friends away. This module builds those shared libraries (with the
system's ``g++``), loads them with ctypes and lets them stand in for ``cupy.RawKernel``.

``with cuda_paths_on_standin():`` then runs the CUDA classes of ``gpu.py`` on the stand-in device
(``registry.paths_of("cuda", on="standin")``): a whole training step takes the GPU's code path,
wrappers, argument order, typed scalars and kernels included, on a machine without a GPU. The
tests compare that step with the reference; ``benchmarks/launches.py`` counts its kernel launches.

It is slow (one CPU thread walks every element): use small batches. It needs a C++ compiler
(:func:`cxx_compiler`); the libraries are cached in the temporary directory by source hash.
"""
import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy

from .. import backend
from . import cuda_kernels, registry

SHIM = r"""
#include <math.h>
struct minicnn_dim3 { unsigned x, y, z; };
static const minicnn_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const minicnn_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __restrict__
#define __shared__ static
#define __device__ static inline
static inline void __syncthreads() {}
"""
"""Prepended to a kernel source to compile it as C++ on the CPU (one thread: the loop is serial)."""

FLAGS = ["-O2", "-shared", "-fPIC"]


def cxx_compiler():
    """The command that compiles C++ here (``g++``, or ``gcc -x c++``), or None."""
    if shutil.which("g++"):
        return ["g++"]
    if shutil.which("gcc"):
        return ["gcc", "-x", "c++"]
    return None


def _cache_dir():
    path = Path(tempfile.gettempdir()) / f"minicnn-cuda-on-cpu-{os.getuid() if hasattr(os, 'getuid') else 0}"
    path.mkdir(exist_ok=True)
    return path


INDEXES = (numpy.int32, numpy.int64)


def build_kernels(dtypes=(numpy.float32, numpy.float64), directory=None):
    """``{kernel source text: (ctypes library, dtype, index dtype)}`` for every kernel in
    ``cuda_kernels.SOURCES``, for each float type and both index types (``INDEXES``).

    Compiles in parallel what the cache lacks; raises ``RuntimeError`` with the compiler's message
    if a source does not compile, and when there is no C++ compiler."""
    compiler = cxx_compiler()
    if compiler is None:
        raise RuntimeError("cuda_on_cpu: no C++ compiler (g++ or gcc) to build the CUDA kernels on the CPU")
    directory = Path(directory) if directory is not None else _cache_dir()
    wanted, jobs = {}, {}
    for name in cuda_kernels.SOURCES:
        for dtype, index in ((d, i) for d in dtypes for i in INDEXES):
            source = cuda_kernels._source(name, dtype, index)
            text = SHIM + source
            digest = hashlib.sha256((" ".join(compiler + FLAGS) + text).encode()).hexdigest()[:20]
            library = directory / f"{name}_{numpy.dtype(dtype).name}_{numpy.dtype(index).name}_{digest}.so"
            wanted[source] = (library, numpy.dtype(dtype), numpy.dtype(index))
            if not library.exists():  # this process's own source and output files, then one rename
                cpp = library.with_suffix(f".{os.getpid()}.cpp")
                cpp.write_text(text)
                partial = library.with_suffix(f".{os.getpid()}.part")
                jobs[library] = (cpp, partial, subprocess.Popen(compiler + FLAGS + ["-o", str(partial), str(cpp), "-lm"],
                                                           stderr=subprocess.PIPE, text=True))
    for library, (cpp, partial, job) in jobs.items():
        _, errors = job.communicate(timeout=300)
        if job.returncode != 0:
            raise RuntimeError(f"cuda_on_cpu: {cpp} does not compile as C++:\n{errors}")
        os.replace(partial, library)  # atomic: another process may build the same file
        cpp.unlink()  # kept only when it does not compile, for the message
    return {source: (ctypes.CDLL(str(library)), dtype, index) for source, (library, dtype, index) in wanted.items()}


class CpuKernel:
    """A CPU-built kernel called as CuPy calls a ``RawKernel``: ``kernel(grid, block, args)``.

    Refuses what CuPy would get wrong: arrays that are not C-contiguous or of another dtype than
    the kernel's float type (int64 index arrays and pointer tables, float64 scratch of double
    sums aside), and untyped (Python) or mistyped scalars. Counts its launches and reports each
    to the stand-in's watchers.
    """

    def __init__(self, function, name, dtype, index=numpy.int64):
        self.function, self.name, self.dtype, self.index = function, name, numpy.dtype(dtype), numpy.dtype(index)
        self.launches, self.grids = 0, []

    def _argument(self, arg):
        if isinstance(arg, backend.StandinArray):
            arg = arg._a
        if isinstance(arg, numpy.ndarray):
            if not arg.flags.c_contiguous or arg.dtype not in (self.dtype, numpy.int64, numpy.float64):
                raise TypeError(f"{self.name}: a {arg.dtype} array (C-contiguous: {arg.flags.c_contiguous}) "
                                f"for a {self.dtype} kernel")
            return ctypes.c_void_p(arg.ctypes.data)
        if isinstance(arg, numpy.uint64):  # a seed or a threshold (unsigned long long)
            return ctypes.c_ulonglong(int(arg))
        if isinstance(arg, numpy.integer):
            if arg.dtype != self.index:
                raise TypeError(f"{self.name}: a {arg.dtype} scalar for a kernel indexed by {self.index}")
            return (ctypes.c_int if self.index == numpy.int32 else ctypes.c_longlong)(int(arg))
        if isinstance(arg, numpy.floating):
            if arg.dtype != self.dtype:
                raise TypeError(f"{self.name}: a {arg.dtype} scalar for a {self.dtype} kernel")
            return (ctypes.c_float if self.dtype == numpy.float32 else ctypes.c_double)(arg)
        raise TypeError(f"{self.name}: untyped kernel argument {arg!r} ({type(arg).__name__})")

    def __call__(self, grid, block, args):
        if not (len(grid) == 1 and len(block) == 1 and 1 <= grid[0] <= cuda_kernels.MAX_BLOCKS):
            raise ValueError(f"{self.name}: launch configuration grid={grid} block={block}")
        converted = [self._argument(a) for a in args]
        self.launches += 1
        self.grids.append(tuple(grid))
        backend.notify_standin("launch", f"kernel {self.name}")
        self.function(*converted)


class CpuRawKernels:
    """Stands in for ``cupy.RawKernel``: ``RawKernel(source, name)`` -> the CPU build of exactly
    that source text (the text CuPy would compile)."""

    def __init__(self, libraries):
        self.libraries = libraries

    def __call__(self, source, name):
        library, dtype, index = self.libraries[source]
        function = getattr(library, name)
        function.restype = None
        return CpuKernel(function, name, dtype, index)


@contextlib.contextmanager
def cuda_paths_on_standin(libraries=None):
    """Within the block, stand-in arrays take the CUDA fast paths, with CPU-built kernels.

    The kernel cache that real CuPy kernels use is set aside meanwhile (and restored after)."""
    libraries = build_kernels() if libraries is None else libraries
    saved = cuda_kernels._kernels
    cuda_kernels._kernels = {}
    backend.standin.RawKernel = CpuRawKernels(libraries)
    try:
        with registry.paths_of("cuda", on="standin"):
            yield
    finally:
        cuda_kernels._kernels = saved
        del backend.standin.RawKernel
