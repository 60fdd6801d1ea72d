"""The CUDA kernels of ``minicnn.fast.cuda_kernels``, checked on the CPU (no GPU, no CuPy).

``minicnn.testing.cuda_on_cpu`` compiles each kernel source as plain C++ behind a small shim (one
block of one thread: the grid-stride loop visits every element in turn) and loads it with ctypes.
The wrappers that run on a GPU (``col2im_cuda``, ``bn_statistics_cuda``, ``sgd_step_cuda`` ...)
are driven here through a stand-in for CuPy (``cuda_on_cpu.FakeCupy``, or the stand-in device), argument
order and typed scalars included, against the NumPy code they replace.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.functional import conv, geometry
from minicnn import backend, testing
from minicnn.fast import cuda_kernels as gk
from minicnn.testing import cuda_on_cpu
from minicnn.functional.lrn import LocalResponseNorm
from minicnn.functional.reference import local_response_norm_naive

TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
             np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture(scope="module")
def cupy():
    """A ``cuda_on_cpu.FakeCupy`` with every kernel built for float32 and float64 (cached by source hash).

    While this module's tests run, ``gk._kernels`` is a fresh dict: the CPU-built kernels never
    reach the cache that real CuPy kernels use in the same session (the GPU tests)."""
    if cuda_on_cpu.cxx_compiler() is None:
        pytest.skip("no C++ compiler (g++ or gcc) to build the kernel sources on the CPU")
    libraries = cuda_on_cpu.build_kernels()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gk, "_kernels", {})
        yield cuda_on_cpu.FakeCupy(libraries)


@pytest.fixture
def libraries_on_standin(cupy):
    """The CUDA classes on stand-in arrays, with the kernels this module built."""
    with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
        yield


def _check(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **TOLERANCE[expected.dtype])


# ------------------------------------------------------------------------------------------------
# col2im
# ------------------------------------------------------------------------------------------------
@st.composite
def col2im_cases(draw):
    """(x_shape, kh, kw, stride, padding): small shapes with at least one window position."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 8))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 8))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n, c, h, w), kh, kw, stride, padding


@given(case=col2im_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 99))
def test_col2im_kernel_matches_numpy(cupy, case, dtype, seed):
    x_shape, kh, kw, stride, padding = case
    ho = geometry.conv_output_size(x_shape[2], kh, stride[0], padding[0])
    wo = geometry.conv_output_size(x_shape[3], kw, stride[1], padding[1])
    rows, width = x_shape[1] * kh * kw, x_shape[0] * ho * wo
    cols = np.random.default_rng(seed).standard_normal((rows, width)).astype(dtype)
    x = gk.col2im_cuda(cupy, cols, x_shape, kh, kw, stride, padding)
    _check(x, conv.col2im(cols, x_shape, kh, kw, stride, padding))


