"""Each minicnn ``Function`` as ONNX nodes: the table :data:`CONVERTERS`.

A converter gets a :class:`~minicnn.onnx.exporter.Call` ``c``: the traced ``c.fn`` (its attributes:
stride, padding, eps, ...), the ONNX names of its inputs ``c.inputs`` (``None`` for an absent
bias), their static shapes ``c.in_shapes``, the output's ``c.out_shape``, and which dimensions
follow the batch size (``c.in_batch``, ``c.out_batch``). It writes nodes with ``c.emit(op,
inputs, **attributes)``, whose last one produces ``c.output``; ``c.const(array)`` adds a constant.

Where ONNX's operator differs from minicnn's, the converter says how it makes them agree:

* LRN: both divide alpha by the window ``size``, so the constants carry over as they are; the
  windows agree for odd sizes only (ONNX puts the extra channel of an even window after ``c``,
  minicnn and PyTorch before it), so an even size is refused.
* Pooling with ``ceil_mode``: the last, partial window is written as explicit padding at the end
  (which a max pool never takes); an average pool then divides by the whole window
  (``count_include_pad=1``) and a constant map rescales the windows minicnn divides by less.
* Adaptive average pooling: global (``GlobalAveragePool``), whole windows (``AveragePool``), or
  any bins as a matrix product with a constant pooling matrix.
"""
import numpy

from ..functional.activation import ReLU, Sigmoid, Tanh
from ..functional.batchnorm import BatchNorm
from ..functional.conv import Conv2d
from ..functional.dropout import Dropout
from ..functional.linear import Linear
from ..functional.loss import LogSoftmax, Softmax
from ..functional.lrn import LocalResponseNorm
from ..functional.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from ..ops import (Add, Cast, Clone, Concat, Div, Exp, GetItem, Log, MatMul, Max, Mean, Mul, Neg,
                   Pow, PowScalar, Reshape, Stack, Sub, Sum, ToDevice, Transpose)

INT64_MIN = numpy.iinfo(numpy.int64).min


def _ints(values):
    return numpy.array(list(values), dtype=numpy.int64)


def conv(c):
    (ph, pw), (kh, kw) = c.fn.padding, c.in_shapes[1][2:]
    c.emit("Conv", [n for n in c.inputs if n is not None], kernel_shape=[kh, kw],
           strides=list(c.fn.stride), pads=[ph, pw, ph, pw], group=c.fn.groups)


def batch_norm(c):
    f, channels = c.fn, c.in_shapes[0][1]
    if f.batch_stats:
        raise c.unsupported("batch norm with batch statistics (training=True or no running "
                            "estimates); ONNX gets the evaluation-mode layer")
    x, weight, bias = c.inputs
    weight = weight or c.const(numpy.ones(channels, c.dtype))
    bias = bias or c.const(numpy.zeros(channels, c.dtype))
    c.emit("BatchNormalization", [x, weight, bias, c.buffer(f.running_mean), c.buffer(f.running_var)],
           epsilon=f.eps)


def lrn(c):
    f = c.fn
    if f.size % 2 == 0:
        raise c.unsupported(f"LocalResponseNorm of even size {f.size}: ONNX's LRN puts the extra "
                            f"channel of an even window after c, minicnn (as PyTorch) before it")
    c.emit("LRN", [c.inputs[0]], size=f.size, alpha=f.alpha, beta=f.beta, bias=f.k)


def _pool_window(c):
    """Kernel, strides and pads of a pooling, a ceil-mode window written as padding at the end."""
    (kh, kw), (sh, sw), (ph, pw) = c.fn.kernel, c.fn.stride, c.fn.padding
    (h, w), (ho, wo) = c.in_shapes[0][2:], c.out_shape[2:]
    extra_h, extra_w = max(0, (ho - 1) * sh + kh - (h + 2 * ph)), max(0, (wo - 1) * sw + kw - (w + 2 * pw))
    return dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph + extra_h, pw + extra_w])


