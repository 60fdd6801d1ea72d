"""The CUDA paths without a GPU: every kernel of ``cuda_kernels`` compiled as C++ and run on the CPU.

A CUDA kernel in this package is a grid-stride loop: thread ``t`` of ``T`` threads handles the
elements ``t, t + T, t + 2T, ...``. With one block of one thread the loop visits every element in
turn, so the very source CuPy compiles for the GPU also compiles as plain C++ once ``SHIM`` defines
``__global__``, ``blockIdx`` and friends away. This module builds those shared libraries (with the
system's ``g++``), loads them with ctypes and lets them stand in for ``cupy.RawModule``'s kernels.

``with cuda_paths_on_standin():`` then runs the CUDA classes of ``gpu.py`` on the stand-in device
(``registry.paths_of("cuda", on="standin")``): a whole training step takes the GPU's code path,
wrappers, argument order, typed scalars and kernels included, on a machine without a GPU. The
tests compare that step with the reference; ``benchmarks/launches.py`` counts its kernel launches.

It is slow (one CPU thread walks every element): use small batches. It needs a C++ compiler
(:func:`cxx_compiler`); the libraries are cached in the temporary directory by source hash.

One thread per block cannot show what only many threads do: a block's threads sharing work by
``threadIdx.x``, the tree sums over ``__shared__`` memory between ``__syncthreads()``, blocks that
take several channels or rows in turn. ``build_kernels(blocks=True)`` builds the same sources
behind ``BLOCKS_SHIM`` instead: each launch runs its grid as the GPU does, block after block, each
block as ``blockDim.x`` threads with their own ``threadIdx`` taking turns between barriers (fibers
on one CPU thread, in ascending order in even blocks and descending in odd ones, so that a missing
``__syncthreads()`` shows as a wrong result). It also reports misuse that hangs or silently
corrupts a GPU: threads of a block waiting at different ``__syncthreads()``, or one waiting after
another has left the kernel. For kernel tests and small steps with a capped grid.
"""
import collections
import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy

from ..fast import cuda_kernels, registry
from . import standin_device

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

BLOCKS_SHIM = r"""
#if defined(__APPLE__)
#define _XOPEN_SOURCE 600  // macOS declares the (deprecated) ucontext functions only with it
#endif
#include <math.h>
#include <ucontext.h>
#include <vector>
struct minicnn_dim3 { unsigned x, y, z; };
static minicnn_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};  // threadIdx: the running thread's
static minicnn_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __restrict__
#define __shared__ static
#define __device__ static inline

// The threads of a block are fibers (ucontext) taking turns on one CPU thread: each runs until it
// reaches __syncthreads() (or leaves the kernel), then the next one runs; once every thread has
// arrived, all go on. Even blocks run their threads in ascending order, odd blocks descending, so
// a missing __syncthreads() makes some thread read shared memory that another has not yet written
// (or has overwritten). Misuse, which hangs or corrupts on a GPU, is recorded in minicnn_misuse:
//   1: the threads of a block waited at different __syncthreads() (source lines) together,
//   2: a thread waited at __syncthreads() after another thread of the block had left the kernel.
// The scheduler's state is static: one launch at a time (ctypes calls from one Python thread).
enum { MINICNN_READY, MINICNN_WAITING, MINICNN_LEFT };
static const size_t MINICNN_STACK = 1 << 16;
static ucontext_t minicnn_scheduler;
static std::vector<ucontext_t> minicnn_threads;
static std::vector<char> minicnn_stacks;
static std::vector<int> minicnn_state, minicnn_line;
static unsigned minicnn_running = 0;
static int minicnn_misuse = 0;
static void (*minicnn_thunk)(void*) = 0;
static void* minicnn_kernel = 0;

static void minicnn_barrier(int line) {
    minicnn_state[minicnn_running] = MINICNN_WAITING;
    minicnn_line[minicnn_running] = line;
    swapcontext(&minicnn_threads[minicnn_running], &minicnn_scheduler);
}
#define __syncthreads() minicnn_barrier(__LINE__)

static void minicnn_thread() {  // a fiber's whole life: the kernel, then back to the scheduler
    minicnn_thunk(minicnn_kernel);
    minicnn_state[minicnn_running] = MINICNN_LEFT;
}

static void minicnn_block(unsigned block, bool descending) {
    for (unsigned t = 0; t < block; ++t) {
        getcontext(&minicnn_threads[t]);
        minicnn_threads[t].uc_stack.ss_sp = &minicnn_stacks[t * MINICNN_STACK];
        minicnn_threads[t].uc_stack.ss_size = MINICNN_STACK;
        minicnn_threads[t].uc_link = &minicnn_scheduler;
        makecontext(&minicnn_threads[t], minicnn_thread, 0);
        minicnn_state[t] = MINICNN_READY;
    }
    for (;;) {
        for (unsigned k = 0; k < block; ++k) {  // every ready thread runs to its next barrier
            const unsigned t = descending ? block - 1 - k : k;
            if (minicnn_state[t] != MINICNN_READY) continue;
            minicnn_running = t;
            threadIdx.x = t;
            swapcontext(&minicnn_scheduler, &minicnn_threads[t]);
        }
        int waiting = 0, left = 0, line = -1;
        for (unsigned t = 0; t < block; ++t) {
            if (minicnn_state[t] == MINICNN_LEFT) { ++left; continue; }
            if (line >= 0 && minicnn_line[t] != line) minicnn_misuse |= 1;
            line = minicnn_line[t];
            ++waiting;
            minicnn_state[t] = MINICNN_READY;  // the barrier opens
        }
        if (waiting == 0) return;
        if (left) minicnn_misuse |= 2;
    }
}

// Run `kernel` over `grid` blocks of `block` threads, one block after another, as a GPU may.
template <class Kernel> static void minicnn_call(void* kernel) { (*(Kernel*)kernel)(); }
template <class Kernel> static void minicnn_run(unsigned grid, unsigned block, Kernel kernel) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    minicnn_threads.resize(block);
    minicnn_stacks.resize(block * MINICNN_STACK);
    minicnn_state.assign(block, MINICNN_READY);
    minicnn_line.assign(block, -1);
    minicnn_thunk = &minicnn_call<Kernel>;
    minicnn_kernel = &kernel;
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        minicnn_block(block, b % 2 == 1);
    }
}

extern "C" int minicnn_take_misuse() { const int misuse = minicnn_misuse; minicnn_misuse = 0; return misuse; }
"""
"""Prepended to a kernel source to run its launches as blocks of threads (``blocks=True``)."""

