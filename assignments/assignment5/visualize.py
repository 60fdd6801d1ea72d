"""Assignment 5: seeing inside a CNN.

Five ways of asking a trained network what it looks at, each written by you with minicnn's
autograd, hooks and NumPy (``minicnn.interpret`` has them all, and the grader may compare your
results with it, but calling it here is not allowed: the point is to write them):

- Q1 ``saliency``: how much the class score changes with each pixel (Simonyan et al. 2013);
- Q2 ``occlusion``: how much the score drops when a patch is covered (Zeiler & Fergus 2014);
- Q3 ``layer_activations`` and ``grad_cam``: a hidden layer's feature maps, and where in them
  the evidence for a class lies (Selvaraju et al. 2017);
- Q4 ``ascent_direction`` and ``fooling_image``: a tiny change of the image that changes the
  prediction (Szegedy et al. 2014);
- Q5 ``class_visualization``: an image the network finds very much like a class (Simonyan et al.
  2013; Yosinski et al. 2015).

Conventions: ``model`` is a minicnn module in evaluation mode that maps a batch ``(N, C, H, W)``
to class scores ``(N, classes)`` (the raw scores, before any softmax). Images are NumPy arrays;
``target`` is the class to explain: one int for every image, or one int per image. Every function
returns NumPy arrays and leaves its inputs unchanged.
"""
import numpy as np

import minicnn as mc


def target_scores(scores, target):
    """The score of each image's target class, a Tensor ``(N,)`` that autograd can differentiate:
    ``scores[i, target_i]``, picked by multiplying with a one-hot mask and summing each row."""
    n, classes = scores.shape
    labels = np.broadcast_to(np.asarray(target), (n,))
    one_hot = np.zeros((n, classes), dtype=scores.numpy().dtype)
    one_hot[np.arange(n), labels] = 1
    return (scores * mc.Tensor(one_hot)).sum(axis=1)


def predict(model, x):
    """The class ``model`` predicts for each image of ``x``."""
    with mc.no_grad():
        return model(mc.Tensor(x)).numpy().argmax(axis=1)


# ------------------------------------------------------------------------------------------------
# Q1. Saliency
# ------------------------------------------------------------------------------------------------

def saliency(model, x, target):
    """The saliency map of each image, ``(N, H, W)``: the absolute value of the gradient of the
    target score S_c with respect to the input, ``|dS_c / dx|``, then the maximum over the colour
    channels (as in the paper). One backward pass must serve the whole batch."""
    saliency_map = None
    # BEGIN SOLUTION (hint: x as a Tensor that requires grad; score i depends on image i only: one backward of the sum)
    image = mc.Tensor(x, requires_grad=True)
    (gradient,) = mc.autograd.grad(target_scores(model(image), target).sum(), [image])
    saliency_map = np.abs(gradient.numpy()).max(axis=1)
    # END SOLUTION
    return saliency_map


# ------------------------------------------------------------------------------------------------
# Q2. Occlusion
# ------------------------------------------------------------------------------------------------

def window_starts(size, window, stride):
    """Where the windows start along one axis of ``size`` pixels: 0, stride, 2 * stride, ... up to
    the first window that reaches the border (it is cut there), so that every pixel is covered.
    ``window_starts(28, 4, 2)`` is 0, 2, ..., 24; ``window_starts(7, 3, 3)`` is 0, 3, 6."""
    return list(range(0, size - window + stride, stride))


def occlusion(model, x, target, window, stride, baseline=0.0):
    """The occlusion map of each image, ``(N, H, W)``. Slide a ``window x window`` square over the
    image (all channels at once), its corners at ``window_starts`` along each axis; at each
    position set the square to ``baseline`` and compute the target score. Each pixel gets the
    *drop* of the score, ``S_c(x) - S_c(x occluded)``, averaged over the windows that covered
    it. Only forward passes: run them under ``mc.no_grad()``, all N images of one window
    position in one pass."""
    heat = None
    # BEGIN SOLUTION (hint: keep a sum of drops and a count per pixel; one window position occludes the whole batch)
    n, _, height, width = x.shape
    with mc.no_grad():
        score = target_scores(model(mc.Tensor(x)), target).numpy()
        total, count = np.zeros((n, height, width)), np.zeros((height, width))
        for top in window_starts(height, window, stride):
            for left in window_starts(width, window, stride):
                covered = (slice(top, top + window), slice(left, left + window))
                occluded = x.copy()
                occluded[:, :, covered[0], covered[1]] = baseline
                drop = score - target_scores(model(mc.Tensor(occluded)), target).numpy()
                total[:, covered[0], covered[1]] += drop[:, None, None]
                count[covered] += 1
    heat = total / count
    # END SOLUTION
    return heat


# ------------------------------------------------------------------------------------------------
# Q3. Feature maps and Grad-CAM
# ------------------------------------------------------------------------------------------------

def layer_activations(model, layer, x):
    """The output of ``layer`` (one of the model's modules) when the model runs on ``x``: the
    feature maps ZFNet's paper shows, ``(N, C, h, w)`` for a conv layer. Record it with a forward
    hook (``layer.register_forward_hook``), without gradients, and remove the hook afterwards,
    also when the forward pass raises."""
    activations = None
    # BEGIN SOLUTION (hint: hook(module, inputs, output) can append to a list made outside it; try/finally removes it)
    seen = []
    hook = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.numpy()))
    try:
        with mc.no_grad():
            model(mc.Tensor(x))
    finally:
        hook.remove()
    activations = seen[0]
    # END SOLUTION
    return activations