def test_col2im_kernel_is_the_adjoint_of_im2col(cupy):
    """<im2col(x), cols> = <x, col2im(cols)> (AlexNet conv1's geometry, scaled down)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 23, 23))
    cols = rng.standard_normal(conv.im2col(x, 11, 11, 4, 2).shape)
    lhs = np.vdot(conv.im2col(x, 11, 11, 4, 2), cols)
    rhs = np.vdot(x, gk.col2im_cuda(cupy, cols, x.shape, 11, 11, (4, 4), (2, 2)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_col2im_kernel_accepts_non_contiguous_columns(cupy):
    cols = np.random.default_rng(1).standard_normal((2 * 3 * 3, 2 * 2 * 3 * 3))[:, ::2]  # a strided view
    assert not cols.flags.c_contiguous
    x = gk.col2im_cuda(cupy, cols, (2, 2, 3, 3), 3, 3, (1, 1), (1, 1))
    _check(x, conv.col2im(np.ascontiguousarray(cols), (2, 2, 3, 3), 3, 3, 1, 1))


def test_col2im_kernel_refuses_other_dtypes_and_shapes(cupy):
    with pytest.raises(TypeError, match="float32 or float64"):
        gk.col2im_cuda(cupy, np.zeros((9, 4), dtype=np.int64), (1, 1, 3, 3), 3, 3, (1, 1), (0, 0))
    with pytest.raises(ValueError, match="cols of shape"):
        gk.col2im_cuda(cupy, np.zeros((9, 5)), (1, 1, 3, 3), 3, 3, (1, 1), (0, 0))


# ------------------------------------------------------------------------------------------------
# Local response normalization
# ------------------------------------------------------------------------------------------------
def lrn_s(a, size, alpha, k):
    """The s that the forward kernel saves for backward, from the plain-loop reference."""
    return local_response_norm_naive(a, size, alpha, 0.75, k)[1]


@given(size=st.integers(1, 7), n=st.integers(1, 2), c=st.integers(1, 9),
       trailing=st.lists(st.integers(1, 4), min_size=0, max_size=2),
       alpha=st.sampled_from([1e-4, 0.5, 2.0]), beta=st.sampled_from([0.5, 0.75, 1.0]),
       k=st.sampled_from([1.0, 2.0]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 99))
def test_lrn_kernels_match_numpy(cupy, size, n, c, trailing, alpha, beta, k, dtype, seed):
    """Forward (b and the saved s) and backward against ``LocalResponseNorm`` on (N, C, *) inputs,
    odd and even sizes, windows wider than C, and no trailing dimension at all (N, C)."""
    rng = np.random.default_rng(seed)
    shape = (n, c, *trailing)
    a = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    ref = LocalResponseNorm(size, alpha, beta, k)
    b_ref = ref.forward(a.reshape(n, c, -1)).reshape(shape)  # the Function wants >= 3 dimensions
    da_ref = ref.backward(g.reshape(n, c, -1)).reshape(shape)

    b, s = gk.lrn_forward_cuda(cupy, a, size, alpha, beta, k)
    _check(b, b_ref)
    _check(s, lrn_s(a, size, alpha, k))
    _check(gk.lrn_backward_cuda(cupy, a, s, g, size, alpha, beta), da_ref)


def test_lrn_kernels_at_alexnet_settings(cupy):
    """The paper's layer (size 5, alpha 5e-4 in PyTorch's convention, beta 0.75, k 2) on ReLU-like
    activations with 96 channels, float32."""
    rng = np.random.default_rng(2)
    a = np.maximum(rng.standard_normal((2, 96, 5, 5)) * 30, 0).astype(np.float32)
    g = rng.standard_normal(a.shape).astype(np.float32)
    ref = LocalResponseNorm(5, 5e-4, 0.75, 2.0)
    b, s = gk.lrn_forward_cuda(cupy, a, 5, 5e-4, 0.75, 2.0)
    _check(b, ref.forward(a))
    _check(s, lrn_s(a, 5, 5e-4, 2.0))
    _check(gk.lrn_backward_cuda(cupy, a, s, g, 5, 5e-4, 0.75), ref.backward(g))


def test_lrn_kernels_refuse_mixed_inputs(cupy):
    a = np.ones((1, 3, 2))
    with pytest.raises(TypeError, match="float32 or float64"):
        gk.lrn_backward_cuda(cupy, a, a.astype(np.float32), a, 3, 1.0, 0.75)
    with pytest.raises(ValueError, match="one shape"):
        gk.lrn_backward_cuda(cupy, a, a, np.ones((1, 3, 3)), 3, 1.0, 0.75)


# ------------------------------------------------------------------------------------------------
# Compiling and launching
# ------------------------------------------------------------------------------------------------
def test_kernels_are_compiled_once_per_dtype_and_launched_over_a_capped_grid(cupy, monkeypatch):
    x = np.ones((1, 3, 30, 30), dtype=np.float32)  # 2,700 elements: 11 blocks of 256
    gk.lrn_forward_cuda(cupy, x, 3, 1.0, 0.75, 1.0)
    kernel = gk._kernels[("minicnn_lrn_forward", np.dtype(np.float32), np.dtype(np.int32))]
    launches = kernel.launches
    assert kernel.grids[-1] == (11,)
    monkeypatch.setattr(gk, "MAX_BLOCKS", 4)
    b, _ = gk.lrn_forward_cuda(cupy, x, 3, 1.0, 0.75, 1.0)
    assert gk._kernels[("minicnn_lrn_forward", np.dtype(np.float32), np.dtype(np.int32))] is kernel  # not rebuilt
    assert kernel.launches == launches + 1 and kernel.grids[-1] == (4,)
    _check(b, LocalResponseNorm(3, 1.0, 0.75, 1.0).forward(x))


def test_empty_inputs_launch_nothing(cupy):
    b, s = gk.lrn_forward_cuda(cupy, np.ones((0, 3, 4)), 3, 1.0, 0.75, 1.0)
    assert b.shape == s.shape == (0, 3, 4)


def test_source_names_its_float_and_index_types():
    assert gk.source("convolution", np.float32).startswith("typedef float T;\ntypedef long long I;\n")
    assert gk.source("convolution", np.float64, np.int32).startswith("typedef double T;\ntypedef int I;\n")
    with pytest.raises(TypeError, match="float32 and float64"):
        gk.source("convolution", np.float16)


def test_each_kernel_file_defines_the_kernels_its_family_lists():
    """``FAMILIES`` names every .cu file of ``kernels/`` and, for each, exactly its kernels."""
    assert {p.stem for p in gk.KERNELS.glob("*.cu")} == set(gk.FAMILIES)
    for family, names in gk.FAMILIES.items():
        code = gk.source(family, np.float32)
        assert re.findall(r'extern "C" __global__ void (\w+)\(', code) == list(names), family
        assert all(gk.family_of(name) == family for name in names)
    with pytest.raises(ValueError, match="no kernel 'minicnn_nothing'"):
        gk.family_of("minicnn_nothing")


def test_an_included_file_is_inserted_with_line_markers():
    """``#include "windows.cuh"`` becomes that file's text between ``#line`` directives, so that
    a compiler's message names the file and line where the error is."""
    code = gk.source("pooling", np.float32).splitlines()
    path = (gk.KERNELS / "pooling.cu").as_posix()
    assert code[2] == f'#line 1 "{path}"' and "minicnn_windows" in "\n".join(code)
    include = next(i for i, line in enumerate((gk.KERNELS / "pooling.cu").read_text().splitlines(), 1)
                   if line.startswith("#include"))
    assert f'#line 1 "{(gk.KERNELS / "windows.cuh").as_posix()}"' in code
    assert f'#line {include + 1} "{path}"' in code


