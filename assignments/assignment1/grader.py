"""The grader of Assignment 1: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks: small examples you can verify by hand, and your layers' outputs and
gradients on fixed inputs, compared with the instructor's solution's (shipped in
``expected.npz``): a public check that passes here passes in the final grade, with the same points.
A check that returns several values (``dx``, ``dw``, ``db``) scores each one separately; an
unfinished function shows as "not implemented". The final grade also runs *hidden* checks, on other
inputs (other shapes, strides and paddings); they are not in your copy.

Each function below receives ``sub``, the code being graded: ``sub.layers`` is your ``layers.py``.
Each returns the outputs of your code that it looked at. When you run the grader yourself, a
public check passes when its assertions hold; the final grade compares the returned outputs of
every check, public and hidden, with those of the instructor's solution.
"""
from pathlib import Path

import numpy as np

from minicnn.assignment import Question, collect_references

TITLE = "Assignment 1: CNN layers"
#: The files students hand in; everything else the grader uses comes from its own folder.
SUBMISSION_FILES = ["layers.py"]


def expect_close(actual, expected, what, tolerance=1e-7):
    """Assert that ``actual`` equals ``expected`` up to round-off, with a readable message."""
    expected = np.asarray(expected, dtype=np.float64)
    assert actual is not None, f"{what}: got None (did you assign the result?)"
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, \
        f"{what}: expected shape {expected.shape}, got {actual.shape}"
    error = np.max(np.abs(actual - expected), initial=0.0) / max(np.max(np.abs(expected)), 1.0)
    assert error <= tolerance, f"{what}: expected {expected.tolist()}, got {actual.tolist()}"


def named(gradients, names):
    """The gradients a backward pass returned, by name (``dx``, ``dw``, ...). Each is compared
    with the solution's by itself: one wrong gradient costs only its own share of the check."""
    if not isinstance(gradients, tuple):
        gradients = (gradients,)
    return {name: value for name, value in zip(names, gradients) if value is not None}


def layer_values(forward, backward, inputs, names, upstream_seed=0):
    """The output of ``forward(*inputs)`` and the gradients ``backward`` returns for a random
    upstream gradient (seeded), by name: ``{"out": ..., "dx": ..., "dw": ...}``.

    Checked against the solution's values (``expected.npz`` when you grade yourself); to see *why*
    a gradient is off, compare it with the numerical gradient (``gradient_check.py``, notebook)."""
    inputs = [np.array(value, dtype=np.float64) for value in inputs]
    out, cache = forward(*inputs)
    upstream = np.random.default_rng(upstream_seed).standard_normal(np.shape(out))
    return {"out": out, **named(backward(upstream, cache), names)}


def random(seed, *shape):
    """Standard normal float64 numbers of the given shape, always the same for the same seed."""
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------------------------
q1 = Question("q1", "Affine layer", points=10)


@q1.public
def affine_small_example(sub):
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])                 # (2, 1, 2): flattened to (2, 2)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])          # (M, D) = (3, 2)
    b = np.array([0.0, 0.0, 1.0])
    out, _ = sub.layers.affine_forward(x, w, b)
    expect_close(out, [[1, 2, 4], [3, 4, 8]], "affine_forward on the small example")
    return {"out": out}


@q1.public
def affine_gradients(sub):
    return layer_values(sub.layers.affine_forward, sub.layers.affine_backward,
                        [random(1, 3, 2, 3), random(2, 4, 6), random(3, 4)], ["dx", "dw", "db"])


# BEGIN HIDDEN
@q1.hidden
def affine_forward_values(sub):
    out, _ = sub.layers.affine_forward(random(11, 4, 3, 2, 2), random(12, 5, 12), random(13, 5))
    return {"out": out}


@q1.hidden
def affine_backward_values(sub):
    _, cache = sub.layers.affine_forward(random(14, 6, 7), random(15, 3, 7), random(16, 3))
    return named(sub.layers.affine_backward(random(17, 6, 3), cache), ["dx", "dw", "db"])
