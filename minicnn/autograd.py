"""``mc.autograd.grad``: gradients of outputs with respect to chosen inputs, returned, not stored.

``loss.backward()`` adds the gradient of ``loss`` to the ``.grad`` of every leaf it reaches. To
ask "how does the output change with this input?" -- a saliency map, the gradient of a class
score with respect to a hidden layer -- without disturbing any ``.grad``, use

    (dx,) = mc.autograd.grad(score, [x])

as ``torch.autograd.grad``. It runs the same backward walk (``function.run_backward``), over only
the functions between the outputs and the inputs. Hooks on the tensors it passes still run, and an
input's gradient is the one its own hooks leave (a non-leaf tensor that called ``retain_grad()``
still records its gradient, as in PyTorch).
"""
from .function import run_backward
from .tensor import Tensor

__all__ = ["grad"]


def _as_list(name, value):
    """A tensor or a sequence of tensors -> a list of tensors; anything else is a clear error."""
    items = [value] if isinstance(value, Tensor) else list(value)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"autograd.grad(): {name}[{i}] is a {type(t).__name__}, expected a Tensor")
    return items


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, a tuple of Tensors (one per input).

    ``outputs`` and ``inputs`` are a Tensor or a sequence of them; ``grad_outputs`` gives the
    upstream gradient of each output (None for a one-element output: 1), so the result is
    ``sum_k grad_outputs[k] * d outputs[k] / d input``. No ``.grad`` of a leaf changes. The graph
    is freed unless ``retain_graph``. An input that no output depends on is an error, or gives
    ``None`` with ``allow_unused=True``.
    """
    outputs, inputs = _as_list("outputs", outputs), _as_list("inputs", inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"autograd.grad(): {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad(): outputs[{i}] (shape {t.shape}) does not require grad "
                               f"and has no graph")
        if t._graph_freed:
            raise RuntimeError(f"autograd.grad(): the graph behind outputs[{i}] was already freed by an "
                               f"earlier backward; recompute the forward pass, or pass retain_graph=True")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad(): inputs[{i}] (shape {t.shape}) does not require grad")
    seeds = [t._upstream_gradient(g, f"autograd.grad() for outputs[{i}]")
             for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    grads = run_backward(outputs, seeds, retain_graph=retain_graph, inputs=inputs)
    for i, g in enumerate(grads):
        if g is None and not allow_unused:
            raise RuntimeError(f"autograd.grad(): inputs[{i}] (shape {inputs[i].shape}) is not part of "
                               f"the graph of the outputs (pass allow_unused=True to get None for it)")
    return tuple(None if g is None else Tensor(g.copy()) for g in grads)