class _Sized:
    """Stands for a device array of ``size`` elements (``index_type`` reads only the size)."""

    def __init__(self, size):
        self.size = size


def test_kernels_index_in_32_bits_unless_an_index_could_reach_2_to_the_31():
    limit, stride = gk.INT32_LIMIT, gk.BLOCK * gk.MAX_BLOCKS
    assert gk.index_type(10, (_Sized(10),) + gk._ints(3, 4) + (np.float32(0.5),)) == np.int32
    assert gk.index_type(10, (_Sized(limit),)) == np.int32
    assert gk.index_type(10, (_Sized(limit + 1),)) == np.int64       # an array of 2**31 elements
    assert gk.index_type(10, gk._ints(1, -limit - 1)) == np.int64    # an integer argument
    assert gk.index_type(10, gk._ints(limit)) == np.int32
    assert gk.index_type(limit - stride, ()) == np.int32
    assert gk.index_type(limit - stride + 1, ()) == np.int64         # the grid-stride loop's last step


def test_kernels_indexed_in_64_bits_give_the_same_results(cupy, monkeypatch):
    """Every launch takes int64 indices when the limit is lowered: the wrappers still match."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6))
    cols32 = gk.im2col_cuda(cupy, x, 3, 2, (2, 1), (1, 0))
    bn32 = gk.bn_statistics_cuda(cupy, x, None, None, None, None, 1e-5, 0.1)
    monkeypatch.setattr(gk, "INT32_LIMIT", 100)
    assert gk.index_type(x.size, (x,)) == np.int64
    cols64 = gk.im2col_cuda(cupy, x, 3, 2, (2, 1), (1, 0))
    np.testing.assert_array_equal(cols64, cols32)
    np.testing.assert_array_equal(gk.col2im_cuda(cupy, cols64, x.shape, 3, 2, (2, 1), (1, 0)),
                                  conv.col2im(cols32, x.shape, 3, 2, (2, 1), (1, 0)))
    for a, b in zip(gk.bn_statistics_cuda(cupy, x, None, None, None, None, 1e-5, 0.1), bn32):
        np.testing.assert_array_equal(a, b)
    assert ("minicnn_im2col", np.dtype(np.float64), np.dtype(np.int64)) in gk._kernels


def test_a_kernel_refuses_integers_of_another_type_than_its_index(cupy):
    kernel = cupy.RawModule(code=gk.source("activation", np.float64, np.int32)).get_function("minicnn_relu_backward")
    y = np.ones(3)
    with pytest.raises(TypeError, match="int64 scalar for a kernel indexed by int32"):
        kernel((1,), (1,), (y, y, y, np.int64(3)))


def test_importing_the_kernels_needs_no_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "from minicnn.fast import cuda_kernels as gpu_kernels\n"
            "assert gpu_kernels._kernels == {}\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])  # the repository root
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------------------
# Batch normalization
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5), (2, 4, 9), (1, 2, 1, 3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("part_size, max_parts", [(gk.BN_PART_SIZE, gk.BN_MAX_PARTS), (1, 1024), (4, 3)])
def test_batch_norm_kernels_match_the_reference(cupy, shape, dtype, training, part_size, max_parts, monkeypatch):
    """Statistics and constants (or the constants from the running estimates), normalisation,
    gradient sums and dx against ``BatchNorm`` (reference code); the sums over one part per
    channel (these small arrays), a part per value, and at most three parts of several values."""
    monkeypatch.setattr(gk, "BN_PART_SIZE", part_size)
    monkeypatch.setattr(gk, "BN_MAX_PARTS", max_parts)
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import fast
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    axes = (0,) + tuple(range(2, len(shape)))
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    running_mean, running_var = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)

    rm_gpu, rv_gpu = running_mean.copy(), running_var.copy()
    if training:  # the statistics and the channels' constants in one launch
        mean, var, inv_std, scale, shift = gk.bn_statistics_cuda(cupy, x, gamma, beta, rm_gpu, rv_gpu, 1e-5, 0.1)
        _check(mean, x.mean(axis=axes, dtype=np.float64).astype(dtype))
        _check(var, x.var(axis=axes, dtype=np.float64).astype(dtype))
    else:
        mean, var = running_mean, running_var
        inv_std, scale, shift = gk.bn_finalize_cuda(cupy, mean, var, gamma, beta, None, None, x.size // c,
                                                    1e-5, 0.1)
    _check(inv_std, (1 / np.sqrt(var.astype(np.float64) + 1e-5)).astype(dtype))
    _check(scale, gamma * inv_std)
    _check(shift, beta)
    y = gk.bn_forward_cuda(cupy, x, mean, scale, shift)
    sum_g, sum_gxhat = gk.bn_gradient_sums_cuda(cupy, g, x, mean, inv_std)
    dx = gk.bn_backward_cuda(cupy, g, x, mean, inv_std, scale, sum_g, sum_gxhat, training)

    tx, tw, tb = (mc.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm_ref, rv_ref = running_mean.copy(), running_var.copy()
    with fast.disabled():
        ty = F.batch_norm(tx, rm_ref, rv_ref, tw, tb, training=training)
        ty.backward(g)
    loose = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(y, ty.data, **loose)
    np.testing.assert_allclose(dx, tx.grad, **loose)
    np.testing.assert_allclose(sum_gxhat, tw.grad, **loose)
    np.testing.assert_allclose(sum_g, tb.grad, **loose)
    np.testing.assert_allclose(rm_gpu, rm_ref, **loose)   # updated in training, untouched in eval
    np.testing.assert_allclose(rv_gpu, rv_ref, **loose)


# ------------------------------------------------------------------------------------------------
# im2col and max pooling
# ------------------------------------------------------------------------------------------------
@given(case=col2im_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_im2col_kernel_matches_numpy(cupy, case, dtype, seed):
    x_shape, kh, kw, stride, padding = case
    x = np.random.default_rng(seed).standard_normal(x_shape).astype(dtype)
    _check(gk.im2col_cuda(cupy, x, kh, kw, stride, padding), conv.im2col(x, kh, kw, stride, padding))


@given(k=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       ceil_mode=st.booleans(), ties=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 31))
def test_max_pool_kernels_match_the_reference(cupy, k, stride, pad, extra, ceil_mode, ties, dtype, seed):
    """Forward values and the routed gradient (ties to the first maximum, overlapping windows,
    padding and ceil mode) against ``MaxPool2d``'s reference code."""
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import fast
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    h, w = (max(1, k[i] - 2 * pad[i]) + extra[i] for i in range(2))
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, 3, h, w)).astype(dtype) if ties else rng.standard_normal((2, 3, h, w)).astype(dtype)
    t = mc.Tensor(x, requires_grad=True)
    with fast.disabled():
        y_ref = F.max_pool2d(t, k, stride, pad, ceil_mode)
        g = rng.standard_normal(y_ref.shape).astype(dtype)
        y_ref.backward(g)
    y, argmax = gk.max_pool_forward_cuda(cupy, x, k, stride, pad, y_ref.shape[2:])
    _check(y, y_ref.data)
    _check(gk.max_pool_backward_cuda(cupy, g, argmax, x.shape, k, stride, pad), t.grad)


