"""What every attribution method shares: checking the inputs, picking the target score, and
finding a layer's output -- with hooks that are always removed again.

captum's vocabulary: ``forward_func`` is the model (any callable from a batch to scores), ``inputs``
a batch ``(N, ...)``, ``target`` the class whose score is explained: one int for every example, or
one per example (a list, array or Tensor of N ints). ``None`` is allowed only for a model with one
score per example (captum then sums all the scores; minicnn asks for a target instead).
"""
import numpy

from .. import backend
from ..nn import Module
from ..tensor import Tensor


def as_inputs(inputs, method):
    """``inputs`` as a floating-point Tensor with a batch axis, or a clear error."""
    if backend.is_array(inputs):
        inputs = Tensor(inputs)
    if not isinstance(inputs, Tensor):
        raise TypeError(f"{method}: inputs must be a Tensor (N, ...), got {type(inputs).__name__}")
    if inputs.dtype.kind != "f" or inputs.ndim < 2:
        raise ValueError(f"{method}: inputs must be a floating-point batch (N, ...), got shape "
                         f"{inputs.shape} of {inputs.dtype}")
    return inputs


def target_scores(output, target, method):
    """The score of each example's target class, a Tensor ``(N,)`` (differentiable): ``output[i,
    target_i]``, picked by a one-hot mask so that it works the same on every device."""
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1 and target is None):
        return output.reshape(output.shape[0])
    if output.ndim != 2:
        raise ValueError(f"{method}: the model's output must be (N, classes), got shape {output.shape}")
    n, classes = output.shape
    if target is None:
        raise ValueError(f"{method}: target is needed: the model gives {classes} scores per example "
                         f"(pass target=class index, or one index per example)")
    labels = numpy.asarray(backend.to_numpy(target.data) if isinstance(target, Tensor) else
                           backend.to_numpy(target) if backend.is_array(target) else target)
    if labels.dtype.kind not in "iu" or labels.ndim > 1 or labels.ndim == 1 and len(labels) != n:
        raise ValueError(f"{method}: target must be an int or {n} ints (one per example), got "
                         f"{labels.tolist() if labels.size < 20 else f'shape {labels.shape}'}")
    labels = numpy.broadcast_to(labels, (n,))
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        raise ValueError(f"{method}: target {int(bad[0])} is outside [0, {classes}): the model gives "
                         f"{classes} scores per example")
    one_hot = numpy.zeros((n, classes), dtype=output.dtype)
    one_hot[numpy.arange(n), labels] = 1
    return (output * Tensor(backend.to_device(one_hot, output.device))).sum(axis=1)


def check_layer(forward_func, layer, method):
    """``layer`` must be a Module, and one of the model's when the model is a Module."""
    if not isinstance(layer, Module):
        raise TypeError(f"{method}: layer must be a Module (e.g. model.features[3]), got "
                        f"{type(layer).__name__}")
    if isinstance(forward_func, Module) and not any(m is layer for m in forward_func.modules()):
        raise ValueError(f"{method}: layer {type(layer).__name__} is not part of the model "
                         f"({type(forward_func).__name__}); pass one of model.modules()")


class LayerCapture:
    """``with LayerCapture(layer, method) as capture:`` records the layer's output each time it runs
    (``capture.output`` after the forward pass). With ``as_leaf=True`` the output is handed on as a
    new leaf that requires grad, so gradients with respect to it exist even when nothing below the
    layer requires one (frozen parameters, an input without gradient) and the backward walk stops
    there. The hook is removed on leaving the block, also when it raises."""

    def __init__(self, layer, method, as_leaf=False):
        self.layer, self.method, self.as_leaf, self.outputs = layer, method, as_leaf, []

    def _record(self, module, inputs, output):
        if not isinstance(output, Tensor):
            raise TypeError(f"{self.method}: layer {type(module).__name__} returned a "
                            f"{type(output).__name__}, expected one Tensor")
        if self.as_leaf:
            output = Tensor(output.data, requires_grad=True)
        self.outputs.append(output)
        return output

    @property
    def output(self):
        if len(self.outputs) != 1:
            raise RuntimeError(f"{self.method}: layer {type(self.layer).__name__} ran "
                               f"{len(self.outputs)} times in one forward pass; choose a layer "
                               f"that runs exactly once")
        return self.outputs[0]

    def __enter__(self):
        self.handle = self.layer.register_forward_hook(self._record)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return False