BLOCKS_THREADS_LIMIT = 1 << 16
"""Most threads (grid x block) one launch may run in ``blocks`` mode."""

LAUNCHER_SUFFIX = "_in_blocks"


def launcher(source, name):
    """C++ that runs kernel ``name`` of ``source`` over a grid (``BLOCKS_SHIM``'s ``minicnn_run``):
    ``extern "C" void <name>_in_blocks(unsigned grid, unsigned block, <the kernel's parameters>)``."""
    code = re.sub(r"//[^\n]*", "", source)  # the comments, which may hold parentheses
    match = re.search(r'extern "C" __global__ void ' + name + r"\(([^)]*)\)", code)
    if match is None:
        raise ValueError(f"cuda_on_cpu: no kernel {name!r} in its source")
    parameters = " ".join(match.group(1).split())
    names = [re.findall(r"\w+", parameter)[-1] for parameter in parameters.split(",")]
    return (f'extern "C" void {name}{LAUNCHER_SUFFIX}(unsigned grid, unsigned block, {parameters}) {{\n'
            f"    minicnn_run(grid, block, [&] {{ {name}({', '.join(names)}); }});\n}}\n")


def cxx_compiler():
    """The command that compiles C++ here (``g++``, or ``gcc -x c++``), or None."""
    if shutil.which("g++"):
        return ["g++"]
    if shutil.which("gcc"):
        return ["gcc", "-x", "c++"]
    return None


def cannot_build(blocks=False):
    """Why the kernels cannot be built for the CPU here (``None`` when they can): no C++ compiler,
    or for ``blocks``, no ``ucontext.h`` (Windows)."""
    if cxx_compiler() is None:
        return "no C++ compiler (g++ or gcc) to build the CUDA kernels for the CPU"
    if blocks and sys.platform == "win32":
        return "no ucontext.h on Windows to run the CUDA kernels as blocks of threads on the CPU"
    return None


def _cache_dir():
    path = Path(tempfile.gettempdir()) / f"minicnn-cuda-on-cpu-{os.getuid() if hasattr(os, 'getuid') else 0}"
    path.mkdir(exist_ok=True)
    return path


INDEXES = (numpy.int32, numpy.int64)


Build = collections.namedtuple("Build", "library dtype index blocks")
"""A kernel source's CPU build: the ctypes library, its float and index dtypes, and whether its
launches run as blocks of threads (``BLOCKS_SHIM``) or as one thread (``SHIM``)."""


def build_kernels(dtypes=(numpy.float32, numpy.float64), directory=None, blocks=False, indexes=INDEXES):
    """``{source text: Build}`` for every kernel file of ``cuda_kernels.FAMILIES``, for each float
    type in ``dtypes`` and index type in ``indexes`` (the text ``cuda_kernels.source`` gives CuPy).

    One thread (the default): a library per file, behind ``SHIM``. ``blocks=True``: one library
    per (float, index) type holding every file (each in its own namespace, with a ``launcher`` per
    kernel), behind ``BLOCKS_SHIM`` (POSIX: it needs ``ucontext.h``, which Windows lacks).
    Compiles in parallel what the cache lacks; raises ``RuntimeError`` with the compiler's message
    (which names the .cu file and line) if a file does not compile, and when there is no C++
    compiler."""
    compiler = cxx_compiler()
    if compiler is None:
        raise RuntimeError("cuda_on_cpu: no C++ compiler (g++ or gcc) to build the CUDA kernels on the CPU")
    directory = Path(directory) if directory is not None else _cache_dir()
    units = {}  # file stem -> [the text to compile, [(source, dtype, index) it builds]]
    for dtype, index in ((numpy.dtype(d), numpy.dtype(i)) for d in dtypes for i in indexes):
        for family, names in cuda_kernels.FAMILIES.items():
            source = cuda_kernels.source(family, dtype, index)
            if blocks:
                unit = units.setdefault(f"blocks_{dtype.name}_{index.name}", [BLOCKS_SHIM, []])
                launchers = "".join(launcher(source, name) for name in names)
                unit[0] += f"namespace {family}_unit {{\n{source}\n{launchers}}}\n"
            else:
                unit = units.setdefault(f"{family}_{dtype.name}_{index.name}", [SHIM + source, []])
            unit[1].append((source, dtype, index))
    built, jobs = {}, {}
    for stem, (text, covered) in units.items():
        digest = hashlib.sha256((" ".join(compiler + FLAGS) + text).encode()).hexdigest()[:20]
        library = directory / f"{stem}_{digest}.so"
        built[library] = covered
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
    libraries = {}
    for library, covered in built.items():
        loaded = ctypes.CDLL(str(library))
        for source, dtype, index in covered:
            libraries[source] = Build(loaded, dtype, index, blocks)
    return libraries