# END HIDDEN


# --------------------------------------------------------------------------------------------
q2 = Question("q2", "ReLU", points=5)


@q2.public
def relu_small_example(sub):
    out, _ = sub.layers.relu_forward(np.array([[-1.0, 0.0, 2.5], [3.0, -0.5, 0.1]]))
    expect_close(out, [[0, 0, 2.5], [3, 0, 0.1]], "relu_forward on the small example")
    return {"out": out}


@q2.public
def relu_gradients(sub):
    x = random(21, 4, 5)
    x += 0.01 * np.sign(x)                  # stay away from the kink at 0
    return layer_values(sub.layers.relu_forward, sub.layers.relu_backward, [x], ["dx"])


# BEGIN HIDDEN
@q2.hidden
def relu_values(sub):
    x = random(22, 2, 3, 4, 4)
    out, cache = sub.layers.relu_forward(x)
    dx = sub.layers.relu_backward(random(23, 2, 3, 4, 4), cache)
    return {"out": out, "dx": dx}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q3 = Question("q3", "Convolution, naive", points=20)

#: The small example of questions 3 and 4: a 3x3 image 0..8, one 2x2 filter of ones, bias 1.
SMALL_X = np.arange(9.0).reshape(1, 1, 3, 3)
SMALL_W = np.ones((1, 1, 2, 2))
SMALL_B = np.array([1.0])
SMALL_OUT = [[[[9.0, 13.0], [21.0, 25.0]]]]     # e.g. 0 + 1 + 3 + 4 + 1 = 9


@q3.public
def conv_naive_small_example(sub):
    out, _ = sub.layers.conv_forward_naive(SMALL_X, SMALL_W, SMALL_B)
    expect_close(out, SMALL_OUT, "conv_forward_naive on the small example")
    return {"out": out}


@q3.public
def conv_naive_output_shape(sub):
    out, _ = sub.layers.conv_forward_naive(random(31, 2, 3, 5, 5), random(32, 4, 3, 3, 3),
                                           random(33, 4), stride=2, pad=1)
    assert np.shape(out) == (2, 4, 3, 3), \
        f"stride 2, pad 1, 5x5 input, 3x3 filters: expected shape (2, 4, 3, 3), got {np.shape(out)}"
    return {"out": out}


@q3.public
def conv_naive_gradients(sub):
    layers = sub.layers
    return layer_values(lambda x, w, b: layers.conv_forward_naive(x, w, b, stride=2, pad=1),
                        layers.conv_backward_naive,
                        [random(34, 2, 2, 5, 5), random(35, 3, 2, 3, 3), random(36, 3)],
                        ["dx", "dw", "db"])


# BEGIN HIDDEN
@q3.hidden
def conv_naive_forward_values(sub):
    out, _ = sub.layers.conv_forward_naive(random(37, 2, 3, 7, 6), random(38, 4, 3, 3, 2),
                                           random(39, 4), stride=2, pad=1)
    return {"out": out}


@q3.hidden
def conv_naive_backward_values(sub):
    _, cache = sub.layers.conv_forward_naive(random(40, 2, 2, 6, 5), random(41, 3, 2, 3, 3),
                                             random(42, 3), stride=1, pad=1)
    return named(sub.layers.conv_backward_naive(random(43, 2, 3, 6, 5), cache), ["dx", "dw", "db"])
# END HIDDEN


# --------------------------------------------------------------------------------------------
q4 = Question("q4", "Convolution with im2col", points=25)


@q4.public
def im2col_small_example(sub):
    cols = sub.layers.im2col(SMALL_X, 2, 2)
    expect_close(cols, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]],
                 "im2col of the 3x3 example with a 2x2 kernel")
    return {"cols": cols}