# ------------------------------------------------------------------------------------------------
# The SGD update
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, dampening, weight_decay, nesterov", [
    (0.0, 0.0, 0.0, False), (0.9, 0.0, 5e-4, True), (0.9, 0.1, 0.0, False), (0.5, 0.0, 1e-2, False)])
def test_sgd_step_kernel_matches_the_optimizer(cupy, dtype, momentum, dampening, weight_decay, nesterov):
    """Two steps of three parameters (one empty) in one launch each, against ``optim.sgd.sgd_update``
    per parameter; the first starts the buffers at the gradients. The kernel reads the arrays'
    addresses from a table, so it runs on stand-in arrays (``x.data.ptr`` as on CuPy)."""
    from minicnn.optim.sgd import sgd_update
    rng = np.random.default_rng(5)
    shapes = [(7, 5), (0,), (300,)]
    p_ref = [rng.standard_normal(s).astype(dtype) for s in shapes]
    p_dev = [backend.to_device(p, "standin") for p in p_ref]
    buf_ref = [np.empty_like(p) if momentum else None for p in p_ref]
    buf_dev = [testing.standin.empty_like(p) if momentum else None for p in p_dev]
    with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
        for first in (True, False):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            hyper = dict(lr=0.1, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov)
            for p, g, buf in zip(p_ref, grads, buf_ref):
                sgd_update(p, g, buf, first=first, **hyper)
            launches = _launches(lambda: gk.sgd_step_cuda(
                testing.standin, p_dev, [backend.to_device(g, "standin") for g in grads], buf_dev,
                [first] * 3, **hyper))
            assert launches == 1
            for k in range(3):
                _check(backend.to_numpy(p_dev[k]), p_ref[k])
                if momentum:
                    _check(backend.to_numpy(buf_dev[k]), buf_ref[k])


