"""Gradient checking: how to know that a backward pass is right.

A backward pass is easy to get subtly wrong and hard to debug by staring at it. Fortunately every
gradient can be *measured*: nudge one input a little and watch the output move. This file is a
short walkthrough; the public checks in ``grader.py`` use these functions, and so should you.

1. The central difference.
   For a function f of one number, ``(f(x + h) - f(x - h)) / (2h)`` approximates ``f'(x)`` with an
   error proportional to ``h**2`` (the one-sided ``(f(x + h) - f(x)) / h`` is only proportional to
   ``h``: the ``h**2`` terms of the two Taylor expansions cancel in the central form). For an
   array input we nudge one element at a time, so a numerical gradient costs two evaluations of f
   per element: fine for checking on small inputs, far too slow for training.

2. Choosing h.
   Smaller h means less truncation error but more round-off: ``f(x + h) - f(x - h)`` subtracts two
   nearly equal numbers. In float64 (about 16 significant digits), ``h = 1e-5`` balances the two
   and gives about 10 correct digits. In float32 (about 7 digits) it gives almost nothing: always
   gradient-check in float64.

3. Layers with array outputs.
   A layer maps an array to an array, and its backward pass computes the gradient of a scalar
   loss L that we do not have. Make one up: with a random upstream gradient ``dout``, take
   ``L(x) = sum(layer(x) * dout)``. Then dL/dout = dout, so ``backward(dout)`` must return dL/dx,
   and the numerical gradient of L is easy to take. That is :func:`eval_numerical_gradient_array`.

4. Comparing.
   Compare the analytic and the numerical gradient with a *relative* error, which does not depend
   on the scale of the numbers: see :func:`rel_error`. For float64 and ``h = 1e-5``, around 1e-8
   or below means correct; 1e-4 or more means a bug (or a kink, like ReLU's at 0, right under the
   test point).

Run ``python gradient_check.py`` for a demonstration on a function whose gradient we know.
"""
import numpy as np


def eval_numerical_gradient(f, x, h=1e-5):
    """Numerical gradient of a scalar function ``f`` at ``x``, by central differences.

    ``f`` takes the array ``x`` and returns a number. ``x`` is changed in place during the
    computation (one element at a time) and restored afterwards. Returns an array shaped like ``x``.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f(x)
        x[index] = original - h
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def eval_numerical_gradient_array(f, x, dout, h=1e-5):
    """Numerical gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    ``f`` maps the array ``x`` to an array shaped like ``dout``. This is what a layer's backward
    pass must return when given ``dout`` (see point 3 of the module docstring).
    """
    return eval_numerical_gradient(lambda value: np.sum(f(value) * dout), x, h)


def rel_error(x, y):
    """Relative error between two arrays: ``max|x - y| / max(max|x|, max|y|)``.

    The largest difference, measured against the largest magnitude (0 when both are all zeros).
    The textbook elementwise form, ``max(|x - y| / (|x| + |y|))``, blows up on entries that happen
    to be nearly zero, where round-off is all there is; this form does not.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")
    scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0))
    return float(np.max(np.abs(x - y), initial=0.0) / scale) if scale > 0 else 0.0


def check_layer(forward, backward, inputs, seed=0, h=1e-5):
    """Compare a layer's backward pass with numerical gradients; return ``{input index: error}``.

    ``forward(*inputs)`` must return ``(out, cache)`` and ``backward(dout, cache)`` the gradients
    of the inputs (a tuple, or a single array for one input). Every input is checked; a gradient
    whose shape differs from its input's fails an ``assert``.
    """
    inputs = [np.array(value, dtype=np.float64) for value in inputs]
    out, cache = forward(*inputs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    analytic = backward(dout, cache)
    if not isinstance(analytic, tuple):
        analytic = (analytic,)
    errors = {}
    for k, value in enumerate(inputs):
        assert np.shape(analytic[k]) == value.shape, \
            f"the gradient of input {k} has shape {np.shape(analytic[k])}, but the input {value.shape}"
        def f(changed, k=k):
            args = list(inputs)
            args[k] = changed
            return forward(*args)[0]
        numerical = eval_numerical_gradient_array(f, value, dout, h)
        errors[k] = rel_error(analytic[k], numerical)
    return errors


if __name__ == "__main__":
    # A function whose gradient we know: f(x) = sum(x**3), so df/dx = 3 x**2.
    x = np.random.default_rng(0).standard_normal((3, 4))
    numerical = eval_numerical_gradient(lambda v: np.sum(v ** 3), x)
    print("f(x) = sum(x**3):  relative error of the numerical gradient:",
          f"{rel_error(numerical, 3 * x ** 2):.1e}")
    for h in (1e-1, 1e-3, 1e-5, 1e-7, 1e-9, 1e-11):
        error = rel_error(eval_numerical_gradient(lambda v: np.sum(v ** 3), x, h), 3 * x ** 2)
        print(f"  h = {h:.0e}: {error:.1e}")
    print("Too large an h: truncation error; too small: round-off. 1e-5 is a good middle.")
