"""F.conv2d, im2col/col2im and the output-size formula, against the plain-loop reference."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.functional import geometry, validation
from minicnn.functional.reference import conv2d_naive, conv2d_naive_backward


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


# -- the output-size formula ---------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, expected", [
    ((227, 11, 4, 0), {}, 55),                  # AlexNet conv1
    ((55, 3, 2, 0), {}, 27),                    # AlexNet pool1
    ((27, 5, 1, 2), {}, 27),                    # "same" 5x5
    ((224, 7, 2, 3), {}, 112),                  # ResNet stem
    ((112, 3, 2, 0), {}, 55),                   # floor mode drops the partial window ...
    ((112, 3, 2, 0), {"ceil_mode": True}, 56),  # ... ceil mode keeps it (GoogLeNet)
    ((14, 3, 2, 0), {"ceil_mode": True}, 7),
    ((5, 2, 2, 1), {"ceil_mode": True}, 3),     # a 4th window would start in the right padding
    ((6, 3, 3, 1), {"ceil_mode": True}, 3),
    ((10, 3, 1, 0), {"dilation": 2}, 6),        # a dilated 3-tap kernel spans 5
    ((4, 4, 1, 0), {}, 1),
])
def test_conv_output_size_known_values(args, kwargs, expected):
    assert F.conv_output_size(*args, **kwargs) == expected


@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 4), padding=st.integers(0, 3),
       ceil_mode=st.booleans())
def test_conv_output_size_counts_windows(size, kernel, stride, padding, ceil_mode):
    """The formula counts window starts: floor mode = windows inside the padded input; ceil mode
    adds the partial window at the end if it starts inside the input or the left padding (pooling
    only, where padding is at most half the kernel)."""
    assume(not ceil_mode or 2 * padding <= kernel)
    if size + 2 * padding < kernel:
        with pytest.raises(ValueError):
            F.conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode)
        return
    padded = size + 2 * padding
    expected = sum(1 for start in range(0, padded, stride) if start + kernel <= padded)
    if ceil_mode:
        next_start = expected * stride  # a partial window hangs over the end; kept if it starts
        if next_start < padded - kernel + stride and next_start < size + padding:
            expected += 1               # inside the input or the left padding (PyTorch)
    assert F.conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode) == expected


# -- conv2d against the reference ------------------------------------------------------------------
@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh + 4))
    w = draw(st.integers(max(1, kw - 2 * pw), kw + 4))
    n = draw(st.integers(1, 2))
    stride = draw(st.sampled_from([(sh, sw), sh]))
    padding = draw(st.sampled_from([(ph, pw), ph])) if ph * 2 + h >= kh and ph * 2 + w >= kw else (ph, pw)
    bias = draw(st.booleans())
    return dict(x_shape=(n, cg * groups, h, w), w_shape=(og * groups, cg, kh, kw), stride=stride,
                padding=padding, groups=groups, bias=bias, seed=draw(st.integers(0, 2 ** 31)))


def _make(cfg, to_device, requires_grad=False):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["x_shape"])
    w = rng.standard_normal(cfg["w_shape"])
    b = rng.standard_normal(cfg["w_shape"][0]) if cfg["bias"] else None
    tensors = [to_device(a, requires_grad=requires_grad) if a is not None else None for a in (x, w, b)]
    return (x, w, b), tensors


def _fits(cfg):
    (_, _, h, w), (_, _, kh, kw) = cfg["x_shape"], cfg["w_shape"]
    ph, pw = geometry.pair(cfg["padding"])
    return h + 2 * ph >= kh and w + 2 * pw >= kw


@given(cfg=conv_configs())
def test_conv2d_forward_and_backward_match_reference(device, to_device, cfg):
    if not _fits(cfg):
        return
    (x, w, b), (tx, tw, tb) = _make(cfg, to_device, requires_grad=True)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], groups=cfg["groups"])
    y = F.conv2d(tx, tw, tb, **kw)
    expected = conv2d_naive(x, w, b, **kw)
    assert y.shape == expected.shape and y.device == device
    np.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)

    gy = np.random.default_rng(1).standard_normal(expected.shape)
    y.backward(to_device(gy))
    dx, dw, db = conv2d_naive_backward(x, w, b, cfg["stride"], cfg["padding"], cfg["groups"], gy)
    np.testing.assert_allclose(host(tx.grad), dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(tw.grad), dw, rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(host(tb.grad), db, rtol=1e-10, atol=1e-12)


@settings(max_examples=8)
@given(cfg=conv_configs())
def test_conv2d_gradcheck(device, to_device, cfg):
    if not _fits(cfg):
        return
    _, inputs = _make(dict(cfg, x_shape=(1,) + cfg["x_shape"][1:]), to_device, requires_grad=True)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], groups=cfg["groups"])
    inputs = [t for t in inputs if t is not None]
    assert mc.gradcheck(lambda *t: F.conv2d(*t, **kw), inputs)


# -- im2col / col2im ------------------------------------------------------------------------------
def test_im2col_layout_is_patches_as_columns(device, to_device):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    cols = host(F.im2col(to_device(x).data, 2, 3, stride=(2, 1), padding=1))
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = F.conv_output_size(4, 2, 2, 1), F.conv_output_size(5, 3, 1, 1)
    assert cols.shape == (3 * 2 * 3, 2 * ho * wo)
    for c in range(3):
        for u in range(2):
            for v in range(3):
                for n in range(2):
                    for i in range(ho):
                        for j in range(wo):
                            assert cols[(c * 2 + u) * 3 + v, (n * ho + i) * wo + j] == xp_[n, c, 2 * i + u, j + v]


@given(n=st.integers(1, 2), c=st.integers(1, 3), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       extra_h=st.integers(0, 4), extra_w=st.integers(0, 4), seed=st.integers(0, 2 ** 31))
def test_col2im_is_the_adjoint_of_im2col(xp, n, c, kh, kw, sh, sw, ph, pw, extra_h, extra_w, seed):
    """<im2col(x), cols> == <x, col2im(cols)> for all x, cols: col2im is im2col's transpose."""
    h, w = max(1, kh - 2 * ph) + extra_h, max(1, kw - 2 * pw) + extra_w
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((n, c, h, w)))
    cols_shape = F.im2col(x, kh, kw, (sh, sw), (ph, pw)).shape
    cols = xp.asarray(rng.standard_normal(cols_shape))
    lhs = float((F.im2col(x, kh, kw, (sh, sw), (ph, pw)) * cols).sum())
    back = F.col2im(cols, (n, c, h, w), kh, kw, (sh, sw), (ph, pw))
    assert back.shape == (n, c, h, w)
    rhs = float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