def grad_cam(model, layer, x, target):
    """Grad-CAM of each image at ``layer``, ``(N, h, w)``. With ``A^k`` the layer's k-th feature
    map and S_c the target score:

        alpha_k = (1 / (h w)) sum_ij dS_c / dA^k_ij,        L = ReLU( sum_k alpha_k A^k )

    Find ``A`` with a forward hook and its gradient with autograd; remove the hook afterwards,
    also when something raises."""
    cam = None
    # BEGIN SOLUTION (hint: keep the layer's output Tensor; mc.autograd.grad differentiates with respect to any Tensor)
    kept = []
    hook = layer.register_forward_hook(lambda module, inputs, output: kept.append(output))
    try:
        scores = target_scores(model(mc.Tensor(x)), target)
    finally:
        hook.remove()
    (maps_gradient,) = mc.autograd.grad(scores.sum(), [kept[0]])
    alpha = maps_gradient.numpy().mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((alpha * kept[0].numpy()).sum(axis=1), 0)
    # END SOLUTION
    return cam


# ------------------------------------------------------------------------------------------------
# Q4. Fooling images
# ------------------------------------------------------------------------------------------------

def ascent_direction(model, image, target, l2_reg=0.0):
    """The direction that raises ``S_target(image) - l2_reg * ||image||^2`` fastest: its gradient
    with respect to the image, divided by the gradient's L2 norm (over all its values) so that it
    has length 1. ``image`` is a batch of one, ``(1, C, H, W)``. Returns ``(direction, scores)``:
    the normalised gradient, shaped like the image, and the model's scores ``(1, classes)`` for
    the image."""
    direction, scores = None, None
    # BEGIN SOLUTION (hint: the regulariser depends on the image too: differentiate the whole objective)
    pixels = mc.Tensor(image, requires_grad=True)
    out = model(pixels)
    objective = target_scores(out, target).sum() - l2_reg * (pixels * pixels).sum()
    (gradient,) = mc.autograd.grad(objective, [pixels])
    direction = gradient.numpy() / np.linalg.norm(gradient.numpy())
    scores = out.numpy()
    # END SOLUTION
    return direction, scores


def fooling_image(model, image, target, learning_rate=1.0, max_iterations=100):
    """An image close to ``image`` (a batch of one) that ``model`` classifies as ``target``:

        until the model predicts target:   x <- x + learning_rate * ascent_direction(x)

    checking the prediction (from the scores ``ascent_direction`` returns) before each step.
    Returns ``(fooled image, number of steps taken)``; ``image`` stays unchanged. Raises
    ``RuntimeError`` naming the target if ``max_iterations`` steps are not enough."""
    fooled, steps = None, 0
    # BEGIN SOLUTION (hint: the current image's scores come with its direction: check them before each step)
    fooled = image.copy()
    for steps in range(max_iterations):
        direction, scores = ascent_direction(model, fooled, target)
        if scores[0].argmax() == target:
            break
        fooled = fooled + learning_rate * direction
    else:
        raise RuntimeError(f"fooling_image: the model still does not predict class {target} after "
                           f"{max_iterations} steps")
    # END SOLUTION
    return fooled, steps


# ------------------------------------------------------------------------------------------------
# Q5. Class visualisation
# ------------------------------------------------------------------------------------------------

def gaussian_blur(image, sigma=0.5):
    """Blur ``(N, C, H, W)`` images along H and W with a Gaussian of ``sigma`` pixels (radius
    4 sigma, borders mirrored)."""
    radius = int(4 * sigma + 0.5)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded, n = np.pad(image, pad, mode="symmetric"), image.shape[axis]
        image = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(weights))
    return image


def class_visualization(model, target, shape, rng, l2_reg=1e-3, learning_rate=25.0,
                        num_iterations=100, blur_every=10, max_jitter=4):
    """An image ``(1, C, H, W)`` that the model finds very much like class ``target``: gradient
    ascent on ``S_target(I) - l2_reg * ||I||^2``, from noise, regularised by random shifts
    (jitter) and blurring. ``shape`` is ``(C, H, W)``; ``rng`` a NumPy Generator, used exactly so:

    - start from ``I = rng.standard_normal((1, C, H, W))``;
    - each of the ``num_iterations`` steps: draw ``dy, dx = rng.integers(-max_jitter,
      max_jitter + 1, size=2)``; shift the image by ``(dy, dx)`` pixels along (H, W), rolling
      around the borders (``np.roll``); take one step of ``learning_rate`` along
      ``ascent_direction`` of the shifted image (with ``l2_reg``); shift it back by ``(-dy, -dx)``;
    - after every ``blur_every``-th step (steps 10, 20, ... for 10) blur the image with
      ``gaussian_blur``.
    """
    image = None
    # BEGIN SOLUTION (hint: step on the shifted image, so the gradient lines up with what the model saw)
    image = rng.standard_normal((1, *shape))
    for step in range(1, num_iterations + 1):
        dy, dx = rng.integers(-max_jitter, max_jitter + 1, size=2)
        shifted = np.roll(image, (dy, dx), axis=(2, 3))
        direction, _ = ascent_direction(model, shifted, target, l2_reg)
        image = np.roll(shifted + learning_rate * direction, (-dy, -dx), axis=(2, 3))
        if step % blur_every == 0:
            image = gaussian_blur(image)
    # END SOLUTION
    return image
