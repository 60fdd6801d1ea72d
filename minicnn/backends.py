"""``mc.backends``: PyTorch's switches for the precision of float32 products on a GPU.

    mc.backends.cuda.matmul.allow_tf32 = True   # matrix products (linear, matmul)
    mc.backends.cudnn.allow_tf32 = True         # convolutions (their GEMMs: minicnn has no cuDNN)

TF32 tensor cores (NVIDIA Ampere and later) round a float32 product's inputs to 10 mantissa bits
and accumulate in float32: several times faster, with relative errors near 1e-3. Both flags are
off by default in minicnn, so that a float32 result on a GPU matches the CPU's to float32
rounding. PyTorch's defaults differ: ``cudnn.allow_tf32`` is True there (its convolutions use
TF32 unless told not to), ``cuda.matmul.allow_tf32`` False. To compare minicnn's GPU speed with
PyTorch's default, set ``mc.backends.cudnn.allow_tf32 = True`` (the benchmarks' ``--tf32``).
Without CuPy the flags are kept and change nothing. They live in ``minicnn/fast/tf32.py``.
"""
from .fast import tf32


class _Switch:
    """One flag, ``allow_tf32``, read and written as an attribute (PyTorch's spelling)."""

    def __init__(self, kind, name):
        self._kind, self._name = kind, name

    @property
    def allow_tf32(self):
        return tf32.allowed(self._kind)

    @allow_tf32.setter
    def allow_tf32(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"{self._name}.allow_tf32 must be True or False, got {value!r}")
        tf32.allow(self._kind, value)

    def __repr__(self):
        return f"{self._name}(allow_tf32={self.allow_tf32})"


class _Cuda:
    matmul = _Switch("matmul", "mc.backends.cuda.matmul")


cuda = _Cuda()
cudnn = _Switch("conv", "mc.backends.cudnn")

__all__ = ["cuda", "cudnn"]
