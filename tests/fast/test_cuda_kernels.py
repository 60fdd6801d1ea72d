"""The hand-written CUDA kernels against the CPU code they replace (skipped without a GPU), and the
promise that importing minicnn never needs CuPy (runs everywhere)."""
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.fast import cuda_kernels
from minicnn.functional.reference import local_response_norm_naive

_no_gpu = pytest.mark.skipif(not mc.cuda.is_available(), reason="CuPy with a GPU is not available")


def needs_gpu(test):
    """Mark ``test`` as a GPU test (pytest.ini's ``gpu`` marker) and skip it without CuPy and a GPU."""
    return pytest.mark.gpu(_no_gpu(test))

POOLS = [  # kernel, stride, padding, ceil_mode
    (2, None, 0, False), (3, 2, 0, False), (3, 1, 1, False), (3, 2, 1, True), ((2, 3), (1, 2), (1, 1), True),
]


def _max_pool_on(device, x, gy, cfg):
    t = mc.Tensor(backend.to_device(x, device), requires_grad=True)
    y = F.max_pool2d(t, *cfg)
    y.backward(backend.to_device(gy, device))
    return backend.to_numpy(y.data), backend.to_numpy(t.grad)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", POOLS, ids=str)
def test_cuda_max_pool_matches_cpu(cfg, dtype):
    """The max-pool kernels give the CPU's gradient (ties,
    overlaps and padding included); sums may be taken in another order, so float32 agrees to
    rounding."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-3, 4, (4, 5, 17, 15)), 0).astype(dtype)  # ReLU-like: many ties
    x += (rng.random(x.shape) < 0.5) * rng.standard_normal(x.shape).astype(dtype)
    cuda_kernels._kernels.clear()
    gy = rng.standard_normal(F.max_pool2d(mc.Tensor(x), *cfg).shape).astype(dtype)
    y_cpu, g_cpu = _max_pool_on("cpu", x, gy, cfg)
    y_gpu, g_gpu = _max_pool_on("cuda", x, gy, cfg)
    assert {("minicnn_max_pool_forward", np.dtype(dtype)), ("minicnn_max_pool_backward", np.dtype(dtype))} <= {
        key[:2] for key in cuda_kernels._kernels}  # the kernels, not the reference code, ran
    np.testing.assert_array_equal(y_gpu, y_cpu)
    assert g_gpu.dtype == dtype
    np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@needs_gpu
def test_cuda_max_pool_at_alexnet_scale():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 96, 55, 55)).astype(np.float32)
    gy = rng.standard_normal((4, 96, 27, 27)).astype(np.float32)
    y_cpu, g_cpu = _max_pool_on("cpu", x, gy, (3, 2, 0, False))
    y_gpu, g_gpu = _max_pool_on("cuda", x, gy, (3, 2, 0, False))
    np.testing.assert_array_equal(y_gpu, y_cpu)
    np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-5, atol=1e-6)


def test_importing_minicnn_needs_no_cupy():
    """With CuPy made unimportable, minicnn imports and max-pools (forward and backward) on the CPU,
    and no CUDA kernel has been built."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"  # any 'import cupy' now raises ImportError
        "import numpy as np, minicnn as mc, minicnn.functional as F\n"
        "from minicnn.fast import cuda_kernels\n"
        "assert not mc.cuda.is_available() and cuda_kernels._kernels == {}\n"
        "t = mc.Tensor(np.arange(32.0).reshape(1, 2, 4, 4), requires_grad=True)\n"
        "F.max_pool2d(t, 3, 1, 1).sum().backward()\n"
        "assert cuda_kernels._kernels == {}\n"
        "print('ok', float(t.grad.sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "32.0"]


# ------------------------------------------------------------------------------------------------
# gpu_kernels: the fused col2im and local response normalization kernels (called directly)
# ------------------------------------------------------------------------------------------------
_GPU_TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}

