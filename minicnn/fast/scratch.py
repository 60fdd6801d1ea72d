"""Scratch buffers: large temporary arrays reused from call to call instead of allocated anew.

A fresh large NumPy array is slow to fill the first time: the operating system maps its pages in
one fault at a time, which costs about as much as the copy itself. So the CPU fast paths keep one
buffer per purpose ("columns", "padded", "pool_rows" ...), thread, device and dtype, and reuse it.
"""
import math
import threading

from .. import backend

_scratch = {}  # (thread id, name, array module, device, dtype) -> 1-D buffer


def _scratch_buffer(like, name, shape, dtype):
    """A scratch array of ``shape``, reused from call to call (its old contents are garbage).

    Fresh large NumPy arrays are slow to fill the first time: the operating system maps their
    pages in one fault at a time, which costs about as much as the copy itself. So the CPU fast
    paths keep one buffer per ``name`` ("columns", "padded", "pool_rows" ...), thread and dtype,
    and every layer reuses it. It only grows, to the largest chunk seen (about
    ``conv_cpu.CPU_CHUNK_BYTES`` for the columns, or one band of a sample); ``release_buffers()``
    frees them. Nothing is kept in it from one call to the next.
    """
    xp = backend.get_array_module(like)
    key = (threading.get_ident(), name, xp.__name__, str(getattr(like, "device", "")), str(dtype))
    size = math.prod(shape)
    buffers = _scratch
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buffers.pop(key, None)  # let the old one go before the bigger one is allocated
        buf = buffers[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def release_buffers():
    """Free the scratch buffers of every thread (they are re-created when next needed).
    Call it between steps, not while a convolution runs."""
    _scratch.clear()


