"""Tracing: run the model once and read its computation back from the autograd graph.

Every op applied to a tensor that needs a gradient is recorded (``minicnn/function.py``): the
output knows the ``Function`` that made it, the function knows its input tensors. So one forward
pass with inputs that require gradients leaves the whole computation behind, modules and plain
functional calls (a residual ``out + x``, a ``concat``) alike; walking it back from the outputs
gives the functions in an order where each comes after those that feed it.

Which module called each function is read with forward hooks: when a module returns, every
not-yet-labelled function between its inputs and its output is its own (inner modules return
first, so a function gets the innermost module's name). Error messages and ONNX node names use it.
"""
import numpy

from .. import backend
from ..function import _topological_order, enable_grad
from ..tensor import Tensor


class Trace:
    """One traced forward pass: ``inputs`` and ``outputs`` (Tensors), ``functions`` (each after
    the functions feeding it) and ``labels`` (``id(function)`` -> ``(module name, class name)``)."""

    def __init__(self, inputs, outputs, functions, labels):
        self.inputs, self.outputs, self.functions, self.labels = inputs, outputs, functions, labels

    def label(self, fn):
        """``"layer1.0" (CifarBasicBlock)``: where ``fn`` was called, for messages."""
        name, cls = self.labels.get(id(fn), ("", "?"))
        return f"'{name}' ({cls})" if name else f"the top level ({cls})"


def _tensors(value):
    """The Tensors in a value: itself, or those inside (nested) tuples and lists."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _label_hook(labels, name):
    """A forward hook that labels the functions between a module's inputs and its output."""
    def hook(module, inputs, output):
        stop = {id(t) for t in _tensors(inputs)}
        stack, seen = _tensors(output), set()
        while stack:
            t = stack.pop()
            if id(t) in stop or t._creator is None or id(t._creator) in seen:
                continue
            fn = t._creator
            seen.add(id(fn))
            labels.setdefault(id(fn), (name, type(module).__name__))
            stack.extend(x for x in fn.inputs if x is not None)
    return hook


def trace(model, arrays):
    """Run ``model`` (in eval mode, as it is exported) on the host arrays ``arrays`` (moved to the
    model's device) and return the :class:`Trace`. The model's own mode is restored afterwards."""
    device = next((p.device for p in model.parameters()), "cpu")
    inputs = [Tensor(backend.to_device(a, device), requires_grad=True) for a in arrays]
    labels = {}
    handles = [m.register_forward_hook(_label_hook(labels, name)) for name, m in model.named_modules()]
    was_training = model.training
    model.eval()
    try:
        with enable_grad():
            output = model(*inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    outputs = _tensors(output)
    if not outputs or (isinstance(output, (tuple, list)) and len(outputs) != len(output)):
        raise ValueError(f"minicnn.onnx.export: {type(model).__name__} returned "
                         f"{type(output).__name__}; expected a Tensor or a tuple of Tensors")
    functions, seen = [], set()
    for out in outputs:
        if out._creator is not None:
            for fn in _topological_order(out._creator):
                if id(fn) not in seen:
                    seen.add(id(fn))
                    functions.append(fn)
    return Trace(inputs, outputs, functions, labels)


def second_inputs(arrays, dynamic_batch):
    """The inputs of the second trace: other values (so a value computed from the input but cut
    out of the graph shows up as a constant that changed) and, with ``dynamic_batch``, one more
    example (so every number that is the batch size shows up as one that grew by one)."""
    out = []
    for a in arrays:
        if dynamic_batch:
            a = numpy.concatenate([a, a[:1]])
        out.append((a * 0.5 + 0.25).astype(a.dtype))
    return out


def host_arrays(args):
    """``args`` (a Tensor, an array, or a tuple of them) as a list of host float arrays."""
    args = args if isinstance(args, (tuple, list)) else (args,)
    arrays = []
    for i, a in enumerate(args):
        a = a.data if isinstance(a, Tensor) else a
        a = numpy.asarray(backend.to_numpy(a) if backend.is_array(a) else a)
        if a.dtype.kind != "f" or a.ndim == 0:
            raise ValueError(f"minicnn.onnx.export: input {i} is a {a.dtype} array of shape "
                             f"{a.shape}; expected a floating-point batch (N, ...)")
        arrays.append(a)
    return arrays
