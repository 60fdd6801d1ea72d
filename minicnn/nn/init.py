"""Weight initializers of the classic papers, in place on a tensor (PyTorch's names and maths).

Notation: for a weight of shape (out, in) or (C_out, C_in, kH, kW),
``fan_in = in * kH * kW`` and ``fan_out = out * kH * kW``.

=====================  ==============================================  ==========================
initializer            distribution                                    from
=====================  ==============================================  ==========================
``normal_``            N(mean, std^2)                                  AlexNet: N(0, 0.01^2)
``xavier_uniform_``    U(-a, a), a = gain * sqrt(6 / (fan_in+fan_out))  Glorot & Bengio 2010
``xavier_normal_``     N(0, s^2), s = gain * sqrt(2 / (fan_in+fan_out))
``kaiming_uniform_``   U(-b, b), b = gain * sqrt(3 / fan)               He et al. 2015
``kaiming_normal_``    N(0, s^2), s = gain / sqrt(fan)                  (ResNet, VGG in torchvision)
=====================  ==============================================  ==========================

``gain`` is ``calculate_gain(nonlinearity, a)``: sqrt(2) for ReLU, keeping the variance of
activations constant from layer to layer. PyTorch's *default* for Conv2d and Linear is
``kaiming_uniform_(w, a=sqrt(5))``, which works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
All draws come from ``minicnn.rng`` (seeded by ``mc.manual_seed``).
"""
import math

import numpy

from .. import backend, rng


def calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight of shape (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out need a tensor with at least 2 dimensions, got shape {shape}")
    receptive = int(numpy.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended scale for an activation function (PyTorch's table)."""
    if nonlinearity in ("linear", "conv2d", "sigmoid", "conv1d", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(tensor, host_values):
    """Write host draws into the tensor's data, on its device and in its dtype."""
    data = tensor.data
    tensor.data[...] = backend.to_device(host_values.astype(data.dtype, copy=False), backend.device_of(data))
    return tensor


def _draw_dtype(tensor):
    """Draw float32 numbers for float32 tensors (twice as fast as drawing float64 and casting)."""
    return numpy.float32 if tensor.dtype == numpy.float32 else numpy.float64


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    u = rng.generator().random(tensor.shape, dtype=_draw_dtype(tensor))
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    z = rng.generator().standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    return _fill(tensor, z * std + mean)


def constant_(tensor, value):
    """Fill with a constant."""
    return _fill(tensor, numpy.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std^2) redrawn until inside [a, b] (torchvision's GoogLeNet uses it)."""
    gen = rng.generator()
    values = gen.normal(mean, std, size=tensor.shape)
    bad = (values < a) | (values > b)
    while bad.any():
        values[bad] = gen.normal(mean, std, size=int(bad.sum()))
        bad = (values < a) | (values > b)
    return _fill(tensor, values)
