"""Attributions from the gradient of the target score with respect to the input pixels."""
from .. import autograd
from .. import functional as F
from ..backend import get_array_module
from ..function import enable_grad
from ..nn import ReLU
from ..tensor import Tensor
from .attribution import as_inputs, target_scores


def input_gradient(forward_func, inputs, target, method):
    """d score_target / d inputs for each example (a Tensor shaped like ``inputs``), computed on a
    leaf that shares ``inputs``' data, so the caller's tensor and every ``.grad`` are left alone.
    Works under ``no_grad`` and with frozen parameters (only the input needs a gradient)."""
    x = Tensor(as_inputs(inputs, method).data, requires_grad=True)
    with enable_grad():
        scores = target_scores(forward_func(x), target, method)
        (grad,) = autograd.grad(scores.sum(), [x])   # examples are independent: one backward for all
    return grad


class Saliency:
    """Saliency maps (Simonyan, Vedaldi & Zisserman 2013, "Deep inside convolutional networks"):
    how much the class score S_c changes with each input value,

        M = | dS_c / dx |        (abs=True; abs=False keeps the sign)

    The paper then takes the maximum over colour channels; captum and minicnn return the map
    shaped like the input (take ``.max(dim=1)`` yourself).
    """

    def __init__(self, forward_func):
        self.forward_func = forward_func

    def attribute(self, inputs, target=None, abs=True):
        grad = input_gradient(self.forward_func, inputs, target, "Saliency")
        return Tensor(get_array_module(grad.data).abs(grad.data) if abs else grad.data)


class InputXGradient:
    """Input times gradient (Shrikumar et al. 2016):  A = x * dS_c / dx,  element-wise. For a
    linear model it is exactly each input's contribution to the score."""

    def __init__(self, forward_func):
        self.forward_func = forward_func

    def attribute(self, inputs, target=None):
        inputs = as_inputs(inputs, "InputXGradient")
        grad = input_gradient(self.forward_func, inputs, target, "InputXGradient")
        return Tensor(inputs.data * grad.data)


class GuidedBackprop:
    """Guided backpropagation (Springenberg et al. 2015, "Striving for simplicity"): the input
    gradient, except that every ReLU passes back only positive gradients to positive inputs,

        R_in = [x > 0] * max(R_out, 0)          (plain backprop: [x > 0] * R_out)

    so only what increases the score, through units that were active, reaches the image. As in
    captum, this applies to the model's ``nn.ReLU`` modules (a ``F.relu`` call is unchanged): a
    forward hook on each one puts a tensor hook on its output that clamps the gradient arriving
    there. All hooks are removed when ``attribute`` returns or raises.
    """

    def __init__(self, model):
        self.model = model

    def attribute(self, inputs, target=None):
        handles = [m.register_forward_hook(self._clamp_gradient)
                   for m in self.model.modules() if isinstance(m, ReLU)]
        try:
            return input_gradient(self.model, inputs, target, "GuidedBackprop")
        finally:
            for handle in handles:
                handle.remove()

    @staticmethod
    def _clamp_gradient(module, inputs, output):
        if output.requires_grad:
            output.register_hook(F.relu)
