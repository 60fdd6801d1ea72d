"""F.linear / F.flatten and F.softmax / F.log_softmax / F.cross_entropy / F.nll_loss."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
import minicnn.functional as F
from minicnn import backend


def host(t):
    return backend.to_numpy(t.data)


# -- linear / flatten ----------------------------------------------------------------------------
@given(seed=st.integers(0, 2**31), lead=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       n_in=st.integers(1, 5), n_out=st.integers(1, 4), bias=st.booleans())
def test_linear_values_and_gradcheck(device, to_device, seed, lead, n_in, n_out, bias):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(lead + (n_in,)), rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out)
    inputs = [to_device(x, True), to_device(w, True)] + ([to_device(b, True)] if bias else [])
    y = F.linear(*inputs)
    np.testing.assert_allclose(host(y), x @ w.T + (b if bias else 0), rtol=1e-12, atol=1e-12)
    assert mc.gradcheck(F.linear, inputs)


def test_linear_float32_and_constant_weight(device, to_device):
    rng = np.random.default_rng(0)
    x = to_device(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = to_device(rng.standard_normal((2, 3)).astype(np.float32))  # no gradient wanted
    b = to_device(np.zeros(2, np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == b.grad.dtype == np.float32 and w.grad is None
    np.testing.assert_allclose(backend.to_numpy(b.grad), [4, 4])


def test_linear_errors(device, to_device):
    with pytest.raises(ValueError, match=r"linear: expected input \(N, 5\), got \(2, 4\)"):
        F.linear(to_device(np.zeros((2, 4))), to_device(np.zeros((3, 5))))
    with pytest.raises(ValueError, match=r"linear: expected bias of shape \(3,\)"):
        F.linear(to_device(np.zeros((2, 5))), to_device(np.zeros((3, 5))), to_device(np.zeros(4)))
    with pytest.raises(ValueError, match=r"linear: expected weight \(out_features, in_features\), got \(3, 5, 1\)"):
        F.linear(to_device(np.zeros((2, 5))), to_device(np.zeros((3, 5, 1))))


def test_flatten_and_softmax_argument_errors(device, to_device):
    x = to_device(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 1"):
        F.flatten(x, 2, 1)
    with pytest.raises(TypeError, match="softmax: give dim= or axis=, not both"):
        F.softmax(x, dim=1, axis=1)


@pytest.mark.parametrize("start,end,expected", [(1, -1, (2, 60)), (0, -1, (120,)), (2, 3, (2, 3, 20)),
                                                (1, 2, (2, 12, 5))])
def test_flatten_shapes_and_gradient(device, to_device, start, end, expected):
    x = to_device(np.random.default_rng(0).standard_normal((2, 3, 4, 5)), requires_grad=True)
    y = F.flatten(x, start, end)
    assert y.shape == expected
    np.testing.assert_array_equal(host(y).ravel(), host(x).ravel())
    assert mc.gradcheck(lambda t: F.flatten(t, start, end), [x])
    with pytest.raises(ValueError, match="out of range"):
        F.flatten(x, 4)


# -- softmax / log_softmax -------------------------------------------------------------------------
def softmax_ref(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@given(data=st.data(), seed=st.integers(0, 2**31),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
def test_softmax_log_softmax_values_and_gradcheck(device, to_device, data, seed, shape):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 5
    t = to_device(x, requires_grad=True)
    p = softmax_ref(x, axis)
    np.testing.assert_allclose(host(F.softmax(t, axis)), p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(F.log_softmax(t, axis)), np.log(p), rtol=1e-10, atol=1e-12)
    assert mc.gradcheck(lambda z: F.softmax(z, axis), [t])
    assert mc.gradcheck(lambda z: F.log_softmax(z, axis), [t])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(device, to_device, dtype):
    x = np.array([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4 + 2]], dtype=dtype)
    t = to_device(x, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p, logp = host(F.softmax(t)), host(F.log_softmax(t))
        loss = F.cross_entropy(t, to_device(np.array([2, 2])))
    assert p.dtype == logp.dtype == dtype and loss.dtype == dtype
    e = np.exp(-1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(logp[0, :2], [-np.log1p(e), -1 - np.log1p(e)], rtol=1e-6)
    assert logp[0, 2] == pytest.approx(-2e4 - np.log1p(e), rel=1e-6)  # finite, not -inf
    assert np.isfinite(loss.item()) and loss.item() > 1e3
    loss.backward()
    assert np.all(np.isfinite(backend.to_numpy(t.grad)))


# -- cross-entropy / nll ----------------------------------------------------------------------------
@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), c=st.integers(1, 6),
       scale=st.sampled_from([1.0, 30.0]))
def test_cross_entropy_values_and_gradcheck(device, to_device, seed, n, c, scale):
    rng = np.random.default_rng(seed)
    z, t = rng.standard_normal((n, c)) * scale, rng.integers(0, c, n)
    logits = to_device(z, requires_grad=True)
    loss = F.cross_entropy(logits, to_device(t))
    expected = -np.log(softmax_ref(z, 1)[np.arange(n), t]).mean()
    assert loss.shape == () and loss.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    nll = F.nll_loss(F.log_softmax(logits, axis=1), to_device(t))
    assert nll.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert mc.gradcheck(lambda z: F.cross_entropy(z, to_device(t)), [logits])
    assert mc.gradcheck(lambda z: F.nll_loss(z, to_device(t)), [logits])


def test_cross_entropy_fused_gradient(device, to_device):
    z = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([0, 2, 1, 2])
    logits = to_device(z, requires_grad=True)
    F.cross_entropy(logits, to_device(t)).backward()
    expected = (softmax_ref(z, 1) - np.eye(3)[t]) / 4
    np.testing.assert_allclose(backend.to_numpy(logits.grad), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["host numpy", "list", "device array", "int32"])
def test_cross_entropy_target_forms(device, to_device, xp, kind):
    z = to_device(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    t = np.array([3, 0, 1])
    target = {"host numpy": t, "list": t.tolist(), "device array": xp.asarray(t),
              "int32": to_device(t.astype(np.int32))}[kind]
    loss = F.cross_entropy(z, target)
    assert loss.dtype == np.float32 and loss.device == device
    assert loss.item() == pytest.approx(F.cross_entropy(z, to_device(t)).item())


@pytest.mark.parametrize("labels,bad", [([0, 4, 1], "4"), ([0, -1, 1], "-1"), ([7, 0, 0], "7")])
def test_cross_entropy_rejects_labels_out_of_range(device, to_device, labels, bad):
    z = to_device(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=rf"label {bad} at index \d is outside the valid range \[0, 4\)"):
        F.cross_entropy(z, to_device(np.array(labels)))
    with pytest.raises(ValueError, match=rf"nll_loss: target label {bad}"):
        F.nll_loss(z, np.array(labels))


def test_cross_entropy_shape_and_dtype_errors(device, to_device):
    z = to_device(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"expected target of shape \(3,\)"):
        F.cross_entropy(z, to_device(np.zeros(2, dtype=np.int64)))
    with pytest.raises(ValueError, match="integer class indices"):
        F.cross_entropy(z, to_device(np.zeros(3)))
    with pytest.raises(ValueError, match=r"cross_entropy: expected logits \(N, C\), got \(3, 4, 2\)"):
        F.cross_entropy(to_device(np.zeros((3, 4, 2))), to_device(np.zeros(3, dtype=np.int64)))