COL2IMS = [  # x_shape, kh, kw, stride, padding
    ((2, 3, 7, 7), 3, 3, (1, 1), (1, 1)), ((2, 3, 8, 9), 3, 3, (2, 2), (1, 1)),
    ((3, 2, 9, 7), 2, 3, (3, 2), (0, 2)), ((2, 3, 31, 31), 11, 11, (4, 4), (2, 2)),  # AlexNet conv1
    ((1, 4, 5, 6), 1, 1, (2, 3), (0, 0)), ((2, 2, 6, 6), 4, 4, (1, 2), (2, 2)),
]


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", COL2IMS, ids=str)
def test_cuda_col2im_kernel_matches_cpu(cfg, dtype):
    import cupy

    from minicnn.fast import cuda_kernels as gpu_kernels
    from minicnn.functional import conv

    x_shape, kh, kw, stride, padding = cfg
    ho = conv.conv_output_size(x_shape[2], kh, stride[0], padding[0])
    wo = conv.conv_output_size(x_shape[3], kw, stride[1], padding[1])
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((x_shape[1] * kh * kw, x_shape[0] * ho * wo)).astype(dtype)
    x = gpu_kernels.col2im_cuda(cupy, cupy.asarray(cols), x_shape, kh, kw, stride, padding)
    assert ("minicnn_col2im", np.dtype(dtype), np.dtype(np.int32)) in gpu_kernels._kernels  # 32-bit indices
    assert x.dtype == dtype and x.shape == x_shape
    np.testing.assert_allclose(cupy.asnumpy(x), conv.col2im(cols, x_shape, kh, kw, stride, padding),
                               **_GPU_TOLERANCE[dtype])


def _lrn_s(a, size, alpha, k):
    """The s that the forward kernel saves for backward, from the plain-loop reference."""
    return local_response_norm_naive(a, size, alpha, 0.75, k)[1]


def _lrn_on_gpu_and_cpu(shape, size, alpha, beta, k, dtype, seed=0):
    """(b, s, da) from the kernels and from ``LocalResponseNorm`` on the CPU, as NumPy arrays."""
    import cupy

    from minicnn.fast import cuda_kernels as gpu_kernels
    from minicnn.functional.lrn import LocalResponseNorm

    rng = np.random.default_rng(seed)
    a = np.maximum(rng.standard_normal(shape) * 3, 0).astype(dtype)  # ReLU-like, as in AlexNet
    g = rng.standard_normal(shape).astype(dtype)
    ref = LocalResponseNorm(size, alpha, beta, k)
    cpu = ref.forward(a), _lrn_s(a, size, alpha, k), ref.backward(g)
    a_gpu = cupy.asarray(a)
    b, s = gpu_kernels.lrn_forward_cuda(cupy, a_gpu, size, alpha, beta, k)
    da = gpu_kernels.lrn_backward_cuda(cupy, a_gpu, s, cupy.asarray(g), size, alpha, beta)
    return [cupy.asnumpy(v) for v in (b, s, da)], cpu


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, shape", [(1, (2, 4, 3, 3)), (2, (3, 4, 5)), (4, (2, 6, 2, 3)),
                                         (5, (2, 7, 3, 3)), (9, (2, 4, 2, 2))], ids=str)
def test_cuda_lrn_kernels_match_cpu(size, shape, dtype):
    gpu, cpu = _lrn_on_gpu_and_cpu(shape, size, 0.5, 0.75, 2.0, dtype)
    for got, want in zip(gpu, cpu):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_GPU_TOLERANCE[dtype])


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_lrn_kernels_at_alexnet_scale(dtype):
    """AlexNet's first LRN: (4, 96, 55, 55), the paper's size 5, alpha 1e-4 (5e-4 here), beta 0.75, k 2."""
    gpu, cpu = _lrn_on_gpu_and_cpu((4, 96, 55, 55), 5, 5e-4, 0.75, 2.0, dtype, seed=1)
    for got, want in zip(gpu, cpu):
        np.testing.assert_allclose(got, want, **_GPU_TOLERANCE[dtype])