def test_sgd_step_kernel_groups_by_dtype_and_first_step(cupy):
    rng = np.random.default_rng(6)
    ps = [backend.to_device(rng.standard_normal(4).astype(t), "standin") for t in (np.float32, np.float64, np.float32)]
    gs = [testing.standin.ones_like(p) for p in ps]
    bufs = [testing.standin.zeros_like(p) for p in ps]
    with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
        n = _launches(lambda: gk.sgd_step_cuda(testing.standin, ps, gs, bufs, [True, True, False],
                                               lr=1.0, momentum=0.5, dampening=0.0, weight_decay=0.0,
                                               nesterov=False))
        assert n == 3  # (float32, first), (float64, first), (float32, not first)
        with pytest.raises(ValueError, match="one shape"):
            gk.sgd_step_cuda(testing.standin, ps[:1], [testing.standin.ones(5, dtype=np.float32)], [None], [True],
                             lr=1.0, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)


def _launches(fn):
    """How many kernels ``fn()`` launches (the stand-in's watcher sees each CPU-built kernel)."""
    seen = []
    with testing.watch_standin(lambda kind, name: seen.append(name) if name.startswith("kernel ") else None):
        fn()
    return len(seen)


@given(k=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       ceil_mode=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_avg_pool_kernels_match_the_reference(cupy, k, stride, pad, extra, ceil_mode, dtype, seed):
    """Window means (divisor clipped to the padded border in ceil mode) and the spread gradient
    against ``AvgPool2d``'s reference code."""
    import minicnn as mc
    import minicnn.functional as F
    from minicnn import fast
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    h, w = (max(1, k[i] - 2 * pad[i]) + extra[i] for i in range(2))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    t = mc.Tensor(x, requires_grad=True)
    with fast.disabled():
        y_ref = F.avg_pool2d(t, k, stride, pad, ceil_mode)
        g = rng.standard_normal(y_ref.shape).astype(dtype)
        y_ref.backward(g)
    _check(gk.avg_pool_forward_cuda(cupy, x, k, stride, pad, y_ref.shape[2:]), y_ref.data)
    _check(gk.avg_pool_backward_cuda(cupy, g, x.shape, k, stride, pad), t.grad)


# ------------------------------------------------------------------------------------------------
# ReLU and cross-entropy
# ------------------------------------------------------------------------------------------------
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_kernel_matches_the_reference(cupy, shape, seed, dtype):
    from minicnn.functional.activation import ReLU
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::3] = 0  # the kink: no gradient at 0, as the reference
    g = rng.standard_normal(shape).astype(dtype)
    ref = ReLU()
    y = ref.forward(x)
    _check(gk.relu_backward_cuda(cupy, y, g), ref.backward(g))


