"""The grader of Assignment 5: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks, whose values are compared with the instructor's solution's (shipped in
``expected.npz``), each by itself: a public check that passes here passes in the final grade, with
the same points. The final grade also runs *hidden* checks (other networks, images, targets and
settings); they are not in your copy. Q5 uses a reference ``ascent_direction`` instead of yours,
so a mistake in Q4 costs points once.

``sub.visualize`` is your file. No data set and no trained file is needed: the checks build small
networks with fixed random weights (float64, so that the numbers compare closely). While your code
runs, ``minicnn.interpret``'s methods are switched off: calling one fails the check.
"""
import contextlib
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import interpret, nn
from minicnn.assignment import Question, collect_references, substitute

TITLE = "Assignment 5: Visualizing and understanding CNNs"
SUBMISSION_FILES = ["visualize.py"]

#: What your code may not call (it is what you write); the grader keeps its own copy of Saliency.
SHORTCUTS = ("Saliency", "InputXGradient", "GuidedBackprop", "LayerActivation", "LayerGradCam",
             "Occlusion", "make_fooling_image", "class_visualization")
_Saliency = interpret.Saliency


def _refuse(name):
    def refused(*args, **kwargs):
        raise AssertionError(f"minicnn.interpret.{name} is what this assignment asks you to write: "
                             f"use autograd, hooks and NumPy instead of calling it")
    return refused


@contextlib.contextmanager
def own_work(sub):
    """Switch ``minicnn.interpret``'s methods off, wherever the submission could reach them."""
    import minicnn.interpret.gradient
    import minicnn.interpret.layer
    import minicnn.interpret.occlusion
    import minicnn.interpret.visualize
    originals = {name: getattr(interpret, name) for name in SHORTCUTS}
    modules = [interpret, minicnn.interpret.gradient, minicnn.interpret.layer,
               minicnn.interpret.occlusion, minicnn.interpret.visualize, sub.visualize]
    with contextlib.ExitStack() as stack:
        for module in modules:
            found = {name: _refuse(original_name) for name, value in vars(module).items()
                     for original_name, original in originals.items() if value is original}
            stack.enter_context(substitute(module, **found))
        yield


def expect_close(actual, expected, what, tolerance=1e-9):
    expected = np.asarray(expected, dtype=np.float64)
    assert actual is not None, f"{what}: got None (did you assign the result?)"
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: expected shape {expected.shape}, got {actual.shape}"
    error = np.max(np.abs(actual - expected), initial=0.0) / max(np.max(np.abs(expected), initial=0.0), 1e-12)
    assert error <= tolerance, f"{what}: off by up to {error:.3g} (relative)"


def fixed_weights(model, seed):
    """Overwrite every parameter with fixed random numbers in float64: weights He-scaled, biases
    small (how minicnn initialises layers then does not matter)."""
    rng = np.random.default_rng(seed)
    model.double()
    for p in model.parameters():
        scale = np.sqrt(2.0 / np.prod(p.shape[1:])) if p.ndim > 1 else 0.1
        p.data[...] = rng.standard_normal(p.shape) * scale
    return model.eval()


def linear_model(seed, channels=2, height=5, width=4, classes=3):
    """Scores = W x + b: its input gradient for class c is the row W[c], shaped like an image."""
    return fixed_weights(nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, classes)), seed)


def linear_rows(model, channels=2, height=5, width=4):
    return model[1].weight.numpy().reshape(-1, channels, height, width)


def small_cnn(sub, seed, channels, size):
    """The assignment's ``SmallCNN`` (width 4, ``size x size`` images), with fixed weights."""
    return fixed_weights(sub.model.SmallCNN(in_channels=channels, width=4, image_size=size), seed)


def gap_model(seed, channels=2, maps=3, classes=4):
    """conv - relu - global average pooling - linear: the network of the CAM paper (Zhou et al.)."""
    return fixed_weights(nn.Sequential(nn.Conv2d(channels, maps, 3, padding=1), nn.ReLU(),
                                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(maps, classes)), seed)


def images(seed, *shape):
    """Random images in [0, 1], float64."""
    return np.random.default_rng(seed).random(shape)


