"""Window geometry shared by every layer that slides a window: convolution and pooling.

    conv_output_size(size, kernel, stride, padding)   the output-size formula (W - K + 2P)/S + 1
    pair(value)                                       3 -> (3, 3): the (height, width) form of an argument
    pad2d(x, pads, value)                             a border of ``value`` around (N, C, H, W) maps
    adaptive_output_size(x_shape, output_size)        adaptive pooling's (oh, ow)
"""
from __future__ import annotations

from typing import Any, Union

from .. import backend

IntPair = Union[int, tuple[int, int]]
"""An int-or-pair argument: ``3`` (both axes) or ``(3, 5)`` (height, width), as PyTorch's ``_size_2_t``."""
Array = Any
"""A backend array: ``numpy.ndarray`` on ``"cpu"``, ``cupy.ndarray`` on ``"cuda"``."""


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Number of positions a window of ``kernel`` takes along an axis of ``size`` elements.

    This is the one place the formula lives; conv and every pooling layer use it.

    Derivation. Pad ``padding`` elements on both sides: the padded axis has ``size + 2*padding``
    elements. A (dilated) window spans ``k = dilation*(kernel - 1) + 1`` elements; the window at
    position ``i`` starts at ``i*stride`` and fits when ``i*stride + k <= size + 2*padding``. So
    ``i`` runs from 0 to ``floor((size + 2*padding - k) / stride)``, and the count is

        out = floor((size + 2*padding - k) / stride) + 1       e.g. AlexNet conv1: (227-11)/4+1 = 55

    ``ceil_mode=True`` (PyTorch's, for pooling) rounds up instead, letting a last, partial window
    hang over the bottom/right border:

        out = ceil((size + 2*padding - k) / stride) + 1

    except that the last window must start inside the input or the left padding: if
    ``(out - 1)*stride >= size + padding`` it would cover only right padding, and is dropped.

    Raises ``ValueError`` when not even one window fits.
    """
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    if room < 0 or stride < 1:
        raise ValueError(f"conv_output_size: a window of {span} does not fit in {size} elements "
                         f"padded by {padding} on each side (stride {stride})")
    if ceil_mode:
        out = -(-room // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = room // stride + 1
    return out


def pair(value: IntPair, name: str = "value") -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``: the (height, width) form of an int-or-pair argument."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    try:
        if any(int(v) != v for v in pair):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}") from None
    return tuple(int(v) for v in pair)


def pad2d(x: Array, pads: tuple[int, int, int, int], value: float = 0.0, out: Array | None = None) -> Array:
    """``x`` (N, C, H, W) surrounded by ``value``: ``pads = (top, bottom, left, right)``.

    ``out``: an array of the padded shape to write into (a reused buffer) instead of a new one.
    Without ``out``, returns ``x`` itself when all pads are zero (callers only read the result).
    """
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        if out is None:
            return x
        out[...] = x
        return out
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    if out is None:
        out = xp.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    out[:, :, :top] = value                          # the border strips ...
    out[:, :, top + h:] = value
    out[:, :, top:top + h, :left] = value
    out[:, :, top:top + h, left + w:] = value
    out[:, :, top:top + h, left:left + w] = x        # ... and the interior: each element written once
    return out


def adaptive_output_size(x_shape: tuple[int, ...], output_size: int | tuple[int | None, int | None]
                         ) -> tuple[int, int]:
    """``output_size`` (int, pair, None entries = keep the input's size) -> (oh, ow)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or an (h, w) pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    return (x_shape[2] if oh is None else int(oh)), (x_shape[3] if ow is None else int(ow))
