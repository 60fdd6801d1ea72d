"""Threads: how many cores minicnn's ops use, and how many NumPy's BLAS uses.

Two kinds of parallel work happen in a CNN step on the CPU:

* **matrix products** (the GEMM of every convolution and linear layer) run inside NumPy's BLAS
  library (OpenBLAS), which has its own thread pool;
* **copies and element-wise work** (im2col, padding, pooling, ReLU) run in NumPy, always on one
  thread.

A small convolution gains little from a multithreaded BLAS: each of its many small products pays
the cost of waking BLAS's helper threads, and the copies in between still use one core. Worse,
OpenBLAS's helpers keep spinning on their cores for a while after each product, so the next
op's work competes with them for the CPU: on the two-core reference machine one training step of
the default model took 64 ms with a two-thread BLAS and 36 ms with a one-thread BLAS.

So the ops parallelise one level up instead, and **never call a multithreaded BLAS**:

* :func:`parallel_map` gives pieces of the work (chunks of a convolution's batch, groups of batch
  norm's channels, pieces of a pooling's batch) to a pool of Python threads, and each piece copies
  *and* multiplies with a one-thread BLAS. NumPy releases the GIL inside copies, ufuncs and
  products, so the threads really run at once. On the reference machine this made the ResNet-CIFAR
  convolutions about twice as fast as one thread, and three to five times as fast as one thread
  feeding a two-thread BLAS.
* :func:`matmul` splits one large product (a linear layer's) into blocks of rows or columns, one
  per thread.

The count is :func:`get_num_threads` (default: the cores this process may run on, or
``$MINICNN_NUM_THREADS``), set with :func:`set_num_threads`, like ``torch.set_num_threads``.
Convolution results do not depend on it: its pieces are fixed by the data's shape, not by the
thread count, and partial sums are added in a fixed order. Batch norm gives each thread a group of
channels, and NumPy may sum a channel's values in another order when the group is smaller, and a
large product split into blocks may round differently, so results can differ in the last bit
between thread counts (never between runs with the same count).

BLAS's own count is changed at run time (environment variables such as ``OPENBLAS_NUM_THREADS``
work only before NumPy is imported) through ``threadpoolctl`` when installed, else through
``ctypes`` on the OpenBLAS that NumPy loaded (Linux). Outside the ops the count is left as it
was, for the user's own NumPy code. Where neither works, :func:`parallel_map` runs its pieces one
after another, and BLAS keeps its own threads.
"""
import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy  # noqa: F401  (loaded first, so that its BLAS library is in /proc/self/maps)

from ..backend import get_array_module

_SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads", "openblas_set_num_threads64_")
_GETTERS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads", "openblas_get_num_threads64_")


# ------------------------------------------------------------------------------------------------
# NumPy's BLAS
# ------------------------------------------------------------------------------------------------
def _openblas_libraries():
    """The OpenBLAS shared libraries mapped into this process (Linux ``/proc/self/maps``)."""
    paths = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _find_blas_controls():
    """``[(get, set), ...]``: a getter and a setter of the thread count for each BLAS library
    NumPy uses, found once (threadpoolctl first, then ctypes on OpenBLAS)."""
    try:
        from threadpoolctl import ThreadpoolController
        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        if libs:
            return [(lib.get_num_threads, lib.set_num_threads) for lib in libs]
    except Exception:  # not installed, or an unknown library layout: try ctypes
        pass
    controls = []
    for lib in _openblas_libraries():
        get = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        put = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if get is not None and put is not None:
            controls.append((get, lambda n, put=put: put(ctypes.c_int(int(n)))))
    return controls


_blas_controls = None


def _blas():
    global _blas_controls
    if _blas_controls is None:
        _blas_controls = _find_blas_controls()
    return _blas_controls


def get_blas_threads():
    """The BLAS thread count NumPy uses now, or ``None`` when it cannot be found out."""
    controls = _blas()
    return int(controls[0][0]()) if controls else None


def set_blas_threads(n):
    """Let NumPy's BLAS use ``n`` threads. Returns True if a library was told, else False."""
    for _, put in _blas():
        put(int(n))
    return bool(_blas())


@contextlib.contextmanager
def blas_threads(n):
    """``with blas_threads(1): ...``: run the block with ``n`` BLAS threads, then restore the
    previous count. ``n`` of ``None`` or 0 leaves the setting alone."""
    if not n:
        yield
        return
    previous = get_blas_threads()
    set_blas_threads(n)
    try:
        yield
    finally:
        if previous:
            set_blas_threads(previous)


