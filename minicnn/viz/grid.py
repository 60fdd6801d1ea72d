"""``make_grid``: many images tiled into one, as ``torchvision.utils.make_grid``."""
import math

from ..backend import get_array_module
from ..tensor import Tensor


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
              pad_value=0.0):
    """Tile a batch ``(B, C, H, W)`` (or a list of ``(C, H, W)`` images) into one image ``(C, H', W')``:
    ``nrow`` images per row, ``padding`` pixels of ``pad_value`` around each. Single-channel
    images become three-channel (gray), as in torchvision. ``normalize`` shifts and scales the
    values to [0, 1], using ``value_range=(low, high)`` (values outside are clipped) or else the
    batch's minimum and maximum (each image's own with ``scale_each``)."""
    if isinstance(tensor, (list, tuple)):
        tensor = Tensor(get_array_module(tensor[0].data).stack([t.data for t in tensor]))
    x = tensor.data if isinstance(tensor, Tensor) else tensor
    xp = get_array_module(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"make_grid: expected images (B, C, H, W), (C, H, W) or (H, W), got shape {x.shape}")
    if x.shape[1] == 1:
        x = xp.concatenate([x, x, x], axis=1)
    if normalize:
        x = x.astype(x.dtype if x.dtype.kind == "f" else "float32")
        axes = (1, 2, 3) if scale_each else None
        low, high = (value_range if value_range is not None else
                     (x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)))
        x = (xp.clip(x, low, high) - low) / xp.maximum(high - low, x.dtype.type(1e-5))
    if x.shape[0] == 1:
        return Tensor(x[0])
    count, (channels, height, width) = x.shape[0], x.shape[1:]
    cols = min(nrow, count)
    rows = math.ceil(count / cols)
    grid = xp.full((channels, rows * (height + padding) + padding, cols * (width + padding) + padding),
                   pad_value, dtype=x.dtype)
    for k in range(count):
        top, left = (k // cols) * (height + padding) + padding, (k % cols) * (width + padding) + padding
        grid[:, top:top + height, left:left + width] = x[k]
    return Tensor(grid)
