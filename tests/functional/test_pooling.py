"""F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d against the plain-loop reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.functional import reference as ref


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


def tie_free(shape, seed):
    """Distinct values 0.1 apart in random order: the max of every window is unique."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) - n / 2).reshape(shape) * 0.1


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    square = draw(st.booleans()) and kh == kw and ph == pw
    return dict(
        x_shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                 draw(st.integers(max(1, kh - 2 * ph), kh + 5)), draw(st.integers(max(1, kw - 2 * pw), kw + 5))),
        kernel_size=kh if square else (kh, kw), stride=stride, padding=ph if square else (ph, pw),
        ceil_mode=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 31)))


def _args(cfg):
    return cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["ceil_mode"]


@pytest.mark.parametrize("op, naive, naive_backward", [
    (F.max_pool2d, ref.max_pool2d_naive, ref.max_pool2d_naive_backward),
    (F.avg_pool2d, ref.avg_pool2d_naive, ref.avg_pool2d_naive_backward),
], ids=["max", "avg"])
@given(cfg=pool_configs())
def test_pool_forward_and_backward_match_reference(device, to_device, op, naive, naive_backward, cfg):
    x = tie_free(cfg["x_shape"], cfg["seed"])
    t = to_device(x, requires_grad=True)
    y = op(t, *_args(cfg))
    expected = naive(x, *_args(cfg))
    assert y.shape == expected.shape and y.device == device
    np.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(expected.shape)
    y.backward(to_device(gy))
    np.testing.assert_allclose(host(t.grad), naive_backward(x, *_args(cfg), gy), rtol=1e-12, atol=1e-12)


@settings(max_examples=6)
@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(cfg=pool_configs())
def test_pool_gradcheck(device, to_device, op, cfg):
    x = to_device(tie_free((1,) + cfg["x_shape"][1:], cfg["seed"]), requires_grad=True)
    assert mc.gradcheck(lambda t: op(t, *_args(cfg)), [x])


# -- max pooling specifics -------------------------------------------------------------------------
def test_max_pool_padding_never_wins(device, to_device):
    x = -1.0 - np.random.default_rng(0).random((2, 3, 5, 5))     # all negative: a zero pad would win
    y = host(F.max_pool2d(to_device(x), 3, stride=2, padding=1, ceil_mode=True))
    assert np.all(y < -1.0) and np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, ref.max_pool2d_naive(x, 3, 2, 1, True))
    assert y[0, 0, 0, 0] == x[0, 0, :2, :2].max()                 # the corner window's real pixels


def test_max_pool_overlapping_windows_accumulate_gradient(device, to_device):
    """3x3 windows with stride 2 share a column; a maximum on it receives both windows' gradients."""
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 5.0                                           # in windows (0, 0) and (0, 1)
    t = to_device(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 2)
    assert y.shape == (1, 1, 1, 2)
    y.backward(to_device(np.array([[[[1.0, 10.0]]]])))
    assert host(t.grad)[0, 0, 1, 2] == 11.0 and host(t.grad).sum() == 11.0


def test_max_pool_ties_go_to_the_first_maximum(device, to_device):
    t = to_device(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(host(t.grad)[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_propagates_nan(device, to_device):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    y = host(F.max_pool2d(to_device(x), 2))
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])


# -- average pooling's divisor --------------------------------------------------------------------
def test_avg_pool_divisor_counts_padding_and_clips_ceil_windows(device, to_device):
    """4x4 ones, 3x3 windows, stride 2, padding 1, ceil mode -> a 3x3 output. The divisor counts the
    padding (PyTorch's count_include_pad) but not the part of the last window past the padded border:
    corner (0, 0): 4 real pixels / 9;  (0, 2): rows -1..1 (3) x cols 3..4 (2 inside) = 2 real / 6;
    (2, 2): rows 3..4 x cols 3..4 = 1 real / 4."""
    y = host(F.avg_pool2d(to_device(np.ones((1, 1, 4, 4))), 3, 2, padding=1, ceil_mode=True))[0, 0]
    expected = np.array([[4 / 9, 6 / 9, 2 / 6],
                         [6 / 9, 9 / 9, 3 / 6],
                         [2 / 6, 3 / 6, 1 / 4]])
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_avg_pool_without_padding_is_the_window_mean(device, to_device):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 4))
    y = host(F.avg_pool2d(to_device(x), 2))
    np.testing.assert_allclose(y, x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-12)


