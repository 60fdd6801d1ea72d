"""See inside a network: which input pixels and which hidden units a prediction depends on.

captum's API (``Method(model[, layer]).attribute(inputs, target=...)``), each method one short
class with its paper's formula in the docstring:

    gradient.py     Saliency, InputXGradient, GuidedBackprop     (the gradient w.r.t. the input)
    layer.py        LayerActivation, LayerGradCam, LayerAttribution.interpolate
    occlusion.py    Occlusion                                    (forward passes only)
    visualize.py    make_fooling_image, class_visualization      (gradient ascent on the image)
    attribution.py  what they share: the target score, a layer's output, hooks always removed

Every method works in ``eval()`` mode, with frozen parameters and under ``no_grad`` (it turns on
what it needs), on every device, and leaves no hook behind. A model wrapped in
``nn.parallel.DistributedDataParallel`` gives its inner model's attributions (its backward averages
gradients only after ``backward()``, not after the ``autograd.grad`` the methods use).
docs/see-inside.md explains them; ``minicnn explain`` draws them for a trained run.
"""
from .gradient import GuidedBackprop, InputXGradient, Saliency
from .layer import LayerActivation, LayerAttribution, LayerGradCam
from .occlusion import Occlusion
from .visualize import class_visualization, make_fooling_image

__all__ = ["Saliency", "InputXGradient", "GuidedBackprop", "LayerActivation", "LayerAttribution",
           "LayerGradCam", "Occlusion", "make_fooling_image", "class_visualization"]