def max_pool(c):
    c.emit("MaxPool", [c.inputs[0]], **_pool_window(c))


def avg_pool(c):
    """minicnn divides each window by its part inside the padded input (``functional/pooling.py``):
    the whole window except where a ceil-mode window hangs past the padding."""
    (kh, kw), (sh, sw), (ph, pw) = c.fn.kernel, c.fn.stride, c.fn.padding
    (h, w), (ho, wo) = c.in_shapes[0][2:], c.out_shape[2:]
    r0, q0 = numpy.arange(ho) * sh - ph, numpy.arange(wo) * sw - pw
    divisor = numpy.outer(numpy.minimum(r0 + kh, h + ph) - r0, numpy.minimum(q0 + kw, w + pw) - q0)
    if (divisor == kh * kw).all():
        c.emit("AveragePool", [c.inputs[0]], count_include_pad=1, **_pool_window(c))
        return
    whole = c.emit("AveragePool", [c.inputs[0]], out=c.temp(), count_include_pad=1, **_pool_window(c))
    c.emit("Mul", [whole, c.const((kh * kw / divisor).astype(c.dtype))])


def _bins(size, out):
    """PyTorch's adaptive bins along one axis (as ``functional/pooling.py``)."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool(c):
    x, (h, w), (oh, ow) = c.inputs[0], c.in_shapes[0][2:], c.out_shape[2:]
    if (oh, ow) == (1, 1):
        c.emit("GlobalAveragePool", [x])
    elif h % oh == 0 and w % ow == 0:   # the bins are whole, equal, non-overlapping windows
        k = [h // oh, w // ow]
        c.emit("AveragePool", [x], kernel_shape=k, strides=k, pads=[0, 0, 0, 0], count_include_pad=1)
    else:                               # y (N, C, oh*ow) = x (N, C, h*w) @ P, P[pixel, bin] = 1/|bin|
        pool = numpy.zeros((h, w, oh, ow), dtype=c.dtype)
        for i, (r0, r1) in enumerate(_bins(h, oh)):
            for j, (q0, q1) in enumerate(_bins(w, ow)):
                pool[r0:r1, q0:q1, i, j] = 1.0 / ((r1 - r0) * (q1 - q0))
        flat = c.emit("Reshape", [x, c.const(_ints([0, 0, h * w]))], out=c.temp())
        pooled = c.emit("MatMul", [flat, c.const(pool.reshape(h * w, oh * ow))], out=c.temp())
        c.emit("Reshape", [pooled, c.const(_ints([0, 0, oh, ow]))])


def linear(c):
    x, weight, bias = c.inputs
    if len(c.in_shapes[0]) == 2:
        c.emit("Gemm", [x, weight] + ([bias] if bias else []), transB=1)
        return
    w_t = c.emit("Transpose", [weight], out=c.temp(), perm=[1, 0])
    if bias is None:
        c.emit("MatMul", [x, w_t])
    else:
        c.emit("Add", [c.emit("MatMul", [x, w_t], out=c.temp()), bias])


def along_axis(op_type):
    """Softmax and LogSoftmax: ONNX's (opset 13 on) normalise along one ``axis``, as minicnn's."""
    def convert(c):
        c.emit(op_type, [c.inputs[0]], axis=c.fn.axis)
    return convert


def dropout(c):
    raise c.unsupported("dropout in training mode (F.dropout(..., training=True)); in eval mode "
                        "dropout is the identity and leaves nothing to export")


def same(op_type):
    """An op that ONNX has under ``op_type`` with the same inputs and NumPy's broadcasting."""
    def convert(c):
        c.emit(op_type, c.inputs)
    return convert


def pow_scalar(c):
    c.emit("Pow", [c.inputs[0], c.const(numpy.array(c.fn.p, dtype=c.dtype))])


def cast(c):
    c.emit("Cast", c.inputs, to=c.onnx_dtype(c.fn.dtype))