# -- dtypes, bias, needs_input_grad, layouts --------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_keeps_dtype(device, to_device, dtype):
    rng = np.random.default_rng(0)
    x = to_device(rng.standard_normal((2, 4, 6, 6)).astype(dtype), requires_grad=True)
    w = to_device(rng.standard_normal((6, 2, 3, 3)).astype(dtype), requires_grad=True)
    b = to_device(rng.standard_normal(6).astype(dtype), requires_grad=True)
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype
    expected = conv2d_naive(host(x).astype(np.float64), host(w).astype(np.float64), host(b).astype(np.float64),
                            2, 1, 2)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(host(y), expected, rtol=tol, atol=tol)


def test_conv2d_only_computes_the_gradients_asked_for(device, to_device):
    rng = np.random.default_rng(0)
    x_np, w_np = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((2, 4, 5, 5))
    _, dw_ref, _ = conv2d_naive_backward(x_np, w_np, None, 1, 1, 1, gy)
    dx_ref, _, _ = conv2d_naive_backward(x_np, w_np, None, 1, 1, 1, gy)

    x, w = to_device(x_np), to_device(w_np, requires_grad=True)      # frozen input (first layer)
    F.conv2d(x, w, padding=1).backward(to_device(gy))
    assert x.grad is None
    np.testing.assert_allclose(host(w.grad), dw_ref, rtol=1e-10, atol=1e-12)

    x, w = to_device(x_np, requires_grad=True), to_device(w_np)      # frozen weights (fine-tuning)
    F.conv2d(x, w, padding=1).backward(to_device(gy))
    assert w.grad is None
    np.testing.assert_allclose(host(x.grad), dx_ref, rtol=1e-10, atol=1e-12)

    with mc.no_grad():
        y = F.conv2d(to_device(x_np, requires_grad=True), to_device(w_np, requires_grad=True), padding=1)
    assert not y.requires_grad


