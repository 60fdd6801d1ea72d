"""Attributions to a hidden layer: its activations, and Grad-CAM."""
import numpy

from .. import autograd
from ..backend import get_array_module
from ..function import enable_grad, no_grad
from ..tensor import Tensor
from .attribution import LayerCapture, as_inputs, check_layer, target_scores


class LayerAttribution:
    """What layer methods share (captum's base class of the same name)."""

    def __init__(self, forward_func, layer):
        check_layer(forward_func, layer, type(self).__name__)
        self.forward_func, self.layer = forward_func, layer

    @staticmethod
    def interpolate(layer_attribution, interpolate_dims, interpolate_mode="nearest"):
        """Resize ``(N, C, h, w)`` attributions to ``interpolate_dims = (H, W)``, as
        ``torch.nn.functional.interpolate(..., mode)`` with ``"nearest"`` or ``"bilinear"``
        (``align_corners=False``: pixel centres line up). Returns a Tensor."""
        a = layer_attribution.data if isinstance(layer_attribution, Tensor) else layer_attribution
        if a.ndim != 4 or len(interpolate_dims) != 2 or interpolate_mode not in ("nearest", "bilinear"):
            raise ValueError(f"interpolate: expected (N, C, h, w) attributions, (H, W) and mode "
                             f"'nearest' or 'bilinear'; got shape {tuple(a.shape)}, "
                             f"{tuple(interpolate_dims)}, {interpolate_mode!r}")
        for axis, size in ((2, interpolate_dims[0]), (3, interpolate_dims[1])):
            a = _resize_axis(a, int(size), axis, interpolate_mode)
        return Tensor(a)


def _resize_axis(a, size, axis, mode):
    """Resize one axis. Output pixel ``i`` sits at input coordinate ``(i + 0.5) * n / size - 0.5``;
    nearest takes pixel ``floor(i * n / size)`` (PyTorch's rule), bilinear mixes the two
    neighbours of that coordinate (clamped at the borders)."""
    xp, n = get_array_module(a), a.shape[axis]
    if mode == "nearest":
        return xp.take(a, xp.minimum(xp.arange(size) * n // size, n - 1), axis=axis)
    src = xp.maximum((xp.arange(size) + 0.5) * (n / size) - 0.5, 0)
    i0 = xp.minimum(src.astype(numpy.int64), n - 1)
    i1 = xp.minimum(i0 + 1, n - 1)
    w1 = (src - i0).astype(a.dtype).reshape((-1,) + (1,) * (a.ndim - 1 - axis))
    return xp.take(a, i0, axis=axis) * (1 - w1) + xp.take(a, i1, axis=axis) * w1


class LayerActivation(LayerAttribution):
    """The layer's output for ``inputs`` (what Zeiler & Fergus display as feature maps), without
    gradients: a Tensor ``(N, C, h, w)`` for a conv layer."""

    def attribute(self, inputs):
        inputs = as_inputs(inputs, "LayerActivation")
        with no_grad(), LayerCapture(self.layer, "LayerActivation") as capture:
            self.forward_func(inputs)
        return Tensor(capture.output.data)


class LayerGradCam(LayerAttribution):
    """Grad-CAM (Selvaraju et al. 2017). With A^k the layer's k-th feature map and S_c the target
    score, each map is weighted by its average gradient,

        alpha_k = 1/(h w) sum_ij dS_c / dA^k_ij,        L = ReLU( sum_k alpha_k A^k )

    a coarse ``(N, 1, h, w)`` map of where the layer's evidence for class c lies.
    ``relu_attributions=True`` (the paper's ReLU; captum's default is False, which also shows
    negative evidence) keeps only the positive part. ``upsample_to_input=True`` resizes the map
    bilinearly to the input's height and width, as the paper does to overlay it on the image
    (captum: ``LayerAttribution.interpolate(cam, x.shape[2:], "bilinear")``).
    """

    def attribute(self, inputs, target=None, relu_attributions=True, upsample_to_input=False):
        inputs = as_inputs(inputs, "LayerGradCam")
        with enable_grad(), LayerCapture(self.layer, "LayerGradCam", as_leaf=True) as capture:
            scores = target_scores(self.forward_func(inputs), target, "LayerGradCam")
            acts = capture.output
            if acts.ndim != 4:
                raise ValueError(f"LayerGradCam: the layer's output must be (N, C, h, w), got "
                                 f"shape {acts.shape}")
            (grads,) = autograd.grad(scores.sum(), [acts])
        alpha = grads.data.mean(axis=(2, 3), keepdims=True)            # (N, C, 1, 1)
        cam = (alpha * acts.data).sum(axis=1, keepdims=True)            # (N, 1, h, w)
        if relu_attributions:
            cam = get_array_module(cam).maximum(cam, 0)
        if upsample_to_input:
            return self.interpolate(cam, inputs.shape[2:], "bilinear")
        return Tensor(cam)