# ------------------------------------------------------------------------------------------------
# minicnn's own threads
# ------------------------------------------------------------------------------------------------
def _default_threads():
    env = os.environ.get("MINICNN_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"MINICNN_NUM_THREADS must be a positive integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_num_threads = _default_threads()
_pool = None
_pool_size = 0
_lock = threading.Lock()
_worker = threading.local()       # .busy: this thread is running a piece of a parallel_map
_blas_saved = {"depth": 0, "count": None}


def get_num_threads():
    """How many threads minicnn's ops use for one call (see the module docstring)."""
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads (at least 1) in minicnn's ops from now on."""
    global _num_threads
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    _num_threads = n


@contextlib.contextmanager
def num_threads(n):
    """``with num_threads(1): ...``: run the block with ``n`` threads in minicnn's ops, then restore
    the previous count. ``n`` of ``None`` leaves the count alone."""
    before = _num_threads
    if n is not None:
        set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(before)


def _forget_pool_after_fork():
    """A forked child inherits the pool object but not its threads: start a new one there."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()
    _blas_saved["depth"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _executor(n):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(n, thread_name_prefix="minicnn"), n
        return _pool


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS at one thread while any parallel_map runs (nesting and concurrent callers counted)."""
    with _lock:
        if _blas_saved["depth"] == 0:
            _blas_saved["count"] = get_blas_threads()
            if _blas_saved["count"] not in (None, 1):
                set_blas_threads(1)
        _blas_saved["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _blas_saved["depth"] -= 1
            if _blas_saved["depth"] == 0 and _blas_saved["count"] not in (None, 1):
                set_blas_threads(_blas_saved["count"])


def even_slices(n, parts):
    """``parts`` consecutive slices covering ``range(n)`` (fewer if ``n < parts``), their sizes
    differing by at most one: ``even_slices(10, 3)`` -> [0:3], [3:6], [6:10]."""
    parts = max(1, min(int(parts), n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


PARALLEL_MIN_SIZE = 1 << 16
"""Element-wise and pooling ops split arrays of at least this many numbers (64 K) over the threads;
smaller ones are not worth a hand-off to the pool."""


def batch_pieces(x, xp):
    """Index objects that split ``x`` along its first axis: one piece per thread for a large NumPy
    array, else the single index ``...`` (the whole array)."""
    _require_numpy(xp, "batch_pieces")
    if x.size < PARALLEL_MIN_SIZE or x.ndim == 0 or _num_threads <= 1:
        return [Ellipsis]
    return even_slices(x.shape[0], _num_threads)


def _run_piece(fn, item):
    _worker.busy = True
    try:
        return fn(item)
    finally:
        _worker.busy = False


def _is_numpy(xp):
    return xp is not None and getattr(xp, "__name__", "") == "numpy"


def _require_numpy(xp, what):
    """The CPU thread pool is for NumPy arrays only: anything else is a dispatch bug."""
    if not _is_numpy(xp):
        raise TypeError(f"threads.{what}: got {getattr(xp, '__name__', xp)} arrays; the CPU thread "
                        f"pool takes NumPy arrays only (device arrays use minicnn.fast's device paths)")


def parallel_map(fn, items, xp=None):
    """``[fn(item) for item in items]``, the calls spread over :func:`get_num_threads` threads.

    For NumPy arrays only: pass their array module as ``xp``; CuPy or stand-in arrays raise
    ``TypeError`` (device arrays never reach the CPU threads; the registry gives them other
    implementations). BLAS runs with one thread
    for the whole call, even when the items run one after another (a single item, one thread, or a
    call from inside a piece: pools do not nest): see the module docstring. Results come back in
    the order of ``items``. ``fn`` must only write to places no other piece writes to.
    """
    items = list(items)
    _require_numpy(xp, "parallel_map")
    n = min(_num_threads, len(items))
    with _one_blas_thread():
        if n <= 1 or getattr(_worker, "busy", False) or not _blas():
            return [fn(item) for item in items]
        return list(_executor(n).map(lambda item: _run_piece(fn, item), items))


MATMUL_MIN_FLOPS = 1 << 22
""":func:`matmul` splits products of at least this many multiply-adds (4 M) over the threads."""


def matmul(a, b):
    """``a @ b`` (2-D, or stacks of matrices with the same leading shape) on the CPU with minicnn's
    threads, each running a one-thread BLAS on a block of the product.

    The product is cut into blocks of rows of ``a`` (writing rows of the result) or of columns of
    ``b`` (columns of the result), whichever makes the threads re-read less memory: a linear
    layer's forward at batch 32 splits the columns of its 151 MB weight matrix, its dW the rows.
    Too small, or called from inside a piece: one plain product, with a one-thread BLAS.
    NumPy arrays only.
    """
    xp = get_array_module(a, b)
    _require_numpy(xp, "matmul")
    m, k = a.shape[-2:]
    n = b.shape[-1]
    parts = min(_num_threads, max(m, n))
    if parts <= 1 or m * k * n < MATMUL_MIN_FLOPS or getattr(_worker, "busy", False) or not _blas():
        with _one_blas_thread():
            return xp.matmul(a, b)
    lead = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = xp.empty(lead + (m, n), dtype=xp.result_type(a.dtype, b.dtype))
    # Each thread reads all of one operand: blocks of rows re-read b, blocks of columns re-read a
    # and copy their block of the result into place. Re-read the smaller.
    if m >= parts and k * n <= m * k + m * n:
        # blocks of rows; for a 2-D product each block of the result is contiguous and the
        # product writes straight into it (a large dW of a linear layer is not copied again)
        def piece(rows):
            if lead:
                out[..., rows, :] = xp.matmul(a[..., rows, :], b)
            else:
                xp.matmul(a[rows], b, out=out[rows])
        parallel_map(piece, even_slices(m, parts), xp)
    else:
        def piece(cols):
            out[..., cols] = xp.matmul(a, b[..., cols])
        parallel_map(piece, even_slices(n, parts), xp)
    return out
