"""Tensor hooks, ``retain_grad`` and ``mc.autograd.grad``, against PyTorch's values and order."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import nn


def _graph(lib, tensor, x, w, calls):
    """The same small graph in minicnn or torch, with hooks on a leaf, a non-leaf and the output,
    recording their order; the non-leaf's hook doubles its gradient."""
    xs, ws = tensor(x, requires_grad=True), tensor(w, requires_grad=True)
    y = xs * ws
    y.retain_grad()
    y.register_hook(lambda g: calls.append("y") or g * 2)
    y.register_hook(lambda g: calls.append("y2"))
    xs.register_hook(lambda g: calls.append(("x", g.numpy().copy())))
    ws.register_hook(lambda g: calls.append("w") or g + 1)
    z = (y * y).sum()
    z.register_hook(lambda g: calls.append("z"))
    return xs, ws, y, z


def test_hooks_retain_grad_and_backward_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    results = {}
    for name, tensor in (("mc", mc.tensor), ("torch", torch.tensor)):
        calls = []
        xs, ws, y, z = _graph(name, tensor, x, w, calls)
        z.backward()
        order = [c if isinstance(c, str) else c[0] for c in calls]
        results[name] = (order, calls[order.index("x")][1], xs.grad.numpy(), ws.grad.numpy(), y.grad.numpy())
    assert results["mc"][0] == results["torch"][0] == ["z", "y", "y2", "x", "w"]
    for ours, theirs in zip(results["mc"][1:], results["torch"][1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(results["mc"][3], 4 * x * w * x + 1, rtol=1e-12)   # the hooks' changes


def test_autograd_grad_matches_torch_and_leaves_grad_alone():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    results = {}
    for name, tensor, lib in (("mc", mc.tensor, mc), ("torch", torch.tensor, torch)):
        calls = []
        xs, ws, y, z = _graph(name, tensor, x, w, calls)
        (gx,) = lib.autograd.grad(z, [xs], retain_graph=True)
        (gy,) = lib.autograd.grad(z, y, retain_graph=True)      # what y's hooks leave, as torch
        assert xs.grad is None and ws.grad is None                  # leaves untouched
        (gw,) = lib.autograd.grad([y], ws, grad_outputs=[tensor(np.arange(4.0))])
        results[name] = [c if isinstance(c, str) else c[0] for c in calls], gx.numpy(), gy.numpy(), gw.numpy()
    assert results["mc"][0] == results["torch"][0]                  # ws's hook ran, x's hook did not
    for ours, theirs in zip(results["mc"][1:], results["torch"][1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_removed_hooks_do_not_run():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    calls = []
    handle = y.register_hook(lambda g: calls.append(1) or g * 100)
    leaf = x.register_hook(lambda g: calls.append(2))
    handle.remove()
    leaf.remove()
    handle.remove()                                                 # twice is harmless
    y.sum().backward()
    assert calls == [] and not x._hooks and not y._hooks
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_a_kept_gradient_is_not_changed_by_later_accumulation():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(seen.append)
    (x * 2).sum().backward()
    (x * 2).sum().backward()
    np.testing.assert_array_equal(seen[0].numpy(), [2.0, 2.0])      # not aliased to x.grad
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_hook_and_autograd_grad_errors_are_clear():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mc.tensor([1.0]).register_hook(lambda g: g)
    x.register_hook(lambda g: mc.zeros(3))
    with pytest.raises(RuntimeError, match=r"returned shape \(3,\).*\(2,\)"):
        (x * 2).sum().backward()
    a, b = mc.tensor([1.0], requires_grad=True), mc.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"inputs\[1\] \(shape \(1,\)\) is not part of the graph"):
        mc.autograd.grad((a * 2).sum(), [a, b])
    assert mc.autograd.grad((a * 2).sum(), [a, b], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match=r"inputs\[0\].*does not require grad"):
        mc.autograd.grad((a * 2).sum(), [mc.tensor([1.0])])
    with pytest.raises(RuntimeError, match=r"outputs\[0\].*does not require grad"):
        mc.autograd.grad(mc.tensor([1.0]).sum(), [a])
    with pytest.raises(ValueError, match="grad must be given"):
        mc.autograd.grad(mc.cat([a, b]) * 2, [a])
    with pytest.raises(TypeError, match=r"inputs\[0\] is a ndarray, expected a Tensor"):
        mc.autograd.grad((a * 2).sum(), [np.ones(1)])
    out = (a * b).sum()
    mc.autograd.grad(out, [a])
    with pytest.raises(RuntimeError, match="already freed"):
        mc.autograd.grad(out, [a])


def test_input_gradients_in_eval_frozen_and_under_no_grad(device, to_device):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = to_device(np.random.default_rng(2).standard_normal((1, 1, 4, 4)).astype(np.float32), requires_grad=True)
    with mc.no_grad():
        with mc.enable_grad():
            (g,) = mc.autograd.grad(model(x)[0, 1], [x])
    assert g.shape == x.shape and g.device == x.device and float(abs(g).sum()) > 0
    assert all(p.grad is None for p in model.parameters())


def test_retain_grad_on_a_leaf_is_a_no_op_and_non_leaf_accumulates():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    x.retain_grad()
    y = x * 2
    y.retain_grad()
    assert not x.retains_grad and y.retains_grad
    z = (y * y).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * 2 * y.numpy())


def test_backward_takes_pytorchs_gradient_keyword():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(gradient=mc.tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 30.0])
    with pytest.raises(TypeError, match="give gradient= or grad=, not both"):
        (x * 3).backward(mc.tensor([1.0, 1.0]), gradient=mc.tensor([1.0, 1.0]))
