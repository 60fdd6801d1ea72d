"""TF32: the precision of CuPy's float32 matrix products (``mc.backends``' switches).

TF32 tensor cores (NVIDIA Ampere and later) round the inputs of a float32 product to 10 mantissa
bits (about 1e-3 relative error) and accumulate in float32: several times the float32 rate. Two
flags, off by default, as ``mc.backends.cuda.matmul.allow_tf32`` and ``mc.backends.cudnn.allow_tf32``
say: ``"matmul"`` holds for every CuPy matrix product; ``"conv"`` holds inside the convolution's
GEMMs (``with tf32_for("conv", x):`` in ``gpu.py``). Without CuPy, or without a GPU for it, the
flags are only kept.
"""
import contextlib

import numpy

from .. import backend

_flags = {"matmul": False, "conv": False}  # what minicnn.backends' switches say


def allowed(kind):
    """Whether float32 GEMMs of ``kind`` (``"matmul"``, or ``"conv"``: convolution's GEMMs) may
    use TF32 tensor cores."""
    return _flags[kind]


def allow(kind, enabled):
    """Set the TF32 flag of ``kind``. CuPy's switch is global: it follows the ``"matmul"`` flag,
    and :func:`tf32_for` sets it for the GEMMs of another kind where that kind's flag differs."""
    _flags[kind] = bool(enabled)
    if kind == "matmul" and backend.cuda_available():  # CuPy's switch asks the GPU for its compute capability
        _set_compute_type(_flags["matmul"])


def _set_compute_type(tf32):
    cupy = backend.module_for_device("cuda")
    linalg = getattr(getattr(cupy, "_core", None), "_routines_linalg", None)
    if not hasattr(linalg, "set_compute_type") or not hasattr(linalg, "COMPUTE_TYPE_TF32"):
        raise RuntimeError(f"TF32: this CuPy ({getattr(cupy, '__version__', '?')}) has no switch for the "
                           f"precision of float32 products (cupy._core._routines_linalg.set_compute_type)")
    linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)


@contextlib.contextmanager
def _compute_type(tf32):
    _set_compute_type(tf32)
    try:
        yield
    finally:
        _set_compute_type(_flags["matmul"])


def tf32_for(kind, x):
    """A context for GEMMs of ``kind`` on ``x``'s device: TF32 as its flag says, where ``x`` is a
    CuPy array and the flag differs from the ``"matmul"`` flag (which is in force everywhere
    else); otherwise a no-op."""
    if _flags[kind] == _flags["matmul"] or backend.device_of(x) != "cuda":
        return contextlib.nullcontext()
    return _compute_type(_flags[kind])