class CpuKernel:
    """A CPU-built kernel called as CuPy calls a kernel of a ``RawModule``: ``kernel(grid, block, args)``.

    Refuses what CuPy would get wrong: arrays that are not C-contiguous or of another dtype than
    the kernel's float type (int64 index arrays and pointer tables, float64 scratch of double
    sums aside), and untyped (Python) or mistyped scalars. Counts its launches and reports each
    to the stand-in's watchers.

    ``misuse``: the ``blocks`` build's ``minicnn_take_misuse``; ``function`` is then the kernel's
    ``launcher`` and runs the grid as blocks of threads; None for the one-thread build.
    """

    def __init__(self, function, name, dtype, index=numpy.int64, misuse=None):
        self.function, self.name, self.dtype, self.index = function, name, numpy.dtype(dtype), numpy.dtype(index)
        self.misuse = misuse
        self.launches, self.grids = 0, []

    def _argument(self, arg):
        if isinstance(arg, standin_device.StandinArray):
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
        standin_device.notify_standin("launch", f"kernel {self.name}")
        if self.misuse is None:
            self.function(*converted)
            return
        if not 1 <= block[0] <= 1024 or grid[0] * block[0] > BLOCKS_THREADS_LIMIT:
            raise ValueError(f"{self.name}: {grid[0]} blocks of {block[0]} threads; run as threads on the CPU, a "
                             f"launch may start at most {BLOCKS_THREADS_LIMIT} (smaller inputs, or a lower "
                             f"cuda_kernels.MAX_BLOCKS)")
        self.function(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), *converted)
        misuse = self.misuse()
        if misuse:
            what = [text for bit, text in ((1, "threads of a block waited at different __syncthreads()"),
                                           (2, "a thread waited at __syncthreads() after another had left the kernel"))
                    if misuse & bit]
            raise RuntimeError(f"{self.name} ({grid[0]} blocks of {block[0]} threads): {'; and '.join(what)}")


class CpuRawModule:
    """Stands in for a ``cupy.RawModule``: ``get_function(name)`` -> a :class:`CpuKernel` of ``build``."""

    def __init__(self, build):
        self.build = build

    def get_function(self, name):
        build = self.build
        function = getattr(build.library, name + (LAUNCHER_SUFFIX if build.blocks else ""))
        function.restype = None
        misuse = build.library.minicnn_take_misuse if build.blocks else None
        return CpuKernel(function, name, build.dtype, build.index, misuse)


class CpuRawModules:
    """Stands in for ``cupy.RawModule``: ``RawModule(code=source)`` -> the CPU build of exactly
    that source text (the text CuPy would compile)."""

    def __init__(self, libraries):
        self.libraries = libraries

    def __call__(self, code):
        return CpuRawModule(self.libraries[code])


class FakeCupy:
    """Just enough of the ``cupy`` module for the kernel wrappers of ``cuda_kernels``
    (``gk.col2im_cuda(FakeCupy(libraries), cols, ...)``), over NumPy arrays and the CPU-built
    kernels of ``libraries`` (from :func:`build_kernels`)."""
    ascontiguousarray = staticmethod(numpy.ascontiguousarray)
    empty = staticmethod(numpy.empty)
    empty_like = staticmethod(numpy.empty_like)
    zeros = staticmethod(numpy.zeros)

    def __init__(self, libraries):
        self.RawModule = CpuRawModules(libraries)  # noqa: N815 (CuPy's name)
        self.libraries = libraries


@contextlib.contextmanager
def cuda_paths_on_standin(libraries=None):
    """Within the block, stand-in arrays take the CUDA fast paths, with CPU-built kernels.

    The kernel cache that real CuPy kernels use is set aside meanwhile (and restored after)."""
    libraries = build_kernels() if libraries is None else libraries
    saved = cuda_kernels._kernels
    cuda_kernels._kernels = {}
    standin_device.standin.RawModule = CpuRawModules(libraries)
    try:
        with registry.paths_of("cuda", on="standin"):
            yield
    finally:
        cuda_kernels._kernels = saved
        del standin_device.standin.RawModule