@q4.public
def col2im_is_adjoint_of_im2col(sub):
    x, c = random(51, 2, 3, 6, 5), random(52, 2 * 3 * 3, 3 * 3 * 3)      # stride 2, pad 1
    cols = sub.layers.im2col(x, 3, 3, stride=2, pad=1)
    back = sub.layers.col2im(c, x.shape, 3, 3, stride=2, pad=1)
    assert np.shape(cols) == c.shape, \
        f"im2col(x, 3, 3, stride=2, pad=1) of x {x.shape}: expected shape {c.shape}, got {np.shape(cols)}"
    assert np.shape(back) == x.shape, \
        f"col2im(c, {x.shape}, 3, 3, stride=2, pad=1): expected shape {x.shape}, got {np.shape(back)}"
    left, right = np.sum(cols * c), np.sum(x * back)
    assert abs(left - right) <= 1e-9 * max(abs(left), 1.0), \
        f"sum(im2col(x) * c) = {left:.6f} but sum(x * col2im(c)) = {right:.6f}; they must be equal"
    return {"cols": cols, "back": back}


@q4.public
def conv_im2col_small_example(sub):
    out, _ = sub.layers.conv_forward_im2col(SMALL_X, SMALL_W, SMALL_B)
    expect_close(out, SMALL_OUT, "conv_forward_im2col on the small example")
    return {"out": out}


@q4.public
def conv_im2col_gradients(sub):
    layers = sub.layers
    return layer_values(lambda x, w, b: layers.conv_forward_im2col(x, w, b, stride=2, pad=1),
                        layers.conv_backward_im2col,
                        [random(53, 2, 2, 5, 5), random(54, 3, 2, 3, 3), random(55, 3)],
                        ["dx", "dw", "db"])


# BEGIN HIDDEN
@q4.hidden
def im2col_values(sub):
    return {"cols": sub.layers.im2col(random(56, 2, 3, 7, 6), 3, 2, stride=2, pad=1)}


@q4.hidden
def col2im_values(sub):
    return {"x": sub.layers.col2im(random(57, 2 * 4 * 4, 3 * 3 * 2), (2, 3, 7, 6), 3, 2,
                                   stride=2, pad=1)}


@q4.hidden
def conv_im2col_forward_values(sub):
    out, _ = sub.layers.conv_forward_im2col(random(58, 3, 3, 8, 7), random(59, 5, 3, 3, 3),
                                            random(60, 5), stride=2, pad=2)
    return {"out": out}


@q4.hidden
def conv_im2col_backward_values(sub):
    _, cache = sub.layers.conv_forward_im2col(random(61, 2, 3, 8, 7), random(62, 4, 3, 5, 3),
                                              random(63, 4), stride=1, pad=2)
    return named(sub.layers.conv_backward_im2col(random(64, 2, 4, 8, 9), cache), ["dx", "dw", "db"])
# END HIDDEN


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Max pooling", points=15)

POOL_X = np.array([[1.0, 2.0, 5.0, 0.0],
                   [3.0, 4.0, 1.0, 1.0],
                   [0.0, 0.0, 2.0, 2.0],
                   [9.0, 0.0, 3.0, 1.0]]).reshape(1, 1, 4, 4)


@q5.public
def max_pool_small_example(sub):
    out, _ = sub.layers.max_pool_forward(POOL_X, size=2, stride=2)
    expect_close(out, [[[[4, 5], [9, 3]]]], "max_pool_forward on the 4x4 example")
    return {"out": out}


@q5.public
def max_pool_backward_small_example(sub):
    _, cache = sub.layers.max_pool_forward(POOL_X, size=2, stride=2)
    dx = sub.layers.max_pool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 1, 1], expected[0, 0, 0, 2], expected[0, 0, 3, 0], expected[0, 0, 3, 2] = 1, 2, 3, 4
    expect_close(dx, expected, "max_pool_backward on the 4x4 example, dout = [[1, 2], [3, 4]]")
    return {"dx": dx}