@needs_gpu
def test_ops_on_cuda_use_the_fused_kernels():
    """conv2d's backward with stride 2 (col2im) and local_response_norm run the CUDA kernels when
    their arrays are CuPy's, and give the CPU's numbers."""
    from minicnn.fast import cuda_kernels as gpu_kernels
    gpu_kernels._kernels.clear()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        xt = mc.Tensor(backend.to_device(x, device), requires_grad=True)
        wt = mc.Tensor(backend.to_device(w, device), requires_grad=True)
        y = F.local_response_norm(F.conv2d(xt, wt, stride=2, padding=1), 3)
        y.backward(backend.to_device(np.ones(y.shape, np.float32), device))
        results[device] = [backend.to_numpy(a) for a in (y.data, xt.grad, wt.grad)]
    names = {key[0] for key in gpu_kernels._kernels}  # keys: (name, dtype, index type)
    assert {"minicnn_col2im", "minicnn_lrn_forward", "minicnn_lrn_backward"} <= names
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# 2026-12-05: 64-bit index variants, batch norm's two passes, dropout's device hash, cross-entropy
# a block per row (checked on the CPU in test_cuda_kernel_sources.py; here compiled by NVRTC)
# ------------------------------------------------------------------------------------------------
def _kernels_on_gpu(x, monkeypatch=None):
    """im2col, col2im, batch norm's statistics and gradient sums, channel sums, cross-entropy of
    ``x``, on the GPU."""
    import cupy
    xg = cupy.asarray(x)
    cols = cuda_kernels.im2col_cuda(cupy, xg, 3, 3, (2, 1), (1, 1))
    back = cuda_kernels.col2im_cuda(cupy, cols, x.shape, 3, 3, (2, 1), (1, 1))
    stats = cuda_kernels.bn_statistics_cuda(cupy, xg, None, None, None, None, 1e-5, 0.1)
    sums = cuda_kernels.bn_gradient_sums_cuda(cupy, xg, xg, stats[0], stats[2])
    bias = cuda_kernels.channel_sums_cuda(cupy, xg)
    z = xg.reshape(x.shape[0], -1)
    loss, p = cuda_kernels.cross_entropy_forward_cuda(cupy, z, cupy.zeros(x.shape[0], dtype=np.int64))
    return [cupy.asnumpy(a) for a in (cols, back, *stats, *sums, bias, loss, p)]


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernels_indexed_in_64_bits_match_32_bits(dtype, monkeypatch):
    x = np.random.default_rng(0).standard_normal((4, 16, 9, 30)).astype(dtype)  # 270 classes per row
    narrow = _kernels_on_gpu(x)
    monkeypatch.setattr(cuda_kernels, "INT32_LIMIT", 100)  # every launch now takes int64 indices
    wide = _kernels_on_gpu(x)
    assert any(key[2] == np.int64 for key in cuda_kernels._kernels)
    for a, b in zip(narrow, wide):
        np.testing.assert_array_equal(a, b)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_batch_norm_sums_over_many_blocks_match_the_reference(dtype):
    import cupy
    x = (np.random.default_rng(1).standard_normal((128, 16, 32, 32)) * 3 + 5).astype(dtype)  # 64 parts
    mean, var, inv_std, _, _ = cuda_kernels.bn_statistics_cuda(cupy, cupy.asarray(x), None, None, None, None,
                                                              1e-5, 0.1)
    np.testing.assert_allclose(cupy.asnumpy(mean), x.mean(axis=(0, 2, 3), dtype=np.float64), **_GPU_TOLERANCE[dtype])
    np.testing.assert_allclose(cupy.asnumpy(var), x.var(axis=(0, 2, 3), dtype=np.float64), **_GPU_TOLERANCE[dtype])


@needs_gpu
def test_cuda_dropout_mask_is_the_documented_hash_bit_for_bit():
    import cupy
    seed, p, n = np.uint64(0xDEADBEEF12345678), 0.3, 100_003
    y = cupy.asnumpy(cuda_kernels.dropout_cuda(cupy, cupy.ones(n, dtype=np.float32), seed, p, 1.0))
    u64 = np.uint64
    z = seed + np.arange(1, n + 1, dtype=u64) * u64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
    z = z ^ (z >> u64(31))
    np.testing.assert_array_equal(y != 0, (z >> u64(11)) >= cuda_kernels.dropout_threshold(p))


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_cross_entropy_with_1000_classes_matches_the_reference(dtype):
    import cupy
    from minicnn.functional.loss import CrossEntropy
    rng = np.random.default_rng(2)
    z, t = (rng.standard_normal((8, 1000)) * 10).astype(dtype), rng.integers(0, 1000, 8)
    ref = CrossEntropy(t)
    expected = ref.forward(z)
    loss, p = cuda_kernels.cross_entropy_forward_cuda(cupy, cupy.asarray(z), cupy.asarray(t))
    np.testing.assert_allclose(float(loss.mean()), expected, **_GPU_TOLERANCE[dtype])
    np.testing.assert_allclose(cupy.asnumpy(p), ref.p, **_GPU_TOLERANCE[dtype])
