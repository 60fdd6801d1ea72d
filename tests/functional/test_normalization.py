"""F.local_response_norm and F.batch_norm: formulas, gradients, running buffers, errors, dtypes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


# -- local response normalization ----------------------------------------------------------------
def lrn_loop(a, size, alpha, beta, k):
    """The definition, one channel at a time: window [c - size//2, c + (size-1)//2], zero padded."""
    out = np.empty_like(a)
    C = a.shape[1]
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        s = k + alpha / size * (a[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = a[:, c] / s ** beta
    return out


@given(seed=st.integers(0, 2**31), n=st.integers(1, 3), c=st.integers(1, 9), hw=st.integers(1, 4),
       size=st.integers(1, 11), alpha=st.floats(1e-4, 3.0), beta=st.floats(0.1, 1.5),
       k=st.floats(0.5, 3.0))
def test_lrn_matches_channel_loop(device, to_device, seed, n, c, hw, size, alpha, beta, k):
    a = np.random.default_rng(seed).standard_normal((n, c, hw, hw + 1))
    out = F.local_response_norm(to_device(a), size, alpha=alpha, beta=beta, k=k)
    np.testing.assert_allclose(host(out), lrn_loop(a, size, alpha, beta, k), rtol=1e-10, atol=1e-12)


def test_lrn_alexnet_constants_convert_from_paper(device, to_device):
    """The paper's b = a / (2 + 1e-4 * sum_{5 channels} a^2)^0.75 is alpha = 5 * 1e-4 here."""
    a = np.random.default_rng(0).standard_normal((2, 8, 3, 3)) * 30
    padded = np.pad(a ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    window = sum(padded[:, d:d + 8] for d in range(5))
    paper = a / (2.0 + 1e-4 * window) ** 0.75
    out = F.local_response_norm(to_device(a), 5, alpha=5e-4, beta=0.75, k=2.0)
    np.testing.assert_allclose(host(out), paper, rtol=1e-12)


def test_lrn_even_size_window_is_shifted_back(device, to_device):
    """size 2: channel c sums over {c-1, c} (PyTorch pads size//2 before, (size-1)//2 after)."""
    a = np.array([1.0, 1.0, 2.0, 1.0]).reshape(1, 4, 1, 1)
    out = host(F.local_response_norm(to_device(a), 2, alpha=1.0, beta=1.0, k=1.0))
    window_sums = np.array([1, 1 + 1, 1 + 4, 4 + 1])  # {c-1, c}; {c, c+1} would give 2, 5, 5, 1
    np.testing.assert_allclose(out.ravel(), a.ravel() / (1 + window_sums / 2))


@given(seed=st.integers(0, 2**31), size=st.sampled_from([1, 2, 3, 4, 5, 6]), c=st.integers(1, 6),
       three_d=st.booleans())
def test_lrn_gradcheck(device, to_device, seed, size, c, three_d):
    shape = (2, c, 3) if three_d else (2, c, 2, 2)
    x = to_device(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    assert mc.gradcheck(lambda t: F.local_response_norm(t, size, alpha=1.5, beta=0.75, k=1.0), [x])


def test_lrn_float32_and_errors(device, to_device):
    x = to_device(np.random.default_rng(0).standard_normal((2, 6, 4, 4)).astype(np.float32),
                  requires_grad=True)
    y = F.local_response_norm(x, 5)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"local_response_norm: expected input .*got \(6, 4\)"):
        F.local_response_norm(to_device(np.zeros((6, 4))), 5)
    with pytest.raises(ValueError, match="size"):
        F.local_response_norm(x, 0)


# -- batch normalization ----------------------------------------------------------------------------
def bn_textbook(x, gamma, beta, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * xhat + beta.reshape(shape), mu, var


bn_shapes = st.one_of(st.tuples(st.integers(2, 6), st.integers(1, 5)),
                      st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(2, 3)))


@given(seed=st.integers(0, 2**31), shape=bn_shapes, momentum=st.floats(0.0, 1.0))
def test_bn_training_matches_textbook_and_updates_buffers(device, to_device, xp, seed, shape, momentum):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3 + 1
    C = shape[1]
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    rm, rv = xp.asarray(rm0.copy()), xp.asarray(rv0.copy())
    y = F.batch_norm(to_device(x), rm, rv, to_device(gamma), to_device(beta), training=True,
                     momentum=momentum, eps=1e-5)
    expected, mu, var = bn_textbook(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(host(y), expected, rtol=1e-9, atol=1e-9)
    m = x.size // C
    np.testing.assert_allclose(host(rm), (1 - momentum) * rm0 + momentum * mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(rv), (1 - momentum) * rv0 + momentum * var * m / (m - 1),
                               rtol=1e-12, atol=1e-12)


def test_bn_eval_uses_running_stats_and_leaves_them(device, to_device, xp):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 2, 2))
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = to_device(rm0), to_device(rv0)  # Tensors are accepted as buffers too
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    y = F.batch_norm(to_device(x), rm, rv, to_device(gamma), to_device(beta), training=False)
    s = (1, 3, 1, 1)
    expected = gamma.reshape(s) * (x - rm0.reshape(s)) / np.sqrt(rv0.reshape(s) + 1e-5) + beta.reshape(s)
    np.testing.assert_allclose(host(y), expected, rtol=1e-12)
    np.testing.assert_array_equal(host(rm), rm0)
    np.testing.assert_array_equal(host(rv), rv0)


def test_bn_without_affine_and_without_running_stats(device, to_device):
    x = np.random.default_rng(2).standard_normal((5, 3))
    y = host(F.batch_norm(to_device(x), None, None, training=True))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1 / (1 + 1e-5 / x.var(axis=0)), rtol=1e-9)


@given(seed=st.integers(0, 2**31), shape=bn_shapes, training=st.booleans(),
       which=st.sampled_from(["all", "x", "params"]))
def test_bn_gradcheck(device, to_device, xp, seed, shape, training, which):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = to_device(rng.standard_normal(shape), requires_grad=which in ("all", "x"))
    w = to_device(rng.standard_normal(C), requires_grad=which in ("all", "params"))
    b = to_device(rng.standard_normal(C), requires_grad=which in ("all", "params"))
    rm, rv = xp.asarray(rng.standard_normal(C)), xp.asarray(rng.uniform(0.5, 2, C))
    assert mc.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=training), [x, w, b])


