"""Gradient clipping: keep one bad batch from throwing the weights far away.

* :func:`clip_grad_norm_` rescales all gradients together so that their joint norm (the norm of
  the vector of all gradient entries) is at most ``max_norm``; directions are kept.
* :func:`clip_grad_value_` clamps each gradient entry to ``[-clip_value, clip_value]``.

Both work in place on ``p.grad.data`` (with the array module of the gradient, so on any device) and
follow ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``. Call them between
``loss.backward()`` and ``optimizer.step()``.
"""
import math

from .. import backend


def _grads(parameters):
    from ..tensor import Tensor
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the gradients of ``parameters`` so that their total ``norm_type``-norm is at most
    ``max_norm``. Returns the total norm *before* clipping, as a Python float.

    As PyTorch: the scale is ``min(1, max_norm / (total_norm + 1e-6))``; ``norm_type`` may be
    ``float("inf")`` (largest absolute entry). A non-finite total norm raises ``RuntimeError``
    when ``error_if_nonfinite`` (otherwise the gradients become non-finite too).
    """
    params = _grads(parameters)
    if not params:
        return 0.0
    max_norm, norm_type = float(max_norm), float(norm_type)
    total = None  # accumulated on the gradients' device: one transfer at the end
    for p in params:
        xp = backend.get_array_module(p.grad.data)
        g = xp.abs(p.grad.data.astype("float64"))
        if not g.size:
            continue
        part = g.max() if norm_type == math.inf else (g ** norm_type).sum()
        if total is None:
            total = part
        else:
            total = xp.maximum(total, part) if norm_type == math.inf else total + part
    total = 0.0 if total is None else float(total)
    if norm_type != math.inf:
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is "
                           f"{total}; set error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            p.grad.data *= coef
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient entry of ``parameters`` to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for p in _grads(parameters):
        xp = backend.get_array_module(p.grad.data)
        xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
