"""In-place arithmetic as PyTorch does it (issue 29): ``p -= lr * p.grad`` under ``no_grad()``
changes ``p``; where PyTorch refuses (a leaf that requires grad, a value the graph still needs),
minicnn refuses too, naming the tensor and why. Never a silent no-op or a silently wrong gradient.
"""
import numpy as np
import pytest

import minicnn as mc


def _grad(t):
    return np.asarray(t.grad.data if isinstance(t.grad, mc.Tensor) else t.grad)


def test_the_hand_written_update_changes_the_weights():
    rng = np.random.default_rng(0)
    w = mc.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = mc.Tensor(rng.standard_normal((8, 4)))
    before = w.data.copy()
    ((x @ w) ** 2).sum().backward()
    with mc.no_grad():
        for p in [w]:
            p -= 0.1 * p.grad
    np.testing.assert_allclose(w.data, before - 0.1 * _grad(w))
    assert w.requires_grad and w.is_leaf


@pytest.mark.parametrize("update, expected", [
    (lambda t: t.__iadd__(2), [3, 4]), (lambda t: t.__isub__(2), [-1, 0]),
    (lambda t: t.__imul__(2), [2, 4]), (lambda t: t.__itruediv__(2), [0.5, 1]),
    (lambda t: t.add_(mc.Tensor([1.0, 1.0]), alpha=3), [4, 5]),
    (lambda t: t.sub_([1.0, 1.0], alpha=2), [-1, 0]), (lambda t: t.mul_(3), [3, 6]),
    (lambda t: t.div_(mc.Tensor([2.0, 4.0])), [0.5, 0.5]), (lambda t: t.zero_(), [0, 0]),
    (lambda t: t.fill_(7), [7, 7]), (lambda t: t.copy_(np.array([5, 6])), [5, 6]),
    (lambda t: t.clamp_(min=1.5), [1.5, 2]), (lambda t: t.clamp_(max=1.5), [1, 1.5]),
])
def test_each_in_place_method_changes_the_data_and_returns_the_tensor(update, expected):
    t = mc.Tensor([1.0, 2.0])
    data = t.data
    assert update(t) is t
    np.testing.assert_allclose(t.data, expected)
    assert t.data is data and t._version == 1


def test_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = mc.Tensor(np.ones(3), requires_grad=True)
    for change in (lambda: w.__isub__(1.0), lambda: w.add_(1.0), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad .* inside `with "
                                               "mc.no_grad\\(\\):`"):
            change()
    np.testing.assert_array_equal(w.data, [1, 1, 1])


def test_a_tensor_of_the_graph_is_refused_while_recording():
    w = mc.Tensor(np.ones(3), requires_grad=True)
    h = w * 2
    with pytest.raises(RuntimeError, match="in the autograd graph .* out of place"):
        h += 1
    c = mc.Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="in the autograd graph"):
        c += w                              # would make c depend on w, which is not recorded


def test_changing_what_the_graph_saved_is_an_error_at_backward():
    w = mc.Tensor(np.ones(3), requires_grad=True)
    x = mc.Tensor(np.arange(3.0))
    y = (w * x).sum()                       # Mul saved x for dw = g * x
    with mc.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match="Mul.backward needs input 1 .* changed in place"):
        y.backward()


def test_changing_what_the_graph_did_not_save_is_fine():
    w = mc.Tensor(np.ones(3), requires_grad=True)
    b = mc.Tensor(np.zeros(3))
    y = (w + b).sum()                       # Add saves nothing
    with mc.no_grad():
        b += 5
    y.backward()
    np.testing.assert_array_equal(_grad(w), [1, 1, 1])


def test_wrong_dtype_and_shape_are_clear_errors():
    t = mc.tensor([1, 2])
    with pytest.raises(TypeError, match="cannot be stored in place in a int64 tensor"):
        t += 0.5
    f = mc.Tensor(np.zeros(3))
    with pytest.raises(ValueError, match="must keep the shape \\(3,\\)"):
        f += np.ones((2, 3))


def test_out_of_place_semantics_unchanged():
    a = mc.Tensor(np.ones(2), requires_grad=True)
    b = a
    b = b + 1                               # a new tensor; a is untouched
    np.testing.assert_array_equal(a.data, [1, 1])
    assert b is not a and not b.is_leaf


def test_the_same_as_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    start, g = rng.standard_normal(5), rng.standard_normal(5)
    mine, theirs = mc.Tensor(start.copy()), torch.tensor(start.copy())
    for t, grad in ((mine, mc.Tensor(g)), (theirs, torch.tensor(g))):
        t -= 0.5 * grad
        t.add_(grad, alpha=2)
        t.mul_(1.5)
        t.div_(3)
        t.clamp_(min=-0.3, max=0.4)
    np.testing.assert_allclose(mine.data, theirs.numpy(), rtol=1e-12)