def test_bn_float32_preserved(device, to_device, xp):
    x = to_device(np.random.default_rng(3).standard_normal((4, 3, 2, 2)).astype(np.float32),
                  requires_grad=True)
    w = to_device(np.ones(3, np.float32), requires_grad=True)
    b = to_device(np.zeros(3, np.float32), requires_grad=True)
    rm, rv = xp.zeros(3, dtype=np.float32), xp.ones(3, dtype=np.float32)
    for training in (True, False):
        y = F.batch_norm(x, rm, rv, w, b, training=training)
        assert y.dtype == np.float32
        (y * y).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    assert rm.dtype == rv.dtype == np.float32


def test_bn_errors(device, to_device, xp):
    rm, rv = xp.zeros(3), xp.ones(3)
    with pytest.raises(ValueError, match=r"batch_norm: expected input .*got \(3,\)"):
        F.batch_norm(to_device(np.zeros(3)), rm, rv)
    with pytest.raises(ValueError, match=r"running_mean of shape \(4,\)"):
        F.batch_norm(to_device(np.zeros((2, 4))), rm, rv)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(to_device(np.zeros((1, 3))), rm, rv, training=True)
    with pytest.raises(ValueError, match="running_mean and running_var must both be given or both be None"):
        F.batch_norm(to_device(np.zeros((2, 3))), rm, None)
    if device != "cpu":  # buffers on another device than the input
        with pytest.raises(TypeError, match="different devices"):
            F.batch_norm(to_device(np.zeros((2, 3))), np.zeros(3), np.ones(3))


def test_lrn_matches_the_plain_loop_reference(device, to_device):
    from minicnn.functional.reference import local_response_norm_naive
    a = np.random.default_rng(3).standard_normal((2, 7, 3, 2))
    b, _ = local_response_norm_naive(a, 4, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(host(F.local_response_norm(to_device(a), 4, 1e-2, 0.75, 2.0)), b,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, lrn_loop(a, 4, 1e-2, 0.75, 2.0), rtol=1e-12, atol=1e-12)
