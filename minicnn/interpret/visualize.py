"""Changing the image instead of the weights: gradient ascent on the input, as in the CS231n
exercises (Szegedy et al. 2014 for fooling images; Simonyan et al. 2013 and Yosinski et al. 2015
for class visualisation)."""
import math

from .. import autograd
from ..backend import get_array_module
from ..factories import randn
from ..function import enable_grad
from ..rng import generator
from ..tensor import Tensor
from .attribution import as_inputs, target_scores


def _ascent_step(model, image, target, l2_reg=0.0):
    """The image's gradient of ``S_target(image) - l2_reg ||image||^2``, normalised to unit L2 norm,
    and the model's scores."""
    x = Tensor(image, requires_grad=True)
    with enable_grad():
        out = model(x)
        objective = target_scores(out, target, "image gradient ascent").sum() - l2_reg * (x * x).sum()
        (grad,) = autograd.grad(objective, [x])
    g = grad.data
    return g / max(float((g * g).sum()) ** 0.5, 1e-12), out.data


def make_fooling_image(model, image, target, learning_rate=1.0, max_iterations=100):
    """An image close to ``image`` (a batch of one) that ``model`` classifies as ``target``:

        repeat until argmax S(x) = target:   x <- x + learning_rate * g / ||g||,   g = dS_target/dx

    Returns the new image (a Tensor); ``image`` is unchanged. Raises ``RuntimeError`` if
    ``max_iterations`` steps do not fool the model."""
    x = as_inputs(image, "make_fooling_image").data.copy()
    if x.shape[0] != 1:
        raise ValueError(f"make_fooling_image: expected one image (1, C, H, W), got shape {x.shape}")
    for _ in range(max_iterations):
        step, scores = _ascent_step(model, x, target)
        if int(scores[0].argmax()) == target:
            return Tensor(x)
        x += learning_rate * step
    raise RuntimeError(f"make_fooling_image: the model still does not predict class {target} after "
                       f"{max_iterations} steps; raise max_iterations or learning_rate")


def class_visualization(model, target, input_shape, l2_reg=1e-3, learning_rate=25.0, num_iterations=100,
                        blur_every=10, max_jitter=16, value_range=None):
    """An image that maximises the score of class ``target`` (regularised gradient ascent from noise):

        maximise  S_target(I) - l2_reg * ||I||^2

    each step on a randomly shifted (jittered) copy of the image, normalised to unit length; every
    ``blur_every`` steps a Gaussian blur (sigma 0.5) removes the high frequencies the ascent
    favours; ``value_range=(low, high)`` clips the pixels after each step. ``input_shape`` is
    ``(C, H, W)``. Starts from ``mc.randn`` (seed it with ``mc.manual_seed``). Returns ``(1, C, H, W)``."""
    weight = next(iter(model.parameters()))                         # the model's device and dtype
    image = randn(1, *input_shape, dtype=weight.dtype, device=weight.device).data
    xp = get_array_module(image)
    for t in range(num_iterations):
        dy, dx = (int(v) for v in generator().integers(-max_jitter, max_jitter + 1, size=2))
        jittered = xp.roll(image, (dy, dx), axis=(2, 3))
        step, _ = _ascent_step(model, jittered, target, l2_reg)
        image = xp.roll(jittered + learning_rate * step, (-dy, -dx), axis=(2, 3))
        if value_range is not None:
            image = xp.clip(image, *value_range)
        if blur_every and (t + 1) % blur_every == 0:
            image = gaussian_blur(image, sigma=0.5)
    return Tensor(image)


def gaussian_blur(image, sigma):
    """Blur ``(N, C, H, W)`` along H and W with a Gaussian of ``sigma`` pixels (radius 4 sigma,
    edges mirrored), as ``scipy.ndimage.gaussian_filter1d`` on each axis."""
    xp, radius = get_array_module(image), int(4 * sigma + 0.5)
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    weights = [w / sum(weights) for w in weights]
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded, n = xp.pad(image, pad, mode="symmetric"), image.shape[axis]
        image = sum(w * xp.take(padded, xp.arange(i, i + n), axis=axis) for i, w in enumerate(weights))
    return image