def no_hooks_left(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# --------------------------------------------------------------------------------------------
q1 = Question("q1", "Saliency", points=15)


@q1.public
def saliency_of_a_linear_model(sub):
    model, x = linear_model(11), images(12, 2, 2, 5, 4)
    with own_work(sub):
        per_image = sub.visualize.saliency(model, x, np.array([2, 0]))
        one_target = sub.visualize.saliency(model, x, 1)
    rows = np.abs(linear_rows(model))
    expect_close(per_image, rows[[2, 0]].max(axis=1), "targets [2, 0]: |W[target]|, largest over channels")
    expect_close(one_target, rows[[1, 1]].max(axis=1), "target 1 for both images")
    expect_close(x, images(12, 2, 2, 5, 4), "the input (it must not change)")
    return {"per_image": per_image, "one_target": one_target}


# BEGIN HIDDEN
@q1.hidden
def saliency_of_a_gray_cnn(sub):
    model = small_cnn(sub, 13, channels=1, size=12)
    with own_work(sub):
        return {"saliency": sub.visualize.saliency(model, images(14, 3, 1, 12, 12), np.array([4, 0, 9]))}


@q1.hidden
def saliency_of_a_colour_cnn(sub):
    model = small_cnn(sub, 15, channels=3, size=8)
    with own_work(sub):
        return {"saliency": sub.visualize.saliency(model, images(16, 2, 3, 8, 8), 6)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q2 = Question("q2", "Occlusion", points=20)


@q2.public
def occlusion_of_a_linear_model(sub):
    model, x = linear_model(21), images(22, 2, 2, 5, 4)
    with own_work(sub):
        pixels = sub.visualize.occlusion(model, x, np.array([0, 2]), window=1, stride=1)
        windows = sub.visualize.occlusion(model, x, 1, window=3, stride=2)
        grey = sub.visualize.occlusion(model, x, 1, window=2, stride=1, baseline=0.5)
    # Covering one pixel (all channels) removes exactly its part of a linear score: sum_c W[t,c,i,j] x[c,i,j].
    expect_close(pixels, (linear_rows(model)[[0, 2]] * x).sum(axis=1), "window 1, stride 1 on a linear model")
    assert np.asarray(windows).shape == (2, 5, 4), f"window 3, stride 2: expected shape (2, 5, 4), got " \
                                                   f"{np.asarray(windows).shape}"
    return {"pixels": pixels, "windows": windows, "grey": grey}


# BEGIN HIDDEN
@q2.hidden
def occlusion_of_a_cnn(sub):
    model, x = small_cnn(sub, 23, channels=2, size=12), images(24, 3, 2, 12, 12)
    with own_work(sub):
        return {"heat": sub.visualize.occlusion(model, x, np.array([3, 3, 8]), window=4, stride=2),
                "cut_windows": sub.visualize.occlusion(model, x, 5, window=5, stride=3, baseline=0.2)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q3 = Question("q3", "Feature maps and Grad-CAM", points=25)


@q3.public
def activations_of_the_first_layer(sub):
    model, x = small_cnn(sub, 31, channels=1, size=8), images(32, 2, 1, 8, 8)
    with own_work(sub):
        maps = sub.visualize.layer_activations(model, model.features[1], x)
    with mc.no_grad():
        expected = model.features[1](model.features[0](mc.Tensor(x))).numpy()
    expect_close(maps, expected, "relu(conv1(x))")
    return {"maps": maps, "hooks_removed": no_hooks_left(model)}


@q3.public
def grad_cam_with_global_average_pooling(sub):
    model, x = gap_model(33), images(34, 2, 2, 6, 6)
    with own_work(sub):
        cam = sub.visualize.grad_cam(model, model[1], x, np.array([1, 3]))
    # With global average pooling, dS_c/dA^k_ij = W[c, k] / (h w) everywhere: alpha_k = W[c, k] / (h w).
    with mc.no_grad():
        acts = model[1](model[0](mc.Tensor(x))).numpy()
    weights = model[4].weight.numpy()[[1, 3]]
    expected = np.maximum(np.einsum("nk,nkij->nij", weights, acts) / 36, 0)
    expect_close(cam, expected, "Grad-CAM with global average pooling (the CAM of Zhou et al.)")
    return {"cam": cam, "hooks_removed": no_hooks_left(model)}


# BEGIN HIDDEN
@q3.hidden
def grad_cam_of_a_cnn(sub):
    model, x = small_cnn(sub, 35, channels=2, size=12), images(36, 3, 2, 12, 12)
    with own_work(sub):
        return {"second_layer": sub.visualize.grad_cam(model, model.features[4], x, np.array([2, 7, 7])),
                "first_layer": sub.visualize.grad_cam(model, model.features[1], x, 0)}


@q3.hidden
def activations_of_a_cnn(sub):
    model, x = small_cnn(sub, 37, channels=3, size=8), images(38, 2, 3, 8, 8)
    with own_work(sub):
        maps = sub.visualize.layer_activations(model, model.features[3], x)
    return {"maps": maps, "hooks_removed": no_hooks_left(model)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q4 = Question("q4", "Fooling images", points=20)


def reference_ascent_direction(model, image, target, l2_reg=0.0):
    """Q4's ``ascent_direction``, used by Q4's fooling checks and by Q5 instead of yours (a mistake
    in it costs points once): the gradient of S_target (captum's Saliency without abs) minus the
    regulariser's 2 * l2_reg * image, scaled to length 1."""
    with mc.no_grad():
        scores = model(mc.Tensor(image)).numpy()
    toward = _Saliency(model).attribute(mc.Tensor(image), target=int(target), abs=False).numpy()
    toward = toward - 2 * l2_reg * image
    return toward / np.sqrt(np.sum(toward ** 2)), scores


@q4.public
def ascent_direction_of_a_linear_model(sub):
    model, x = linear_model(41), images(42, 1, 2, 5, 4)
    with own_work(sub):
        direction, scores = sub.visualize.ascent_direction(model, x, 2)
        regularised, _ = sub.visualize.ascent_direction(model, x, 2, l2_reg=0.3)
    row = linear_rows(model)[2:3]
    expect_close(direction, row / np.linalg.norm(row), "the direction for a linear model: W[target] / ||W[target]||")
    with mc.no_grad():
        expect_close(scores, model(mc.Tensor(x)).numpy(), "the scores")
    pull = row - 0.6 * x
    expect_close(regularised, pull / np.linalg.norm(pull), "l2_reg 0.3: (W[target] - 2 * 0.3 * x), normalised")
    return {"direction": direction, "scores": scores, "regularised": regularised}


def fooling(sub, model, image, target, **settings):
    """``fooling_image`` with the reference ascent direction; one output per thing it must get right."""
    original = image.copy()
    with own_work(sub), substitute(sub.visualize, ascent_direction=reference_ascent_direction):
        fooled, steps = sub.visualize.fooling_image(model, image, target, **settings)
    with mc.no_grad():
        prediction = model(mc.Tensor(fooled)).numpy().argmax(axis=1)
    return {"image": fooled, "steps": steps, "prediction": prediction,
            "input_unchanged": np.array_equal(image, original)}


@q4.public
def fooling_a_small_cnn(sub):
    model, x = small_cnn(sub, 43, channels=1, size=8), images(44, 1, 1, 8, 8)
    target = 0                                  # the model predicts 4 for x; 0 is its 4th choice
    result = fooling(sub, model, x, target, learning_rate=0.1)
    assert result["prediction"][0] == target, f"the model predicts {result['prediction'][0]}, not {target}"
    assert result["input_unchanged"], "the input image must not change"
    return result


# BEGIN HIDDEN
@q4.hidden
def fooling_another_cnn(sub):
    model, x = small_cnn(sub, 45, channels=2, size=8), images(46, 1, 2, 8, 8)
    return fooling(sub, model, x, 7, learning_rate=0.3, max_iterations=200)


@q4.hidden
def fooling_gives_up(sub):
    model, x = small_cnn(sub, 45, channels=2, size=8), images(46, 1, 2, 8, 8)
    try:
        with own_work(sub), substitute(sub.visualize, ascent_direction=reference_ascent_direction):
            sub.visualize.fooling_image(model, x, 7, learning_rate=0.3, max_iterations=2)
    except NotImplementedError:
        raise
    except RuntimeError:
        return {"raises": True}
    return {"raises": False}


@q4.hidden
def ascent_direction_of_a_cnn(sub):
    model, x = small_cnn(sub, 47, channels=2, size=8), images(48, 1, 2, 8, 8)
    with own_work(sub):
        direction, scores = sub.visualize.ascent_direction(model, x, 4, l2_reg=0.05)
    return {"direction": direction, "scores": scores}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Class visualisation", points=20)


def visualization(sub, model, target, shape, seed, **settings):
    with own_work(sub), substitute(sub.visualize, ascent_direction=reference_ascent_direction):
        return sub.visualize.class_visualization(model, target, shape, np.random.default_rng(seed), **settings)


@q5.public
def class_visualization_short_run(sub):
    model = small_cnn(sub, 51, channels=1, size=8)
    image = visualization(sub, model, 3, (1, 8, 8), 52, learning_rate=2.0, num_iterations=4,
                          blur_every=2, max_jitter=2)
    assert image is not None and np.asarray(image).shape == (1, 1, 8, 8), \
        f"expected an image of shape (1, 1, 8, 8), got {None if image is None else np.asarray(image).shape}"
    return {"image": image}


# BEGIN HIDDEN
@q5.hidden
def class_visualization_longer_run(sub):
    model = small_cnn(sub, 53, channels=2, size=12)
    return {"image": visualization(sub, model, 8, (2, 12, 12), 54, l2_reg=1e-2, learning_rate=3.0,
                                   num_iterations=12, blur_every=5, max_jitter=3)}
# END HIDDEN


QUESTIONS = [q1, q2, q3, q4, q5]

#: Written questions, graded by hand from ``answers.md`` (not part of the automatic total).
WRITTEN = {"w1": ("What the three maps show", 10),
           "w2": ("Fooling images", 5),
           "w3": ("Filters and class visualisations", 5)}


def make_references(sub):
    """The checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
