"""nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d: parameters, init, forward, errors."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, nn
from minicnn.functional.reference import conv2d_naive


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


# -- Conv2d ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, weight_shape", [
    ((3, 96, 11), {"stride": 4}, (96, 3, 11, 11)),
    ((48, 256, 5), {"padding": 2, "groups": 2}, (256, 24, 5, 5)),
    ((4, 6, (1, 3)), {"bias": False}, (6, 4, 1, 3)),
    ((8, 8, 3), {"groups": 8}, (8, 1, 3, 3)),
])
def test_conv2d_parameters_match_pytorch_names_and_shapes(args, kwargs, weight_shape):
    m = nn.Conv2d(*args, **kwargs)
    params = dict(m.named_parameters())
    has_bias = kwargs.get("bias", True)
    assert list(params) == (["weight", "bias"] if has_bias else ["weight"])
    assert m.weight.shape == weight_shape and m.weight.dtype == np.float32 and m.weight.requires_grad
    if has_bias:
        assert m.bias.shape == (weight_shape[0],)
    else:
        assert m.bias is None
    assert sorted(m.state_dict()) == sorted(params)


def test_conv2d_default_init_is_pytorch_kaiming_uniform_a_sqrt5():
    mc.manual_seed(0)
    m = nn.Conv2d(32, 64, 3, groups=2)
    bound = 1 / math.sqrt(16 * 3 * 3)                       # fan_in = in_channels / groups * kh * kw
    w, b = host(m.weight), host(m.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.98 * bound                    # it fills the interval ...
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # ... uniformly
    mc.manual_seed(0)
    np.testing.assert_array_equal(host(nn.Conv2d(32, 64, 3, groups=2).weight), w)   # seeded


def test_conv2d_forward_equals_the_functional_and_the_reference(device, to_device):
    mc.manual_seed(1)
    m = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2).to(device)
    x_np = np.random.default_rng(0).standard_normal((2, 4, 7, 5)).astype(np.float32)
    y = m(to_device(x_np))
    assert y.shape == (2, 6, 4, 4) and y.device == device and y.dtype == np.float32
    expected = conv2d_naive(x_np.astype(np.float64), host(m.weight).astype(np.float64),
                            host(m.bias).astype(np.float64), (2, 1), (1, 0), 2)
    np.testing.assert_allclose(host(y), expected, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad.shape == m.bias.shape


def test_conv2d_module_gradcheck(device):
    mc.manual_seed(2)
    m = nn.Conv2d(2, 3, 3, padding=1).to(device).double()
    x = mc.Tensor(backend.to_device(np.random.default_rng(0).standard_normal((1, 2, 4, 4)), device),
                  requires_grad=True)
    assert mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, m.weight, m.bias])


@pytest.mark.parametrize("shape, fragments", [
    ((3, 32, 32), ["Conv2d", "4-D", "(N, 3, H, W)", "(3, 32, 32)"]),
    ((8, 1, 32, 32), ["Conv2d", "3 channels", "(N, 3, H, W)", "(8, 1, 32, 32)"]),
    ((1, 3, 4, 4), ["Conv2d", "kernel (5, 5)", "(N, 3, 5, 5)", "(1, 3, 4, 4)"]),
])
def test_conv2d_module_errors_name_the_layer_and_shapes(shape, fragments):
    m = nn.Conv2d(3, 4, 5)
    with pytest.raises(ValueError) as info:
        m(mc.Tensor(np.zeros(shape, dtype=np.float32)))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_conv2d_constructor_rejects_bad_groups():
    with pytest.raises(ValueError, match="Conv2d: groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_conv2d_repr():
    assert repr(nn.Conv2d(3, 96, 11, stride=4)) == "Conv2d(3, 96, kernel_size=(11, 11), stride=(4, 4))"
    assert repr(nn.Conv2d(48, 256, 5, padding=2, groups=2, bias=False)) == \
        "Conv2d(48, 256, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2), groups=2, bias=False)"


# -- pooling --------------------------------------------------------------------------------------
def test_alexnet_first_block_shapes(device, to_device):
    block = nn.Sequential(nn.Conv2d(3, 8, 11, stride=4), nn.MaxPool2d(3, 2)).to(device)
    x = to_device(np.zeros((1, 3, 227, 227), dtype=np.float32))
    assert block[0](x).shape == (1, 8, 55, 55)
    assert block(x).shape == (1, 8, 27, 27)


@pytest.mark.parametrize("module, functional", [
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda x: F.max_pool2d(x, 3, 2, 1, True)),
    (nn.MaxPool2d(2), lambda x: F.max_pool2d(x, 2, 2)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True), lambda x: F.avg_pool2d(x, 3, 2, 1, True)),
    (nn.AvgPool2d((2, 3)), lambda x: F.avg_pool2d(x, (2, 3))),
    (nn.AdaptiveAvgPool2d((2, 3)), lambda x: F.adaptive_avg_pool2d(x, (2, 3))),
    (nn.AdaptiveAvgPool2d(1), lambda x: F.adaptive_avg_pool2d(x, 1)),
])
def test_pool_modules_call_the_functional(device, to_device, module, functional):
    x = to_device(np.random.default_rng(0).standard_normal((2, 3, 7, 8)), requires_grad=True)
    y = module(x)
    np.testing.assert_array_equal(host(y), host(functional(x)))
    assert list(module.named_parameters()) == [] and module.state_dict() == {}
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_pool_stride_defaults_to_kernel_size():
    assert nn.MaxPool2d(3).stride == 3 and nn.AvgPool2d((2, 3)).stride == (2, 3)


def test_pool_reprs():
    assert repr(nn.MaxPool2d(3, 2)) == "MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=False)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AdaptiveAvgPool2d((6, 6))) == "AdaptiveAvgPool2d(output_size=(6, 6))"


@pytest.mark.parametrize("module, shape, fragments", [
    (nn.MaxPool2d(3, 2), (3, 13, 13), ["MaxPool2d", "4-D", "(N, C, H, W)", "(3, 13, 13)"]),
    (nn.AvgPool2d(5, 3), (1, 2, 4, 4), ["AvgPool2d", "kernel (5, 5)", "(N, C, 5, 5)", "(1, 2, 4, 4)"]),
    (nn.AdaptiveAvgPool2d(1), (2, 8), ["AdaptiveAvgPool2d", "4-D", "(2, 8)"]),
])
def test_pool_module_errors_name_the_layer_and_shapes(module, shape, fragments):
    with pytest.raises(ValueError) as info:
        module(mc.Tensor(np.zeros(shape, dtype=np.float32)))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_pool_constructors_reject_bad_padding():
    with pytest.raises(ValueError, match="MaxPool2d: padding"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2d: padding"):
        nn.AvgPool2d(3, padding=-1)
