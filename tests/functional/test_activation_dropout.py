"""F.relu / F.tanh / F.sigmoid and F.dropout: values, gradients, stability, masks and seeding."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
import minicnn.functional as F
from minicnn import backend

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
ACTIVATIONS = {"relu": (F.relu, lambda x: np.maximum(x, 0)),
               "tanh": (F.tanh, np.tanh),
               "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)))}


def host(t):
    return backend.to_numpy(t.data)


@given(seed=st.integers(0, 2**31), shape=shapes, name=st.sampled_from(sorted(ACTIVATIONS)))
def test_activation_values_and_gradcheck(device, to_device, seed, shape, name):
    fn, ref = ACTIVATIONS[name]
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x[np.abs(x) < 1e-4] = 0.1  # finite differences across ReLU's kink are meaningless
    t = to_device(x, requires_grad=True)
    np.testing.assert_allclose(host(fn(t)), ref(x), rtol=1e-12, atol=1e-15)
    assert mc.gradcheck(fn, [t])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_float32_preserved(device, to_device, name):
    x = to_device(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    y = ACTIVATIONS[name][0](x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_relu_gradient_is_zero_at_zero_and_below(device, to_device):
    x = to_device(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), [0.0, 0.0, 1.0])


def test_sigmoid_is_stable_in_the_tails(device, to_device):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow warnings either
        for dtype in (np.float32, np.float64):
            x = to_device(np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4], dtype=dtype),
                          requires_grad=True)
            y = F.sigmoid(x)
            out = host(y)
            assert np.all(np.isfinite(out)) and out.dtype == dtype
            np.testing.assert_allclose(out[[0, 3, 6]], [0.0, 0.5, 1.0])
            np.testing.assert_allclose(out[2], np.exp(-30.0) / (1 + np.exp(-30.0)), rtol=1e-6)
            y.sum().backward()
            assert np.all(np.isfinite(backend.to_numpy(x.grad)))


def test_tanh_saturates_without_nan(device, to_device):
    out = host(F.tanh(to_device(np.array([-1e4, 1e4]))))
    np.testing.assert_array_equal(out, [-1.0, 1.0])


# -- dropout -----------------------------------------------------------------------------------
@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_dropout_mask_scaling_and_gradient(device, to_device, p, seed):
    mc.manual_seed(seed)
    x = to_device(np.random.default_rng(seed).uniform(1, 2, (8, 50)), requires_grad=True)
    y = F.dropout(x, p)
    out, xin = host(y), host(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], xin[kept] / (1 - p), rtol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(out.shape)
    y.backward(backend.to_device(g, device))
    np.testing.assert_allclose(backend.to_numpy(x.grad), np.where(kept, g / (1 - p), 0), rtol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(device, to_device, p):
    mc.manual_seed(0)
    n = 200_000
    out = host(F.dropout(to_device(np.ones(n, dtype=np.float32)), p))
    keep = (out != 0).mean()
    assert abs(keep - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # E[y] = x
    assert out.dtype == np.float32


def test_dropout_seeding_repeats_and_differs(device, to_device):
    x = to_device(np.ones((16, 16)))
    mc.manual_seed(123)
    a = host(F.dropout(x, 0.5))
    b = host(F.dropout(x, 0.5))
    mc.manual_seed(123)
    c = host(F.dropout(x, 0.5))
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_dropout_identity_and_all_dropped(device, to_device):
    x = to_device(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(host(y), np.zeros((2, 3)))
    y.sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), np.zeros((2, 3)))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_p(device, to_device, p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(to_device(np.ones(3)), p)


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_dropout_gradcheck_with_fixed_seed(device, to_device, p):
    def fn(t):
        mc.manual_seed(0)
        return F.dropout(t, p)
    x = to_device(np.random.default_rng(0).standard_normal((3, 4, 2)), requires_grad=True)
    assert mc.gradcheck(fn, [x])
