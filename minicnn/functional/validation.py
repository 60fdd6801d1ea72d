"""Input validation shared by the functional ops and the ``nn`` layers.

Every check raises ``ValueError`` whose message names the layer (``"conv2d"``, ``"Conv2d(3, 8, ...)"``)
and states the expected and the received shape, before any array is touched.
"""
from __future__ import annotations

import numpy  # a Python list of labels becomes a host array first

from .. import backend, checks
from ..tensor import Tensor
from .geometry import Array, IntPair, adaptive_output_size, pair


def validate_conv2d(layer: str, x_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: IntPair = 1,
                    padding: IntPair = 0, groups: int = 1, bias_shape: tuple[int, ...] | None = None) -> None:
    """Raise ``ValueError`` (naming ``layer``, expected vs received shape) for an invalid conv."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    sh, sw = pair(stride, f"{layer}: stride")
    ph, pw = pair(padding, f"{layer}: padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"{layer}: stride must be positive, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"{layer}: padding must be non-negative, got {(ph, pw)}")
    if len(weight_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D weight (C_out, C_in/groups, kH, kW), "
                         f"got shape {weight_shape}")
    c_out, cg, kh, kw = weight_shape
    if groups < 1 or c_out % groups:
        raise ValueError(f"{layer}: groups={groups} must be positive and divide the "
                         f"{c_out} output channels (weight {weight_shape})")
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D input (N, C, H, W) = (N, {cg * groups}, H, W), "
                         f"got shape {x_shape}")
    n, c, h, w = x_shape
    if c != cg * groups:
        extra = f" with groups={groups}" if groups != 1 else ""
        raise ValueError(f"{layer}: expected input with {cg * groups} channels, shape "
                         f"(N, {cg * groups}, H, W) (weight {weight_shape}{extra}), got shape {x_shape}")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{layer}: input spatial size {(h, w)} padded by {(ph, pw)} is smaller than "
                         f"the kernel {(kh, kw)}: expected an input of at least "
                         f"(N, {c}, {max(kh - 2 * ph, 1)}, {max(kw - 2 * pw, 1)}), got shape {x_shape}")
    if bias_shape is not None and tuple(bias_shape) != (c_out,):
        raise ValueError(f"{layer}: expected a bias of shape ({c_out},), got shape {tuple(bias_shape)}")


def _check_rank(layer, x_shape):
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")


def check_pool2d_args(layer: str, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
                      ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Normalise and check a pool's arguments: returns ``(kh, kw), (sh, sw), (ph, pw)``.

    Raises ``ValueError`` naming ``layer`` for a non-positive kernel or stride, or a padding that
    is negative or more than half the kernel (PyTorch's rule: a window must hold a real pixel).
    """
    kh, kw = pair(kernel_size, f"{layer}: kernel_size")
    sh, sw = pair(kernel_size if stride is None else stride, f"{layer}: stride")
    ph, pw = pair(padding, f"{layer}: padding")
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"{layer}: kernel_size and stride must be positive, got kernel_size "
                         f"{(kh, kw)}, stride {(sh, sw)}")
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{layer}: padding {(ph, pw)} must be non-negative and at most half the "
                         f"kernel size {(kh, kw)}")
    return (kh, kw), (sh, sw), (ph, pw)


def validate_pool2d(layer: str, x_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair | None = None,
                    padding: IntPair = 0, ceil_mode: bool = False) -> None:
    """Raise ``ValueError`` (naming ``layer``, expected vs received shape) for an invalid pool."""
    x_shape = tuple(x_shape)
    (kh, kw), _, (ph, pw) = check_pool2d_args(layer, kernel_size, stride, padding)
    _check_rank(layer, x_shape)
    n, c, h, w = x_shape
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(f"{layer}: input spatial size {(h, w)} padded by {(ph, pw)} is smaller than "
                         f"the kernel {(kh, kw)}: expected an input of at least "
                         f"(N, C, {max(kh - 2 * ph, 1)}, {max(kw - 2 * pw, 1)}), got shape {x_shape}")


def validate_adaptive_pool2d(layer: str, x_shape: tuple[int, ...],
                             output_size: int | tuple[int | None, int | None]) -> None:
    """Raise ``ValueError`` (naming ``layer``) for a non-4-D input or a non-positive output size."""
    _check_rank(layer, x_shape)
    oh, ow = adaptive_output_size(x_shape, output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"{layer}: output_size must be positive, got {output_size!r}")


_BN_LAYOUTS = {2: "(N, {C})", 3: "(N, {C}, L)", 4: "(N, {C}, H, W)"}


def validate_batch_norm(layer: str, x_shape: tuple[int, ...], num_features: int | None = None,
                        ranks: tuple[int, ...] = (2, 3, 4)) -> None:
    """Rank in ``ranks`` and ``num_features`` channels on axis 1: ``ValueError`` naming ``layer``
    and stating the expected and received shapes otherwise."""
    x_shape = tuple(x_shape)
    if len(x_shape) not in ranks or (num_features is not None and x_shape[1] != num_features):
        c = "C" if num_features is None else num_features
        expected = " or ".join(_BN_LAYOUTS[r].format(C=c) for r in ranks)
        raise ValueError(f"{layer}: expected input {expected}, got {x_shape}")


def validate_local_response_norm(layer: str, x_shape: tuple[int, ...]) -> None:
    """LRN needs at least (N, C, L): ``ValueError`` naming ``layer`` otherwise."""
    if len(x_shape) < 3:
        raise ValueError(f"{layer}: expected input (N, C, H, W) (or any (N, C, *) with at least 3 "
                         f"dimensions), got {tuple(x_shape)}")


def validate_linear(layer: str, x_shape: tuple[int, ...], in_features: int) -> None:
    """``x`` must be ``(*, in_features)``: ``ValueError`` naming ``layer`` otherwise."""
    x_shape = tuple(x_shape)
    if len(x_shape) == 0 or x_shape[-1] != in_features:
        expected = f"(N, {in_features})" if len(x_shape) <= 2 else f"(*, {in_features})"
        raise ValueError(f"{layer}: expected input {expected}, got {x_shape}")


def class_targets(target: Tensor | Array | list[int], logits: Tensor, op: str,
                  what: str = "input") -> Array:
    """Labels as an integer backend array on the logits' device; ``ValueError`` on a bad label."""
    if logits.ndim != 2:
        raise ValueError(f"{op}: expected {what} (N, C), got {tuple(logits.shape)}")
    t = target.data if isinstance(target, Tensor) else target
    t = t if backend.is_array(t) else numpy.asarray(t)  # a Python list or number of labels
    N, C = logits.shape
    if t.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if tuple(t.shape) != (N,):
        raise ValueError(f"{op}: expected target of shape ({N},) for input {tuple(logits.shape)}, "
                         f"got {tuple(t.shape)}")
    t = backend.to_device(t, logits.device)  # an explicit host -> device copy, if needed
    if not N:
        return t
    safe = backend.get_array_module(t).clip(t, 0, max(C - 1, 0))  # t itself when every label is valid

    def message():
        i = int((safe != t).argmax())
        return (f"{op}: target label {int(t[i])} at index {i} is outside the valid range [0, {C}) "
                f"for input {tuple(logits.shape)}")
    # On a GPU the training loop checks at its next read-back (no sync per step); until then the
    # labels used are clipped into range, so that nothing reads outside the logits.
    checks.require((safe != t).any(), message)
    return safe
