"""Host memory: let freed NumPy buffers be reused instead of handed back to the operating system.

A training step allocates and frees the same large arrays every step (activations, gradients,
temporaries of a few MB to a few hundred MB). By default glibc's ``malloc`` serves each large
request with a fresh ``mmap`` and returns it to the system on ``free``; the next step's array then
starts as untouched pages, and the first write to each 4 KiB page costs a page fault plus zeroing
by the kernel. For the default Fashion-MNIST model on the two-core reference machine that was a
third of the step: a max-pool backward's scatter took 9 ms instead of 0.3 ms, only because its
output buffer was new.

:func:`keep_freed_memory` tells glibc to serve large
requests from its heap and to keep freed memory there for reuse (``mallopt`` with
``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``). The process's resident memory then stays near its
peak between steps instead of shrinking and growing back. Elsewhere than Linux/glibc it does nothing.

It changes the whole process, so ``import minicnn`` never calls it: ``minicnn train``, ``minicnn
evaluate`` and the benchmarks opt in at their start, and your own script may call
``minicnn.fast.host_memory.keep_freed_memory()``. ``MINICNN_KEEP_FREED_MEMORY=0`` makes it do nothing.
"""
import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30
"""Requests below this (1 GiB) come from the heap, and are reused after ``free``."""

applied = False
"""Whether :func:`keep_freed_memory` changed the allocator in this process."""


def keep_freed_memory():
    """Tune glibc's malloc as the module docstring says; returns True if it was changed."""
    global applied
    opted_out = os.environ.get("MINICNN_KEEP_FREED_MEMORY", "1").strip() == "0"
    if opted_out or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    threshold = MMAP_THRESHOLD_BYTES
    while threshold >= 32 << 20 and not mallopt(_M_MMAP_THRESHOLD, threshold):
        threshold //= 2  # some glibc versions cap the threshold
    applied = bool(mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)) and threshold >= 32 << 20
    return applied
