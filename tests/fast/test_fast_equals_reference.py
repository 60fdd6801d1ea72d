"""Every fast path computes what its reference computes: forward values and every gradient, in
float64, on every test device; and the gradient checks pass with fast paths on and off."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, fast
from minicnn.functional.activation import ReLU
from minicnn.functional.batchnorm import BatchNorm
from minicnn.functional.conv import Conv2d
from minicnn.functional.linear import Linear
from minicnn.functional.lrn import LocalResponseNorm
from minicnn.functional.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from minicnn.gradcheck import check, registered_cases


def _gy(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _run(fn, inputs, device, seed=0):
    """fn on fresh copies of ``inputs`` on ``device``: (output, the classes that ran, grads)."""
    tensors = [mc.Tensor(backend.to_device(t.data.copy(), device), requires_grad=True) for t in inputs]
    out = fn(*tensors)
    gy = _gy(out.shape, seed)
    ran = type(out._creator).__name__ if out._creator is not None else None
    out.backward(backend.to_device(gy, device))
    return backend.to_numpy(out.data), ran, [backend.to_numpy(t.grad) for t in tensors]


def _check_own_mask(x, out, grads):
    """A dropout whose mask is drawn on the device (CUDA: a hash of seed and index, not the
    package generator's draws) keeps other elements than the reference for the same seed: check
    that it is still a dropout, each element 0 or x * scale for one scale, and that the gradient
    takes the same mask (gy * scale where kept, else 0)."""
    kept = out != 0
    scale = out[kept] / x[kept]
    assert kept.any() and (~kept).any() and np.allclose(scale, scale[0], rtol=1e-12)
    np.testing.assert_allclose(grads[0], np.where(kept, _gy(out.shape) * scale[0], 0.0), rtol=1e-12)


def _case_id(case):
    return f"{case[0]}: {case[1]}"


@pytest.mark.parametrize("case", registered_cases(), ids=_case_id)
def test_gradcheck_case_gives_the_same_numbers_with_fast_paths_on_and_off(device, case):
    """The registered gradient-check cases (every differentiable op) run once through the fast
    registry and once with ``fast.disabled()``: same output, same gradients (float64)."""
    fn, inputs = case[2]()
    mc.manual_seed(0)
    fast_out, fast_ran, fast_grads = _run(fn, inputs, device)
    mc.manual_seed(0)
    with fast.disabled():
        ref_out, ran, ref_grads = _run(fn, inputs, device)
    if fast_ran == "CudaDropout":
        _check_own_mask(inputs[0].data, fast_out, fast_grads)
        return
    np.testing.assert_allclose(fast_out, ref_out, rtol=1e-10, atol=1e-12)
    for a, b in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("enabled", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("case", registered_cases(), ids=_case_id)
def test_gradcheck_cases_pass_with_fast_paths_on_and_off(case, enabled):
    fn, inputs = case[2]()
    with (fast.enabled() if enabled else fast.disabled()):
        result = check(fn, inputs)
    assert result.passed, result.message()


# Shapes large enough to take the fast paths' special branches: several chunks and threads,
# the padded grid, dx as a convolution, channel groups, separable passes with padding.
REALISTIC = [
    ("conv 3x3 pad 1, 16 -> 16 (dx as convolution, grid)",
     lambda x, w, b: F.conv2d(x, w, b, padding=1), [(8, 16, 12, 12), (16, 16, 3, 3), (16,)]),
    ("conv 5x5 stride 2, 3 -> 24 (col2im dx)",
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=2), [(6, 3, 17, 15), (24, 3, 5, 5), (24,)]),
    ("conv groups=2 1x1", lambda x, w, b: F.conv2d(x, w, b, groups=2), [(5, 8, 9, 9), (6, 4, 1, 1), (6,)]),
    ("conv 1x1, 32 -> 16", lambda x, w, b: F.conv2d(x, w, b), [(6, 32, 9, 7), (16, 32, 1, 1), (16,)]),
    ("conv 1x1 of a transposed view, no bias", lambda x, w: F.conv2d(x.transpose(0, 1, 3, 2), w),
     [(4, 8, 5, 6), (3, 8, 1, 1)]),
    ("max pool 3x3/2 ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(6, 8, 15, 14)]),
    ("avg pool 2x2", lambda x: F.avg_pool2d(x, 2), [(6, 8, 16, 16)]),
    ("adaptive avg 7x7 -> 3x2", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(4, 6, 7, 7)]),
    ("batch norm train 4-D", lambda x, w, b: F.batch_norm(x, backend.get_array_module(x.data).zeros(12),
                                                          backend.get_array_module(x.data).ones(12), w, b,
                                                          training=True), [(16, 12, 9, 9), (12,), (12,)]),
    ("lrn size 5", lambda x: F.local_response_norm(x, 5, 1e-2, 0.75, 2.0), [(4, 16, 6, 6)]),
    ("relu", F.relu, [(64, 32, 8, 8)]),
    ("linear", lambda x, w, b: F.linear(x, w, b), [(64, 300), (200, 300), (200,)]),
]


@pytest.mark.parametrize("name, fn, shapes", REALISTIC, ids=[r[0] for r in REALISTIC])
def test_fast_paths_equal_reference_on_realistic_shapes(device, on_one_and_three_threads, name, fn, shapes):
    rng = np.random.default_rng(1)
    inputs = [mc.Tensor(rng.standard_normal(s)) for s in shapes]
    with fast.disabled():
        ref_out, _, ref_grads = _run(fn, inputs, device)
    (out1, ran, grads1), (out3, _, grads3) = on_one_and_three_threads(lambda: _run(fn, inputs, device))
    for out, grads in ((out1, grads1), (out3, grads3)):
        np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-11)
        for a, b in zip(grads, ref_grads):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)


@st.composite
def conv_and_pool_shapes(draw):
    """A convolution (groups, strides, paddings, rectangular kernels, with or without bias) and a
    pool (max or average, padding up to half the kernel, ceil mode) of small random shapes."""
    g, kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), kh + 5))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), kw + 5))
    conv = dict(shapes=[(draw(st.integers(1, 3)), g * draw(st.integers(1, 2)), h, w)], stride=stride,
                padding=padding, groups=g)
    conv["shapes"] += [(g * draw(st.integers(1, 3)), conv["shapes"][0][1] // g, kh, kw)]
    if draw(st.booleans()):
        conv["shapes"] += [(conv["shapes"][1][0],)]
    pool = dict(op=draw(st.sampled_from([F.max_pool2d, F.avg_pool2d])), kernel=(kh, kw), stride=stride,
                padding=(min(padding[0], kh // 2), min(padding[1], kw // 2)), ceil_mode=draw(st.booleans()))
    return conv, pool, draw(st.integers(0, 2 ** 31))


@given(cfg=conv_and_pool_shapes())
def test_fast_conv_and_pools_equal_reference_on_random_shapes(device, cfg):
    conv, pool, seed = cfg
    rng = np.random.default_rng(seed)
    x_shape = conv["shapes"][0]
    tie_free = rng.permutation(int(np.prod(x_shape))).reshape(x_shape) * 0.1  # one maximum per window
    cases = [(lambda *t: F.conv2d(*t, stride=conv["stride"], padding=conv["padding"], groups=conv["groups"]),
              [mc.Tensor(rng.standard_normal(s)) for s in conv["shapes"]]),
             (lambda t: pool["op"](t, pool["kernel"], pool["stride"], pool["padding"], pool["ceil_mode"]),
              [mc.Tensor(tie_free)])]
    for fn, inputs in cases:
        out, _, grads = _run(fn, inputs, device)
        with fast.disabled():
            ref_out, _, ref_grads = _run(fn, inputs, device)
        np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
        for a, b in zip(grads, ref_grads):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


EXPECTED_CPU = {Conv2d: "ThreadedConv2d", MaxPool2d: "SeparableMaxPool2d", AvgPool2d: "SeparableAvgPool2d",
                AdaptiveAvgPool2d: "MatrixAdaptiveAvgPool2d", BatchNorm: "ChannelGroupBatchNorm",
                ReLU: "ThreadedReLU", Linear: "ThreadedLinear"}


def test_the_registry_swaps_in_the_fast_classes_and_disabled_restores_the_references():
    """Without this, the equality tests above could compare the reference with itself."""
    for reference, name in EXPECTED_CPU.items():
        assert fast.implementation(reference, "cpu").__name__ == name
        with fast.disabled():
            assert fast.implementation(reference, "cpu") is reference
    assert fast.implementation(Conv2d, "standin").__name__ == "DeviceConv2d"
    assert fast.implementation(LocalResponseNorm, "cuda").__name__ == "CudaLocalResponseNorm"
    x = mc.Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    w = mc.Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    assert type(F.conv2d(x, w)._creator).__name__ == "ThreadedConv2d"
    with fast.disabled():
        assert type(F.conv2d(x, w)._creator) is Conv2d


def test_a_students_subclass_is_never_replaced():
    class MyConv(Conv2d):
        pass
    x = mc.Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    w = mc.Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    assert type(MyConv()(x, w)._creator) is MyConv


def test_environment_variable_turns_fast_paths_off():
    import subprocess
    import sys
    code = ("import minicnn as mc, minicnn.functional as F, numpy as np\n"
            "x = mc.Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)\n"
            "print(mc.fast.is_enabled(), type(F.relu(x)._creator).__name__)\n")
    for value, expected in (("0", "False ReLU"), ("1", "True ThreadedReLU")):
        env = dict(__import__("os").environ, MINICNN_FAST=value)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.stdout.strip() == expected, out.stderr
    env = dict(__import__("os").environ, MINICNN_FAST="maybe")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "MINICNN_FAST" in out.stderr


def test_register_refuses_what_could_not_replace_the_reference():
    from minicnn.fast.registry import register

    class NotASubclass(ReLU.__mro__[1]):   # a Function, but not a ReLU
        pass

    class WithInit(ReLU):
        def __init__(self):
            super().__init__()

    with pytest.raises(TypeError, match="must subclass ReLU"):
        register(ReLU, NotASubclass, devices=("cpu",))
    with pytest.raises(TypeError, match="must not define __init__"):
        register(ReLU, WithInit, devices=("cpu",))
    assert fast.implementation(ReLU, "cpu").__name__ == "ThreadedReLU"   # nothing was registered
