"""``minicnn.nn.utils``, as ``torch.nn.utils``: gradient clipping between ``loss.backward()`` and
``optimizer.step()``.

>>> loss.backward()
>>> total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # the norm before clipping
>>> optimizer.step()

The clipping itself is :mod:`minicnn.optim.clip` (also reachable as ``optim.clip_grad_norm_``).
"""
from ..optim import clip as _clip
from ..tensor import tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` together so that their total ``norm_type``-norm is at
    most ``max_norm``, in place; returns the total norm before clipping as a 0-d float32 tensor,
    as ``torch.nn.utils.clip_grad_norm_`` (``optim.clip_grad_norm_`` returns it as a float)."""
    return tensor(float(_clip.clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)))


clip_grad_value_ = _clip.clip_grad_value_
