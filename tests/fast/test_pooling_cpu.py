"""The fast pooling paths (two separable passes, argmax offsets + scatter-add, scratch buffers):
the semantics the plain-loop reference and PyTorch define, on inputs full of ties."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.functional import reference as ref

CONFIGS = [  # kernel, stride, padding, ceil_mode
    (2, None, 0, False),            # LeNet / VGG: non-overlapping
    (3, 2, 0, False),               # AlexNet: overlapping
    (3, 1, 1, False),               # stride 1: every pixel in up to 9 windows
    (3, 2, 1, False),               # ResNet stem
    (3, 2, 0, True),                # GoogLeNet: ceil mode
    ((2, 3), (1, 2), (1, 1), True),  # rectangular everything
    ((3, 1), (2, 1), (1, 0), False),
    (1, 1, 0, False),
]


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


def tied(shape, seed, dtype=np.float64):
    """ReLU-like data: about half zeros, the rest small integers: most windows hold ties."""
    x = np.random.default_rng(seed).integers(-3, 3, shape)
    return np.maximum(x, 0).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_max_pool_with_ties_matches_reference(device, to_device, cfg, dtype):
    """Ties go to the first maximum in row-major window order: the separable passes must agree."""
    x = tied((2, 3, 9, 8), seed=hash(str(cfg)) % 1000, dtype=dtype)
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, *cfg)
    np.testing.assert_array_equal(host(y), ref.max_pool2d_naive(x, *cfg))
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    y.backward(to_device(gy))
    expected = ref.max_pool2d_naive_backward(x, *cfg, gy.astype(np.float64))
    np.testing.assert_allclose(host(t.grad), expected, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    assert t.grad.dtype == dtype


@given(k=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       ceil_mode=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_max_pool_with_ties_property(device, to_device, k, stride, pad, extra, ceil_mode, seed):
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    h, w = (max(1, k[i] - 2 * pad[i]) + extra[i] for i in range(2))
    x = tied((2, 2, h, w), seed)
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, k, stride, pad, ceil_mode)
    np.testing.assert_array_equal(host(y), ref.max_pool2d_naive(x, k, stride, pad, ceil_mode))
    gy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(to_device(gy))
    np.testing.assert_allclose(host(t.grad), ref.max_pool2d_naive_backward(x, k, stride, pad, ceil_mode, gy),
                               rtol=1e-12, atol=1e-12)


def test_max_pool_ties_match_torch_on_relu_like_data(device, to_device):
    torch = pytest.importorskip("torch")
    x = tied((4, 5, 13, 11), seed=3)
    for cfg in CONFIGS:
        kernel, stride, padding, ceil_mode = cfg
        t = to_device(x, requires_grad=True)
        y = F.max_pool2d(t, *cfg)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode)
        np.testing.assert_array_equal(host(y), ty.detach().numpy())
        gy = np.random.default_rng(2).standard_normal(y.shape)
        y.backward(to_device(gy))
        ty.backward(torch.tensor(gy))
        np.testing.assert_allclose(host(t.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=str(cfg))


def test_max_pool_gradient_of_overlapping_windows_is_conserved(device, to_device):
    """Stride 1, 3x3, a constant input: every window's maximum is its top-left real pixel, and all
    the upstream gradient lands somewhere (sum preserved), summed where windows share a pixel."""
    x = np.ones((1, 1, 5, 5))
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 1, 1)
    y.backward(to_device(np.ones(y.shape)))
    grad = host(t.grad)[0, 0]
    assert grad.sum() == y.shape[2] * y.shape[3]
    # window (i, j) covers rows i-1..i+1: its first real pixel is (max(i-1, 0), max(j-1, 0))
    expected = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            expected[max(i - 1, 0), max(j - 1, 0)] += 1
    np.testing.assert_array_equal(grad, expected)


def test_max_pool_nan_propagates_and_gradient_stays_in_the_window(device, to_device):
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 7))
    x[0, 0, 2, 3] = np.nan
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 2)
    out = host(y)
    assert np.isnan(out[0, 0, 0, 1]) and np.isnan(out[0, 0, 1, 1])  # the two windows holding (2, 3)
    assert np.isnan(out[0, 0]).sum() == 2 and not np.isnan(out[0, 1]).any()
    y.backward(to_device(np.ones(y.shape)))
    grad = host(t.grad)
    assert np.isfinite(grad).all() and grad.sum() == y.shape[1] * 9    # every window's gradient landed
    np.testing.assert_array_equal(grad[0, 1], ref.max_pool2d_naive_backward(x[:, 1:], 3, 2, 0, False,
                                                                            np.ones((1, 1, 3, 3)))[0, 0])


def test_max_pool_without_grad_matches_with_grad(device, to_device):
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 10)).astype(np.float32)
    with_grad = host(F.max_pool2d(to_device(x, requires_grad=True), 3, 2, 1, True))
    with mc.no_grad():
        without = host(F.max_pool2d(to_device(x, requires_grad=True), 3, 2, 1, True))
    np.testing.assert_array_equal(with_grad, without)
    np.testing.assert_array_equal(without, ref.max_pool2d_naive(x, 3, 2, 1, True))


def test_max_pool_wide_input_uses_wider_offsets(device, to_device):
    """Offsets u*Wp + v past 127 need int16: a 3x3 window on a 300-wide map reaches 2*300 + 2."""
    x = tied((1, 2, 6, 300), seed=5)
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 2)
    np.testing.assert_array_equal(host(y), ref.max_pool2d_naive(x, 3, 2))
    gy = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(to_device(gy))
    np.testing.assert_allclose(host(t.grad), ref.max_pool2d_naive_backward(x, 3, 2, 0, False, gy), rtol=1e-12)


def test_max_pool_integer_input(device, to_device):
    x = np.random.default_rng(0).integers(-100, 100, (2, 3, 7, 6)).astype(np.int32)
    y = F.max_pool2d(to_device(x), 3, 2, 1, True)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(host(y), ref.max_pool2d_naive(x, 3, 2, 1, True))


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pools_interleaved_calls_keep_their_own_state(device, to_device, op):
    """Scratch buffers are reused from call to call: two pools of different shapes, run forward
    one after the other and then backward in either order, must each keep their own results."""
    pool = F.max_pool2d if op == "max" else F.avg_pool2d
    naive = ref.max_pool2d_naive if op == "max" else ref.avg_pool2d_naive
    naive_backward = ref.max_pool2d_naive_backward if op == "max" else ref.avg_pool2d_naive_backward
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((3, 2, 12, 7))
    ta, tb = to_device(a, requires_grad=True), to_device(b, requires_grad=True)
    ya, yb = pool(ta, 3, 2, 1), pool(tb, 2)
    ga, gb = rng.standard_normal(ya.shape), rng.standard_normal(yb.shape)
    yb.backward(to_device(gb))
    ya.backward(to_device(ga))
    np.testing.assert_allclose(host(ya), naive(a, 3, 2, 1), rtol=1e-12)
    np.testing.assert_allclose(host(yb), naive(b, 2), rtol=1e-12)
    np.testing.assert_allclose(host(ta.grad), naive_backward(a, 3, 2, 1, False, ga), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(tb.grad), naive_backward(b, 2, None, 0, False, gb), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_avg_pool_separable_passes_match_reference(device, to_device, cfg):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    t = to_device(x, requires_grad=True)
    y = F.avg_pool2d(t, *cfg)
    np.testing.assert_allclose(host(y), ref.avg_pool2d_naive(x, *cfg), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(to_device(gy))
    np.testing.assert_allclose(host(t.grad), ref.avg_pool2d_naive_backward(x, *cfg, gy), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("cfg", [(2, None, 0, False), (3, 2, 1, True), (3, 1, 1, False),
                                 ((2, 3), (2, 1), (1, 0), False)],
                         ids=str)
def test_pooling_in_batch_pieces_on_threads_gives_the_same_bits(on_one_and_three_threads, kind, cfg):
    """Large inputs are pooled one piece of the batch per thread: every sample is pooled on its own,
    so the pieces change nothing (forward and backward, padding and ceil mode included)."""
    from minicnn.fast import threads
    rng = np.random.default_rng(0)
    x_np = np.maximum(rng.standard_normal((7, 3, 9, 8)), 0)  # ties for max
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d

    def run():
        x = mc.Tensor(x_np, requires_grad=True)
        y = pool(x, *cfg)
        y.backward(np.cos(np.arange(y.data.size)).reshape(y.shape))
        return y.data, x.grad, len(threads.batch_pieces(x_np, np))

    (y1, g1, pieces1), (y3, g3, pieces3) = on_one_and_three_threads(run)
    assert (pieces1, pieces3) == (1, 3)
    np.testing.assert_array_equal(y1, y3)
    np.testing.assert_array_equal(g1, g3)
