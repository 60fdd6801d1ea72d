"""``.grad`` is a Tensor, as in PyTorch (issue 29): the idioms of a hand-written training loop
work on it, and setting it takes a Tensor or None."""
import numpy as np
import pytest

import minicnn as mc


def _backward(w):
    (w * mc.Tensor([1.0, -2.0, 3.0])).sum().backward()
    return w.grad


def test_grad_is_a_tensor_without_a_gradient_of_its_own():
    w = mc.Tensor(np.zeros(3), requires_grad=True)
    g = _backward(w)
    assert isinstance(g, mc.Tensor) and not g.requires_grad and g.is_leaf
    assert g.shape == w.shape and g.dtype == w.dtype and g.device == w.device
    np.testing.assert_array_equal(g.data, [1, -2, 3])
    assert float(g.norm()) == pytest.approx(np.sqrt(14))
    assert g.zero_() is g and not g.data.any()
    _backward(w)                                         # accumulates into the same tensor
    assert w.grad is g and g.data.tolist() == [1, -2, 3]


def test_setting_grad_takes_a_tensor_or_none():
    w = mc.Tensor(np.zeros(3), requires_grad=True)
    w.grad = mc.ones(3, dtype=mc.float64)
    assert w.grad.data.tolist() == [1, 1, 1]
    w.grad = None
    with pytest.raises(TypeError, match="grad must be a Tensor or None, got ndarray"):
        w.grad = np.ones(3)
    with pytest.raises(ValueError, match="grad of shape \\(2,\\) on cpu for a tensor of shape "
                                         "\\(3,\\)"):
        w.grad = mc.ones(2)


def test_a_hand_written_loop_learns():
    """The from-scratch loop of PyTorch's 'What is torch.nn really?', on a tiny problem."""
    rng = np.random.default_rng(0)
    x = mc.Tensor(rng.standard_normal((64, 5)))
    y = mc.Tensor(x.data @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]))
    w = mc.Tensor(np.zeros(5), requires_grad=True)
    losses = []
    for _ in range(50):
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        with mc.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


def test_abs_and_norm_as_pytorch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((3, 4))
    mine, theirs = mc.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for kwargs in ({}, {"p": 1, "dim": 1}, {"p": float("inf")}, {"p": 3, "dim": 0, "keepdim": True}):
        np.testing.assert_allclose(mine.norm(**kwargs).data, theirs.norm(**kwargs).detach().numpy(),
                                   rtol=1e-12)
    (mine.norm() + abs(mine).sum()).backward()
    (theirs.norm() + theirs.abs().sum()).backward()
    np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-12)