def test_conv2d_accepts_non_contiguous_input(device, to_device):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 5, 6, 3))
    w_np = rng.standard_normal((4, 3, 2, 2))
    x = to_device(x_np, requires_grad=True)
    y = F.conv2d(x.transpose(0, 3, 1, 2), to_device(w_np), stride=(1, 2), padding=(0, 1))
    expected = conv2d_naive(x_np.transpose(0, 3, 1, 2), w_np, None, (1, 2), (0, 1), 1)
    np.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)


# -- AlexNet's shapes ----------------------------------------------------------------------------
def test_alexnet_conv1_and_pool1_shapes(device, to_device):
    x = to_device(np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32))
    w = to_device(np.random.default_rng(1).standard_normal((2, 3, 11, 11)).astype(np.float32))
    y = F.conv2d(x, w, stride=4)
    assert y.shape == (1, 2, 55, 55)
    assert F.max_pool2d(y, 3, 2).shape == (1, 2, 27, 27)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, kwargs, fragments", [
    ((3, 8, 8), (4, 3, 3, 3), {}, ["conv2d", "4-D", "(N, C, H, W)", "(3, 8, 8)"]),
    ((2, 4, 8, 8), (6, 3, 3, 3), {}, ["conv2d", "3 channels", "(N, 3, H, W)", "(2, 4, 8, 8)"]),
    ((2, 3, 8, 8), (6, 2, 3, 3), {"groups": 2}, ["conv2d", "4 channels", "(N, 4, H, W)", "groups=2",
                                                  "(2, 3, 8, 8)"]),
    ((1, 3, 2, 2), (4, 3, 5, 5), {"padding": 1}, ["conv2d", "kernel (5, 5)", "(N, 3, 3, 3)", "(1, 3, 2, 2)"]),
    ((1, 6, 8, 8), (5, 2, 3, 3), {"groups": 3}, ["conv2d", "groups=3", "5 output channels"]),
    ((1, 3, 8, 8), (4, 3, 3), {}, ["conv2d", "4-D weight", "(4, 3, 3)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"stride": (1, 0)}, ["conv2d", "stride must be positive", "(1, 0)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}, ["conv2d", "padding must be non-negative", "(-1, -1)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"stride": (1, 2, 3)}, ["conv2d: stride", "(h, w) pair", "(1, 2, 3)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"padding": 1.5}, ["conv2d: padding", "pair of ints", "1.5"]),
])
def test_conv2d_errors_name_the_layer_and_shapes(x_shape, w_shape, kwargs, fragments):
    x, w = mc.Tensor(np.zeros(x_shape)), mc.Tensor(np.zeros(w_shape))
    with pytest.raises(ValueError) as info:
        F.conv2d(x, w, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_conv2d_bias_shape_error():
    with pytest.raises(ValueError, match=r"conv2d: expected a bias of shape \(4,\), got shape \(3,\)"):
        F.conv2d(mc.Tensor(np.zeros((1, 3, 5, 5))), mc.Tensor(np.zeros((4, 3, 3, 3))), mc.Tensor(np.zeros(3)))


def test_validate_conv2d_uses_the_given_layer_name():
    with pytest.raises(ValueError, match="^Conv2d: expected a 4-D input"):
        validation.validate_conv2d("Conv2d", (3, 8, 8), (4, 3, 3, 3), 1, 0, 1)