@given(n=st.integers(1, 6), c=st.integers(1, 12) | st.just(1000), scale=st.sampled_from([1.0, 30.0]),
       seed=st.integers(0, 2**16))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_kernels_match_the_reference(cupy, n, c, scale, seed, dtype):
    from minicnn.functional.loss import CrossEntropy
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, c)) * scale).astype(dtype)  # large logits: the max is subtracted
    t = rng.integers(0, c, n)
    g = np.asarray(rng.standard_normal(), dtype=dtype)
    ref = CrossEntropy(t)
    expected = ref.forward(z)
    loss, p = gk.cross_entropy_forward_cuda(cupy, z, t.astype(np.int32))  # any int labels
    np.testing.assert_allclose(loss.mean(), expected, **TOLERANCE[np.dtype(dtype)])
    _check(p, ref.p)
    _check(gk.cross_entropy_backward_cuda(cupy, p, t, g), ref.backward(g))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5), (2, 4, 9), (0, 3, 2, 2)])
@pytest.mark.parametrize("part_size", [gk.BN_PART_SIZE, 1, 4])
def test_channel_sums_kernel_is_the_sum_over_all_axes_but_the_channels(cupy, shape, dtype, part_size,
                                                                        monkeypatch):
    """A convolution's bias gradient on the GPU (``CudaConv2d.bias_grad``)."""
    monkeypatch.setattr(gk, "BN_PART_SIZE", part_size)
    g = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    axes = (0,) + tuple(range(2, len(shape)))
    sums = gk.channel_sums_cuda(cupy, g)
    assert sums.dtype == dtype and sums.shape == (shape[1],)
    _check(sums, g.sum(axis=axes, dtype=np.float64).astype(dtype))


def test_batch_norm_gradient_sums_of_empty_channels_are_zero(cupy):
    for shape in [(2, 3, 0), (0, 3, 4)]:  # no positions, no examples: nothing launched, nothing to add
        g = np.ones(shape)
        sum_g, sum_gxhat = gk.bn_gradient_sums_cuda(cupy, g, g, np.zeros(3), np.ones(3))
        np.testing.assert_array_equal(sum_g, np.zeros(3))
        np.testing.assert_array_equal(sum_gxhat, np.zeros(3))


def test_batch_norm_constants_without_affine_parameters_or_running_estimates(cupy):
    x = np.random.default_rng(3).standard_normal((3, 2, 4)).astype(np.float64)
    _, var, inv_std, scale, shift = gk.bn_statistics_cuda(cupy, x, None, None, None, None, 1e-5, 0.1)
    _check(scale, inv_std)
    _check(shift, np.zeros(2))
    inv_std2, scale2, shift2 = gk.bn_finalize_cuda(cupy, x.mean(axis=(0, 2)), var, None, None, None, None,
                                                   12, 1e-5, 0.1)
    _check(inv_std2, inv_std)
    _check(scale2, inv_std)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay, decoupled, amsgrad", [
    (0.0, False, False), (1e-2, False, True), (1e-2, True, False), (5e-2, True, True)])
