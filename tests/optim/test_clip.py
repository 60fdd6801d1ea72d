"""Gradient clipping by global norm and by value."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, optim


def params(device, grads):
    out = []
    for g in grads:
        p = mc.Tensor(backend.to_device(np.zeros(np.shape(g)), device), requires_grad=True)
        p.grad = mc.Tensor(backend.to_device(np.array(g, dtype=np.float64), device))
        out.append(p)
    return out


def test_clip_grad_norm_scales_all_gradients_together(device):
    ps = params(device, [[3.0, 0.0], [4.0]])  # total norm 5
    total = optim.clip_grad_norm_(ps, max_norm=1.0)
    assert total == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(backend.to_numpy(ps[0].grad), [3 * scale, 0.0])
    np.testing.assert_allclose(backend.to_numpy(ps[1].grad), [4 * scale])


def test_clip_grad_norm_leaves_small_gradients(device):
    ps = params(device, [[0.3, 0.4]])
    assert optim.clip_grad_norm_(ps, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(backend.to_numpy(ps[0].grad), [0.3, 0.4])


def test_clip_grad_norm_inf_and_skips_missing(device):
    ps = params(device, [[1.0, -6.0], [2.0]])
    extra = mc.Tensor(np.zeros(1), requires_grad=True)  # no grad: ignored
    total = optim.clip_grad_norm_(ps + [extra] if device == "cpu" else ps, 3.0, norm_type=math.inf)
    assert total == 6.0
    np.testing.assert_allclose(backend.to_numpy(ps[0].grad), np.array([1.0, -6.0]) * 3 / (6 + 1e-6))


def test_clip_grad_norm_nonfinite(device):
    ps = params(device, [[np.nan, 1.0]])
    assert math.isnan(optim.clip_grad_norm_(ps, 1.0))
    with pytest.raises(RuntimeError, match="non|nan"):
        optim.clip_grad_norm_(params(device, [[np.inf]]), 1.0, error_if_nonfinite=True)


def test_clip_grad_value(device):
    ps = params(device, [[-3.0, 0.5, 2.0]])
    optim.clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(backend.to_numpy(ps[0].grad), [-1.0, 0.5, 1.0])
    single = params(device, [[5.0]])[0]
    optim.clip_grad_value_(single, 2.0)
    assert backend.to_numpy(single.grad)[0] == 2.0


def test_clip_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    gs = [rng.normal(size=(3, 4)) * 5, rng.normal(size=7)]
    ps = params("cpu", gs)
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in gs]
    for t, g in zip(tps, gs):
        t.grad = torch.tensor(g)
    assert optim.clip_grad_norm_(ps, 2.0) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(tps, 2.0)))
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(backend.to_numpy(p.grad), t.grad.numpy(), rtol=1e-12)
