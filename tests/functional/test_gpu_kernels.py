"""The hand-written CUDA kernels against the CPU code they replace (skipped without a GPU), and the
promise that importing minicnn never needs CuPy (runs everywhere)."""
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.functional import pooling

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
def test_cuda_max_pool_scatter_matches_cpu(cfg, dtype):
    """The atomicAdd scatter gives the CPU's gradient (ties, overlaps and padding included); only the
    order of the atomic adds may differ, so float32 sums agree to rounding."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-3, 4, (4, 5, 17, 15)), 0).astype(dtype)  # ReLU-like: many ties
    x += (rng.random(x.shape) < 0.5) * rng.standard_normal(x.shape).astype(dtype)
    pooling._cuda_kernels.clear()
    gy = rng.standard_normal(F.max_pool2d(mc.Tensor(x), *cfg).shape).astype(dtype)
    y_cpu, g_cpu = _max_pool_on("cpu", x, gy, cfg)
    y_gpu, g_gpu = _max_pool_on("cuda", x, gy, cfg)
    assert "max_pool_scatter" in pooling._cuda_kernels  # the kernel, not the generic fallback, ran
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
        "from minicnn.functional import pooling\n"
        "assert not mc.cuda.is_available() and pooling._cuda_kernels == {}\n"
        "t = mc.Tensor(np.arange(32.0).reshape(1, 2, 4, 4), requires_grad=True)\n"
        "F.max_pool2d(t, 3, 1, 1).sum().backward()\n"
        "assert pooling._cuda_kernels == {}\n"
        "print('ok', float(t.grad.sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "32.0"]