def test_adam_step_kernel_matches_the_optimizer(cupy, dtype, weight_decay, decoupled, amsgrad):
    """Three steps of three parameters (one empty), one launch per step, against
    ``optim.adam.adam_update`` per parameter."""
    from minicnn.optim.adam import adam_update
    rng = np.random.default_rng(8)
    shapes = [(6, 4), (0,), (257,)]
    hyper = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, decoupled=decoupled,
                 amsgrad=amsgrad)
    ref = [[rng.standard_normal(s).astype(dtype)] + [np.zeros(s, dtype) for _ in range(3)] for s in shapes]
    dev = [[backend.to_device(a, "standin") for a in arrays] for arrays in ref]
    with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
        for t in (1, 2, 3):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            for (p, m, v, vmax), g in zip(ref, grads):
                adam_update(p, g, m, v, vmax if amsgrad else None, t, **hyper)
            columns = list(zip(*dev))
            launches = _launches(lambda: gk.adam_step_cuda(
                testing.standin, list(columns[0]), [backend.to_device(g, "standin") for g in grads],
                list(columns[1]), list(columns[2]), list(columns[3]) if amsgrad else [None] * 3, [t] * 3, **hyper))
            assert launches == 1
            for arrays, expected in zip(dev, ref):
                for a, e in zip(arrays, expected):
                    _check(backend.to_numpy(a), e)


def test_the_optimizers_address_table_is_copied_to_the_device_once_for_the_same_arrays(cupy):
    ps = [backend.to_device(np.ones(3), "standin"), backend.to_device(np.ones(5), "standin")]
    gs = [testing.standin.ones_like(p) for p in ps]
    uploads = []
    with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
        with testing.watch_standin(lambda kind, name: uploads.append(name) if kind == "upload" else None):
            for _ in range(3):
                gk.sgd_step_cuda(testing.standin, ps, gs, [None, None], [False, False], lr=0.5, momentum=0.0,
                                 dampening=0.0, weight_decay=0.0, nesterov=False)
            assert len(uploads) == 1
            gs2 = [testing.standin.ones_like(p) for p in ps]  # new gradients: a new table
            gk.sgd_step_cuda(testing.standin, ps, gs2, [None, None], [False, False], lr=0.5, momentum=0.0,
                             dampening=0.0, weight_decay=0.0, nesterov=False)
            assert len(uploads) == 2
    np.testing.assert_allclose(backend.to_numpy(ps[0]), -1.0)  # 1 - 4 * 0.5


BROKEN = '// a kernel file with a mistake on line 3\n\nextern "C" __global__ void minicnn_broken() { oops; }\n'


def _broken_kernels(folder, monkeypatch):
    """``kernels/`` replaced by ``folder`` holding ``broken.cu`` (its kernel: ``minicnn_broken``)."""
    folder.mkdir()
    (folder / "broken.cu").write_text(BROKEN)
    monkeypatch.setattr(gk, "KERNELS", folder)
    monkeypatch.setattr(gk, "FAMILIES", {"broken": ("minicnn_broken",)})
    return (folder / "broken.cu").as_posix()


def test_a_kernel_that_does_not_compile_is_named_with_the_compilers_message(cupy, tmp_path, monkeypatch):
    """The message names the .cu file and the line of the mistake (as written there)."""
    path = _broken_kernels(tmp_path / "kernels", monkeypatch)
    with pytest.raises(RuntimeError, match=r"broken_float32_\w+\.\d+\.cpp does not compile as C\+\+:(.|\n)*"
                                           + re.escape(path) + r":3:(.|\n)*oops"):
        cuda_on_cpu.build_kernels(dtypes=(np.float32,), directory=tmp_path)


def _splitmix_keep(seed, n, p):
    """The kernel's mask, in NumPy's wrapping uint64 arithmetic: bits 11..63 of splitmix64 of
    seed + (i + 1) * golden, compared with ceil(p * 2**53)."""
    u64 = np.uint64
    z = u64(seed) + np.arange(1, n + 1, dtype=u64) * u64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
    z = z ^ (z >> u64(31))
    return (z >> u64(11)) >= u64(int(np.ceil(p * 2.0 ** 53)))


