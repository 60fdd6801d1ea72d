"""How many threads NumPy's BLAS (the matrix-product library) may use, changed at run time.

``minicnn train`` runs with **one** BLAS thread unless told otherwise (``--threads``). The
matrix products of a small CNN are small, NumPy's element-wise work is single-threaded anyway,
and on a busy machine (more runnable processes than cores) a multithreaded OpenBLAS waits for
descheduled helper threads at every product: on the two-core reference machine one epoch of the
default model took 172 s with two BLAS threads and 23 s with one. One thread also makes a run's
numbers independent of the machine's core count (a product summed by two threads rounds
differently), so a resumed run matches an uninterrupted one on any machine.

Environment variables (``OPENBLAS_NUM_THREADS=1``) only work before NumPy is imported; this module
calls the library's own ``set_num_threads`` through ``threadpoolctl`` when installed, else through
``ctypes`` on the OpenBLAS that NumPy loaded (Linux). Elsewhere it does nothing, silently.
"""
import contextlib
import ctypes
import os

_SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads", "openblas_set_num_threads64_")
_GETTERS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads", "openblas_get_num_threads64_")


def _openblas_libraries():
    """The OpenBLAS shared libraries mapped into this process (Linux ``/proc/self/maps``)."""
    import numpy  # noqa: F401  (make sure NumPy, and so its BLAS, is loaded)
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


def _call(lib, names, *args):
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn(*args)
    return None


def get_blas_threads():
    """The BLAS thread count NumPy uses now, or ``None`` when it cannot be found out."""
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        return counts[0] if counts else None
    except Exception:
        pass
    for lib in _openblas_libraries():
        n = _call(lib, _GETTERS)
        if n is not None:
            return int(n)
    return None


def set_blas_threads(n):
    """Let NumPy's BLAS use ``n`` threads. Returns True if a library was told, else False."""
    n = int(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        return True
    except Exception:
        pass
    done = False
    for lib in _openblas_libraries():
        for name in _SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    return done


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