@q5.public
def max_pool_gradients(sub):
    layers = sub.layers
    x = np.random.default_rng(71).permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7) / 10.0
    return layer_values(lambda x: layers.max_pool_forward(x, size=3, stride=2),
                        layers.max_pool_backward, [x], ["dx"])


# BEGIN HIDDEN
@q5.hidden
def max_pool_forward_values(sub):
    out, _ = sub.layers.max_pool_forward(random(72, 2, 3, 8, 6), size=2, stride=2)
    return {"out": out}


@q5.hidden
def max_pool_backward_values(sub):
    _, cache = sub.layers.max_pool_forward(random(73, 2, 3, 9, 7), size=3, stride=2)
    return {"dx": sub.layers.max_pool_backward(random(74, 2, 3, 4, 3), cache)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q6 = Question("q6", "Softmax loss", points=10)


@q6.public
def softmax_uniform_scores(sub):
    # All-zero scores over 10 classes: the loss is log(10), and every row of dscores sums to 0.
    loss, dscores = sub.layers.softmax_loss(np.zeros((5, 10)), np.arange(5))
    return {"loss": loss, "dscores": dscores}


@q6.public
def softmax_large_scores(sub):
    # Scores in the thousands: exp overflows unless the scores are shifted first. The loss is
    # 500 and dscores [[0, 0], [-0.5, 0.5]].
    loss, dscores = sub.layers.softmax_loss(np.array([[1000.0, 0.0], [0.0, 1000.0]]),
                                            np.array([0, 0]))
    return {"loss": loss, "dscores": dscores}


@q6.public
def softmax_gradient(sub):
    scores, y = random(81, 6, 4), np.array([0, 3, 1, 2, 3, 0])
    numerical = sub.gradient_check.eval_numerical_gradient(
        lambda s: sub.layers.softmax_loss(s, y)[0], scores.copy())
    _, dscores = sub.layers.softmax_loss(scores, y)
    error = sub.gradient_check.rel_error(dscores, numerical)
    assert error <= 1e-7, f"dscores differs from the numerical gradient (relative error {error:.1e})"
    return {"dscores": dscores}


# BEGIN HIDDEN
@q6.hidden
def softmax_values(sub):
    scores = 3 * random(82, 8, 5)
    loss, dscores = sub.layers.softmax_loss(scores, np.random.default_rng(83).integers(0, 5, 8))
    return {"loss": loss, "dscores": dscores}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q7 = Question("q7", "Dropout", points=10)


@q7.public
def dropout_statistics(sub):
    # p = 0.3 keeps about 70% of the values, and inverted dropout keeps the mean at about 1.0;
    # at test time (train=False) dropout changes nothing.
    x = np.ones((200, 50))
    out, _ = sub.layers.dropout_forward(x, 0.3, train=True, seed=1)
    test_out, _ = sub.layers.dropout_forward(x, 0.3, train=False, seed=1)
    return {"out": out, "kept": np.mean(np.asarray(out) != 0), "mean": np.mean(out),
            "test_out": test_out}


@q7.public
def dropout_gradients(sub):
    layers = sub.layers
    return layer_values(lambda x: layers.dropout_forward(x, 0.4, train=True, seed=2),
                        layers.dropout_backward, [random(91, 3, 4, 5)], ["dx"])


# BEGIN HIDDEN
@q7.hidden
def dropout_values(sub):
    x = random(92, 2, 3, 4, 4)
    out, cache = sub.layers.dropout_forward(x, 0.6, train=True, seed=93)
    dx = sub.layers.dropout_backward(random(94, 2, 3, 4, 4), cache)
    _, test_cache = sub.layers.dropout_forward(x, 0.6, train=False, seed=93)
    return {"out": out, "dx": dx, "test_dx": sub.layers.dropout_backward(random(95, 2, 3, 4, 4), test_cache)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q8 = Question("q8", "Local response normalisation", points=15)


@q8.public
def lrn_small_example(sub):
    # One pixel, channels [1, 2, 3], size 3, alpha 3 (so alpha / size = 1), beta 0.5, k 1:
    # scale = 1 + [1 + 4, 1 + 4 + 9, 4 + 9] = [6, 15, 14] (the first and last windows are cut off),
    # out = [1, 2, 3] / sqrt(scale).
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out, _ = sub.layers.lrn_forward(x, 3, alpha=3.0, beta=0.5, k=1.0)
    expected = np.array([1 / np.sqrt(6), 2 / np.sqrt(15), 3 / np.sqrt(14)]).reshape(1, 3, 1, 1)
    expect_close(out, expected, "lrn_forward(x, 3, alpha=3, beta=0.5, k=1) on channels [1, 2, 3]")
    return {"out": out}


@q8.public
def lrn_gradient_check(sub):
    # An even size (4): the window of c is c - 2 .. c + 1, and the channels whose window holds c
    # are c - 1 .. c + 2. The gradient must match the numerical one (gradient_check.py).
    def forward(x):
        return sub.layers.lrn_forward(x, 4, alpha=0.5, beta=0.75, k=1.0)

    x = random(111, 2, 6, 2, 3)
    out, cache = forward(x)
    dout = random(112, 2, 6, 2, 3)
    dx = sub.layers.lrn_backward(dout, cache)
    numerical = sub.gradient_check.eval_numerical_gradient_array(lambda v: forward(v)[0], x.copy(), dout)
    error = sub.gradient_check.rel_error(dx, numerical)
    assert error <= 1e-7, f"dx differs from the numerical gradient (relative error {error:.1e})"
    return {"dx": dx}


@q8.public
def lrn_gradients(sub):
    layers = sub.layers
    return layer_values(lambda x: layers.lrn_forward(x, 5, alpha=1.0, beta=0.75, k=2.0),
                        layers.lrn_backward, [random(110, 2, 7, 2, 2)], ["dx"])


# BEGIN HIDDEN
def lrn_reference_cache(x, size, alpha, beta, k):
    """The cache of a correct ``lrn_forward`` (its ``out`` is minicnn's ``LocalResponseNorm``), so
    that the backward checks score ``lrn_backward`` alone, whatever the forward pass does."""
    from minicnn import Tensor
    from minicnn.nn import LocalResponseNorm
    padded = np.pad(x * x, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    energy = sum(padded[:, d:d + x.shape[1]] for d in range(size))   # window sums, zero-padded
    out = LocalResponseNorm(size, alpha, beta, k)(Tensor(x)).numpy()
    return (x, out, k + (alpha / size) * energy, size, alpha, beta)


@q8.hidden
def lrn_forward_values(sub):
    alexnet, _ = sub.layers.lrn_forward(3 * random(113, 2, 8, 3, 3), 5, alpha=5e-4, beta=0.75, k=2.0)
    wide, _ = sub.layers.lrn_forward(random(114, 2, 4, 2, 2), 6, alpha=2.0, beta=0.75, k=1.0)
    even, _ = sub.layers.lrn_forward(random(115, 3, 5, 2, 2), 2, alpha=1.5, beta=0.6, k=1.0)
    return {"out": alexnet, "out_size_above_channels": wide, "out_even_size": even}


@q8.hidden
def lrn_backward_values(sub):
    odd = lrn_reference_cache(random(116, 2, 7, 3, 2), 5, alpha=1.0, beta=0.75, k=2.0)
    even = lrn_reference_cache(random(118, 2, 6, 2, 2), 2, alpha=1.5, beta=0.6, k=1.0)
    return {"dx": sub.layers.lrn_backward(random(117, 2, 7, 3, 2), odd),
            "dx_even_size": sub.layers.lrn_backward(random(119, 2, 6, 2, 2), even)}
# END HIDDEN


QUESTIONS = [q1, q2, q3, q4, q5, q6, q7, q8]


def make_references(sub):
    """The hidden checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