@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), p=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       seed=st.integers(0, 2**64 - 1))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_kernel_keeps_what_the_hash_keeps_both_ways(cupy, shape, p, seed, dtype):
    rng = np.random.default_rng(seed % 2**32)
    x, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    keep = _splitmix_keep(seed, x.size, p).reshape(x.shape)
    scale = 1.0 / (1.0 - p)
    y, dx = gk.dropout_cuda(cupy, x, seed, p, scale), gk.dropout_cuda(cupy, g, seed, p, scale)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(y, np.where(keep, x * dtype(scale), 0))   # bit for bit
    np.testing.assert_array_equal(dx, np.where(keep, g * dtype(scale), 0))  # the same mask back


@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
def test_dropout_kernel_keeps_one_minus_p_independently_of_position(cupy, p):
    n = 200_000
    kept = gk.dropout_cuda(cupy, np.ones(n), 12345, p, 1.0) != 0
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    assert abs(kept[0::2].mean() - kept[1::2].mean()) < 5 * 2 * sigma  # even vs odd indices
    pairs = kept[:-1] & kept[1:]                 # neighbours independent: P(both) = (1 - p)^2
    assert abs(pairs.mean() - (1 - p) ** 2) < 5 * np.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)
    other = gk.dropout_cuda(cupy, np.ones(n), 12346, p, 1.0) != 0
    assert abs((kept == other).mean() - (p * p + (1 - p) ** 2)) < 0.01  # another seed: another mask


def test_cuda_dropout_draws_one_seed_from_the_package_generator(libraries_on_standin):
    """On the CUDA path, ``mc.manual_seed`` repeats the masks, the next seed gives another, and
    backward applies forward's mask."""
    import minicnn as mc
    import minicnn.functional as F
    x = backend.to_device(np.ones((64, 50)), "standin")
    outs = []
    for seed in (3, 3, 4):
        mc.manual_seed(seed)
        t = mc.Tensor(x, requires_grad=True)
        y = F.dropout(t, 0.5)
        y.backward(backend.to_device(np.ones((64, 50)), "standin"))
        outs.append((backend.to_numpy(y.data), backend.to_numpy(t.grad)))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert (outs[0][0] != outs[2][0]).any()
    for y, grad in outs:
        np.testing.assert_array_equal(grad, y)  # dy = 1: the gradient is the scaled mask itself
        assert set(np.unique(y)) <= {0.0, 2.0}


def _nvrtc_program():
    """CuPy's NVRTC wrapper, which compiles CUDA source to PTX without a GPU; skips without CuPy
    and NVRTC (``pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12`` provides both)."""
    compiler = pytest.importorskip("cupy.cuda.compiler", reason="CuPy is not installed")
    try:
        compiler._get_nvrtc_version()
    except Exception as error:  # no libnvrtc here
        pytest.skip(f"NVRTC is not available: {error}")
    return compiler._NVRTCProgram


@pytest.mark.parametrize("index", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_kernel_compiles_with_nvrtc_for_the_gpus_we_measure_on(dtype, index):
    """The sources as the GPU's compiler sees them (the C++ build above is another compiler):
    no error and no warning for compute capability 9.0 (H100, H200)."""
    import io
    program = _nvrtc_program()
    for family in gk.FAMILIES:
        log = io.StringIO()
        program(gk.source(family, dtype, index), name=f"{family}.cu").compile(options=("-arch=compute_90",),
                                                                             log_stream=log)
        assert not log.getvalue().strip(), f"{family}.cu: {log.getvalue()}"


def test_nvrtc_names_the_kernel_file_and_line_of_an_error(tmp_path, monkeypatch):
    compiler = pytest.importorskip("cupy.cuda.compiler", reason="CuPy is not installed")
    program = _nvrtc_program()
    path = _broken_kernels(tmp_path / "kernels", monkeypatch)
    with pytest.raises(compiler.CompileException, match=re.escape(f"{path}(3)") + r"(.|\n)*oops"):
        program(gk.source("broken", np.float32), name="broken.cu").compile(options=("-arch=compute_90",))
