"""dtype names as PyTorch spells them (``mc.float32``, ``mc.long`` ...): NumPy dtypes, so
``x.dtype == mc.float32`` is true and ``x.to(mc.float64)`` casts. ``mc.float`` is float32 and
``mc.int`` int32, as ``torch.float`` and ``torch.int`` (not Python's ``float``/``int``)."""
import numpy

float16 = half = numpy.dtype("float16")
float32 = float = numpy.dtype("float32")
float64 = double = numpy.dtype("float64")
int8 = numpy.dtype("int8")
uint8 = numpy.dtype("uint8")
int16 = short = numpy.dtype("int16")
int32 = int = numpy.dtype("int32")
int64 = long = numpy.dtype("int64")
bool = numpy.dtype("bool")

NAMES = ["float16", "half", "float32", "float", "float64", "double", "int8", "uint8", "int16",
         "short", "int32", "int", "int64", "long", "bool"]
