"""Occlusion (Zeiler & Fergus 2014, section 4.2): cover part of the image, see the score drop."""
import itertools

import numpy

from ..backend import get_array_module
from ..function import no_grad
from ..tensor import Tensor
from .attribution import as_inputs, target_scores


def _per_dim(value, ndim, name):
    """An int (the same for every dim) or a tuple of ``ndim`` positive ints."""
    values = (value,) * ndim if isinstance(value, int) else tuple(value)
    if len(values) != ndim or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"Occlusion: {name} must be {ndim} positive ints (one per input dim "
                         f"after the batch), got {value!r}")
    return values


class Occlusion:
    """Slide a window (``sliding_window_shapes``, one size per input dim after the batch) over the
    input in steps of ``strides``; at each position p replace the window by ``baselines`` and
    run the model. Each input value gets the average drop of the target score over the windows
    that covered it:

        A(x_i) = mean over windows p covering i of  [ S_c(x) - S_c(x with window p occluded) ]

    Windows start at 0, s, 2s, ... along each dim until one reaches the border (cut there, as
    in captum), so every value is covered. ``perturbations_per_eval`` occluded copies of the batch
    go through the model in one forward pass (no gradients: only forward passes).
    """

    def __init__(self, forward_func):
        self.forward_func = forward_func

    def attribute(self, inputs, sliding_window_shapes, strides=None, baselines=0, target=None,
                  perturbations_per_eval=1):
        x = as_inputs(inputs, "Occlusion").data
        xp, dims = get_array_module(x), x.shape[1:]
        window = _per_dim(sliding_window_shapes, len(dims), "sliding_window_shapes")
        stride = _per_dim(1 if strides is None else strides, len(dims), "strides")
        if any(w > d for w, d in zip(window, dims)):
            raise ValueError(f"Occlusion: sliding_window_shapes {window} is larger than the input "
                             f"{dims} (after the batch)")
        if any(s > w < d for s, w, d in zip(stride, window, dims)):
            raise ValueError(f"Occlusion: strides {stride} must not exceed sliding_window_shapes "
                             f"{window} (where the window is smaller than the input), or values "
                             f"between windows would never be occluded")
        if not isinstance(perturbations_per_eval, int) or perturbations_per_eval < 1:
            raise ValueError(f"Occlusion: perturbations_per_eval must be a positive int, got "
                             f"{perturbations_per_eval!r}")
        base = baselines.data if isinstance(baselines, Tensor) else baselines
        base = xp.broadcast_to(xp.asarray(base, dtype=x.dtype), x.shape)
        starts = [range(0, d - w + s, s) for d, w, s in zip(dims, window, stride)]  # the last may be cut
        windows = [(slice(None),) + tuple(slice(p, p + w) for p, w in zip(corner, window))
                   for corner in itertools.product(*starts)]
        total, count = xp.zeros_like(x), xp.zeros(dims, dtype=x.dtype)
        with no_grad():
            score = target_scores(self.forward_func(Tensor(x)), target, "Occlusion").data
            for first in range(0, len(windows), perturbations_per_eval):
                chunk = windows[first:first + perturbations_per_eval]
                batch = xp.concatenate([self._occlude(x, base, w) for w in chunk])
                out = self.forward_func(Tensor(batch))
                occluded_score = target_scores(out, _repeat(target, len(chunk)), "Occlusion").data
                drops = score - occluded_score.reshape(len(chunk), -1)       # (windows, N)
                for w, drop in zip(chunk, drops):
                    total[w] += drop.reshape((-1,) + (1,) * len(dims))
                    count[w[1:]] += 1
        return Tensor(total / count)

    @staticmethod
    def _occlude(x, base, window):
        occluded = x.copy()
        occluded[window] = base[window]
        return occluded


def _repeat(target, times):
    """The target for ``times`` copies of the batch, one after the other (one int stays one int)."""
    if target is None:
        return None
    labels = numpy.asarray(target.numpy() if isinstance(target, Tensor) else target)
    return labels if labels.ndim == 0 else numpy.tile(labels, times)