# -- adaptive average pooling -----------------------------------------------------------------------
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       oh=st.one_of(st.none(), st.integers(1, 10)), ow=st.one_of(st.none(), st.integers(1, 10)),
       as_int=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_adaptive_avg_pool_matches_reference(device, to_device, n, c, h, w, oh, ow, as_int, seed):
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    size = (oh if oh is not None else 1) if as_int else (oh, ow)
    target = (size, size) if as_int else (h if oh is None else oh, w if ow is None else ow)
    t = to_device(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(t, size)
    assert y.shape == (n, c) + target
    np.testing.assert_allclose(host(y), ref.adaptive_avg_pool2d_naive(x, target), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(to_device(gy))
    np.testing.assert_allclose(host(t.grad), ref.adaptive_avg_pool2d_naive_backward(x, target, gy),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=6)
@given(h=st.integers(1, 6), w=st.integers(1, 6), oh=st.integers(1, 5), ow=st.integers(1, 5))
def test_adaptive_avg_pool_gradcheck(device, to_device, h, w, oh, ow):
    x = to_device(np.random.default_rng(0).standard_normal((1, 2, h, w)), requires_grad=True)
    assert mc.gradcheck(lambda t: F.adaptive_avg_pool2d(t, (oh, ow)), [x])


def test_global_average_pool_is_the_spatial_mean(device, to_device):
    x = np.random.default_rng(0).standard_normal((2, 5, 7, 3))
    np.testing.assert_allclose(host(F.adaptive_avg_pool2d(to_device(x), 1)), x.mean(axis=(2, 3), keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(host(F.adaptive_avg_pool2d(to_device(x), (1, 1))),
                               x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


# -- dtypes, shapes, errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [lambda t: F.max_pool2d(t, 3, 2, 1, True), lambda t: F.avg_pool2d(t, 3, 2, 1, True),
                                lambda t: F.adaptive_avg_pool2d(t, (3, 2)), lambda t: F.adaptive_avg_pool2d(t, 1)],
                         ids=["max", "avg", "adaptive", "global"])
def test_pools_keep_dtype(device, to_device, op, dtype):
    t = to_device(np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(dtype), requires_grad=True)
    y = op(t)
    assert y.dtype == dtype
    y.sum().backward()
    assert t.grad.dtype == dtype and t.grad.shape == t.shape


def test_pool_shapes_of_the_classic_networks(device, to_device):
    def shape(op, hw, *args):
        return op(to_device(np.zeros((1, 1, hw, hw), dtype=np.float32)), *args).shape[2:]
    assert shape(F.max_pool2d, 55, 3, 2) == (27, 27)            # AlexNet pool1
    assert shape(F.max_pool2d, 13, 3, 2) == (6, 6)              # AlexNet pool5
    assert shape(F.max_pool2d, 112, 3, 2, 0, True) == (56, 56)  # GoogLeNet, ceil mode
    assert shape(F.max_pool2d, 112, 3, 2, 1) == (56, 56)        # ResNet stem
    assert shape(F.avg_pool2d, 14, 5, 3) == (4, 4)              # GoogLeNet auxiliary head
    assert shape(F.max_pool2d, 224, 2) == (112, 112)            # VGG


@pytest.mark.parametrize("call, fragments", [
    (lambda x: F.max_pool2d(x[0], 2), ["max_pool2d", "4-D", "(N, C, H, W)", "(1, 4, 4)"]),
    (lambda x: F.avg_pool2d(x, 3, padding=2), ["avg_pool2d", "padding (2, 2)", "half", "(3, 3)"]),
    (lambda x: F.max_pool2d(x, 7, padding=1), ["max_pool2d", "kernel (7, 7)", "(N, C, 5, 5)", "(1, 1, 4, 4)"]),
    (lambda x: F.avg_pool2d(x, 2, stride=0), ["avg_pool2d", "stride"]),
    (lambda x: F.adaptive_avg_pool2d(x[0], 2), ["adaptive_avg_pool2d", "4-D", "(1, 4, 4)"]),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ["adaptive_avg_pool2d", "output_size"]),
])
def test_pool_errors_name_the_layer_and_shapes(call, fragments):
    with pytest.raises(ValueError) as info:
        call(mc.Tensor(np.zeros((1, 1, 4, 4))))
    for fragment in fragments:
        assert fragment in str(info.value)