def reduce(op_type):
    """Sum, mean, max over ``fn.axes``: axes an input from opset 18 (ReduceSum: from 13)."""
    def convert(c):
        axes = _ints(c.fn.axes)
        keep = int(c.fn.keepdims)
        if op_type == "ReduceSum" or c.opset >= 18:
            c.emit(op_type, [c.inputs[0], c.const(axes)], keepdims=keep)
        else:
            c.emit(op_type, [c.inputs[0]], axes=[int(a) for a in axes], keepdims=keep)
    return convert


def reshape(c):
    shape, follow = list(c.out_shape), c.out_batch
    if len(follow) > 1:
        raise c.unsupported(f"a reshape to {tuple(shape)} in which dimensions {follow} all follow "
                            f"the batch size (one can be -1, not more)")
    for d in follow:
        shape[d] = -1
    c.emit("Reshape", [c.inputs[0], c.const(_ints(shape))])


def transpose(c):
    c.emit("Transpose", c.inputs, perm=[int(a) for a in c.fn.axes])


def concat(c):
    c.emit("Concat", c.inputs, axis=c.fn.axis % len(c.out_shape))


def stack(c):
    axis = c.fn.axis % len(c.out_shape)
    parts = [c.emit("Unsqueeze", [x, c.const(_ints([axis]))], out=c.temp()) for x in c.inputs]
    c.emit("Concat", parts, axis=axis)


def get_item(c):
    """Basic indexing (slices, integers, ``...``) as one Slice, then a Squeeze of the integer axes."""
    index, shape = c.fn.index, c.in_shapes[0]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items):
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if not all(isinstance(i, (slice, int, numpy.integer)) for i in items):
        raise c.unsupported(f"indexing with {index!r}; slices, integers and ... are exported")
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for d, item in enumerate(items):
        if isinstance(item, slice):
            start, stop, step = item.indices(shape[d])
            if (start, stop, step) == (0, shape[d], 1):
                continue
            stop = INT64_MIN if stop < 0 else stop          # a negative step running past 0
        else:
            start, stop, step = int(item) % shape[d], int(item) % shape[d] + 1, 1
            squeeze.append(d)
        if d in c.in_batch[0]:
            raise c.unsupported(f"indexing {index!r} along dimension {d}, which follows the batch size")
        starts.append(start), ends.append(stop), axes.append(d), steps.append(step)
    if not axes:
        c.emit("Identity", c.inputs)
        return
    sliced = c.emit("Slice", [c.inputs[0]] + [c.const(_ints(v)) for v in (starts, ends, axes, steps)],
                    out=c.temp() if squeeze else None)
    if squeeze:
        c.emit("Squeeze", [sliced, c.const(_ints(squeeze))])


CONVERTERS = {
    Conv2d: conv, BatchNorm: batch_norm, LocalResponseNorm: lrn, MaxPool2d: max_pool,
    AvgPool2d: avg_pool, AdaptiveAvgPool2d: adaptive_avg_pool, Linear: linear, Dropout: dropout,
    ReLU: same("Relu"), Tanh: same("Tanh"), Sigmoid: same("Sigmoid"),
    Softmax: along_axis("Softmax"), LogSoftmax: along_axis("LogSoftmax"),
    Add: same("Add"), Sub: same("Sub"), Mul: same("Mul"), Div: same("Div"), MatMul: same("MatMul"),
    Pow: same("Pow"), Neg: same("Neg"), Exp: same("Exp"), Log: same("Log"),
    Clone: same("Identity"), ToDevice: same("Identity"), PowScalar: pow_scalar, Cast: cast,
    Sum: reduce("ReduceSum"), Mean: reduce("ReduceMean"), Max: reduce("ReduceMax"),
    Reshape: reshape, Transpose: transpose, Concat: concat, Stack: stack, GetItem: get_item,
}
"""minicnn ``Function`` class -> converter. The faster subclasses in ``minicnn/fast`` use their
reference class's converter; any other class (a Function of your own) needs an entry here."""
