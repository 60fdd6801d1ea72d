"""The CUDA kernels run as a GPU runs them: blocks of 256 threads, here on the CPU.

``tests/fast/test_cuda_kernel_sources.py`` runs every kernel as one block of one thread, which
cannot show what only many threads do. ``cuda_on_cpu.build_kernels(blocks=True)`` runs each launch
as its grid of blocks, each block as 256 threads taking turns between ``__syncthreads()``
barriers. Here: first that this simulation catches broken kernels (a missing barrier, barriers
that threads do not all reach); then every kernel's wrapper with the real block size and a grid
capped at a few blocks, so that each thread takes several elements and each block several
channels or rows: elementwise kernels give the one-thread build's results bit for bit, and the
block sums give NumPy's sums to rounding.
"""
import numpy as np
import pytest

from minicnn import backend, testing
from minicnn.fast import cuda_kernels as gk
from minicnn.testing import cuda_on_cpu
from minicnn.functional import conv

CAP = 3
"""Blocks per launch (``MAX_BLOCKS``) in these tests: grids wrap, as they do on a GPU for large arrays."""


@pytest.fixture(scope="module")
def builds():
    """``{"one thread": FakeCupy, "blocks": FakeCupy}`` over the CPU builds of every kernel."""
    if cuda_on_cpu.cannot_build(blocks=True):
        pytest.skip(cuda_on_cpu.cannot_build(blocks=True))
    return {"one thread": cuda_on_cpu.FakeCupy(cuda_on_cpu.build_kernels(indexes=(np.int32,))),
            "blocks": cuda_on_cpu.FakeCupy(cuda_on_cpu.build_kernels(blocks=True, indexes=(np.int32,)))}


@pytest.fixture
def run(builds, monkeypatch):
    """``run(fn)`` -> ``{"one thread": fn(cupy), "blocks": fn(cupy)}`` with the grid capped at
    ``CAP`` blocks; the kernel cache is emptied before each build, so each gets its own kernels."""
    monkeypatch.setattr(gk, "MAX_BLOCKS", CAP)

    def both(fn):
        results = {}
        for mode, cupy in builds.items():
            monkeypatch.setattr(gk, "_kernels", {})
            results[mode] = fn(cupy)
            kernels = list(gk._kernels.values())
            assert kernels and all((k.misuse is not None) == (mode == "blocks") for k in kernels)
        return results
    return both


# ------------------------------------------------------------------------------------------------
# The simulation catches what breaks on a GPU
# ------------------------------------------------------------------------------------------------
BROKEN = r"""
extern "C" __global__ void minicnn_test_block_sums(const T* __restrict__ x, T* __restrict__ out, I n,
                                                   I missing_barrier, I divergent, I early_exit)
{
    __shared__ T shared[256];
    if (early_exit && threadIdx.x == 5) return;
    shared[threadIdx.x] = threadIdx.x < n ? x[blockIdx.x * n + threadIdx.x] : (T)0;
    if (divergent && threadIdx.x % 2) __syncthreads();
    else if (!missing_barrier) __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = shared[0];
}
"""


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A block-sum kernel that can be broken three ways, built as blocks of threads."""
    if cuda_on_cpu.cannot_build(blocks=True):
        pytest.skip(cuda_on_cpu.cannot_build(blocks=True))
    folder = tmp_path_factory.mktemp("broken")
    (folder / "block_sums.cu").write_text(BROKEN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gk, "KERNELS", folder)
        patch.setattr(gk, "FAMILIES", {"block_sums": ("minicnn_test_block_sums",)})
        libraries = cuda_on_cpu.build_kernels(dtypes=(np.float64,), indexes=(np.int32,), blocks=True,
                                              directory=folder)
        source = gk.source("block_sums", np.float64, np.int32)
    return cuda_on_cpu.CpuRawModules(libraries)(source).get_function("minicnn_test_block_sums")


def _block_sums(kernel, x, missing_barrier=0, divergent=0, early_exit=0):
    out = np.zeros(x.shape[0])
    ints = tuple(np.int32(v) for v in (x.shape[1], missing_barrier, divergent, early_exit))
    kernel((x.shape[0],), (256,), (np.ascontiguousarray(x), out) + ints)
    return out


def test_a_correct_block_sum_runs_in_every_block(broken):
    x = np.random.default_rng(0).standard_normal((4, 200))
    np.testing.assert_allclose(_block_sums(broken, x), x.sum(axis=1), rtol=1e-12)


def test_a_missing_barrier_gives_a_wrong_sum(broken):
    """Threads run in turn between barriers: in block 0 (ascending order) thread 0 goes on to the
    tree without the barrier after the stores and reads slots that threads 1..255 have not yet
    written. (Block 1 runs them descending, which catches the opposite hazard, a slot overwritten
    before a lower thread read it; this tree only has the first.)"""
    x = np.random.default_rng(1).standard_normal((2, 256))
    sums = _block_sums(broken, x, missing_barrier=1)
    assert not np.allclose(sums[0], x[0].sum())
    np.testing.assert_allclose(_block_sums(broken, x), x.sum(axis=1), rtol=1e-12)  # with the barrier


def test_threads_at_different_barriers_are_reported(broken):
    with pytest.raises(RuntimeError, match="waited at different __syncthreads"):
        _block_sums(broken, np.ones((2, 8)), divergent=1)


def test_a_barrier_after_a_thread_left_is_reported(broken):
    with pytest.raises(RuntimeError, match="after another had left the kernel"):
        _block_sums(broken, np.ones((1, 8)), early_exit=1)


def test_a_launch_too_large_to_simulate_is_refused(broken):
    with pytest.raises(ValueError, match="at most"):
        broken((cuda_on_cpu.BLOCKS_THREADS_LIMIT // 256 + 1,), (256,), (np.ones(1), np.ones(1)) + (np.int32(0),) * 4)


def test_the_launcher_takes_the_grid_then_the_kernels_parameters():
    text = cuda_on_cpu.launcher(gk.source("activation", np.float32, np.int32), "minicnn_relu_backward")
    assert text.startswith('extern "C" void minicnn_relu_backward_in_blocks(unsigned grid, unsigned block, '
                           "const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx, I total)")
    assert "minicnn_relu_backward(y, g, dx, total);" in text
    with pytest.raises(ValueError, match="no kernel 'minicnn_nothing'"):
        cuda_on_cpu.launcher(gk.source("activation", np.float32), "minicnn_nothing")


# ------------------------------------------------------------------------------------------------
# Elementwise kernels: the same arithmetic per element, so the same bits, whatever the threads
# ------------------------------------------------------------------------------------------------
def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pool_case(cupy, dtype, kind):
    x, g = _x((2, 4, 15, 13), dtype), _x((2, 4, 8, 7), dtype, 1)  # 3x3/2, padding 1: 8x7 windows
    if kind == "max":
        y, argmax = gk.max_pool_forward_cuda(cupy, x, (3, 3), (2, 2), (1, 1), (8, 7))
        return y, gk.max_pool_backward_cuda(cupy, g, argmax, x.shape, (3, 3), (2, 2), (1, 1))
    return (gk.avg_pool_forward_cuda(cupy, x, (3, 3), (2, 2), (1, 1), (8, 7)),
            gk.avg_pool_backward_cuda(cupy, g, x.shape, (3, 3), (2, 2), (1, 1)))


def _lrn_case(cupy, dtype):
    a, g = np.abs(_x((2, 7, 9, 8), dtype)), _x((2, 7, 9, 8), dtype, 1)
    b, s = gk.lrn_forward_cuda(cupy, a, 5, 1e-2, 0.75, 2.0)
    return b, s, gk.lrn_backward_cuda(cupy, a, s, g, 5, 1e-2, 0.75)


def _bn_elementwise_case(cupy, dtype):
    x, g = _x((3, 5, 11, 7), dtype), _x((3, 5, 11, 7), dtype, 1)
    mean, inv_std, scale, shift, sum_g, sum_gxhat = (np.abs(_x(5, dtype, k)) + 0.5 for k in range(2, 8))
    return (gk.bn_forward_cuda(cupy, x, mean, scale, shift),
            gk.bn_backward_cuda(cupy, g, x, mean, inv_std, scale, sum_g, sum_gxhat, True),
            gk.bn_backward_cuda(cupy, g, x, mean, inv_std, scale, sum_g, sum_gxhat, False))


ELEMENTWISE = {  # name -> fn(cupy, dtype) -> outputs; every launch covers more than CAP * 256 threads
    "im2col": lambda cupy, dtype: (gk.im2col_cuda(cupy, _x((3, 5, 13, 12), dtype), 3, 2, (2, 1), (1, 0)),),
    "col2im": lambda cupy, dtype: (gk.col2im_cuda(cupy, _x((5 * 3 * 2, 3 * 7 * 11), dtype), (3, 5, 13, 12),
                                                  3, 2, (2, 1), (1, 0)),),
    "max pooling": lambda cupy, dtype: _pool_case(cupy, dtype, "max"),
    "average pooling": lambda cupy, dtype: _pool_case(cupy, dtype, "avg"),
    "local response norm": _lrn_case,
    "batch norm forward and dx": _bn_elementwise_case,
    "relu backward": lambda cupy, dtype: (gk.relu_backward_cuda(cupy, _x((7, 300), dtype), _x((7, 300), dtype, 1)),),
    "cross-entropy backward": lambda cupy, dtype: (gk.cross_entropy_backward_cuda(
        cupy, _x((9, 150), dtype), np.arange(9) * 7, np.asarray(0.5, dtype=dtype)),),
    "dropout": lambda cupy, dtype: (gk.dropout_cuda(cupy, _x((5, 400), dtype), 12345, 0.3, 1 / 0.7),),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_kernels_in_blocks_give_the_one_thread_results(run, name, dtype):
    results = run(lambda cupy: ELEMENTWISE[name](cupy, dtype))
    for blocks, one in zip(results["blocks"], results["one thread"]):
        assert blocks.dtype == dtype
        np.testing.assert_array_equal(blocks, one)
    if name == "im2col":
        np.testing.assert_array_equal(results["blocks"][0], conv.im2col(_x((3, 5, 13, 12), dtype), 3, 2, (2, 1),
                                                                        (1, 0)))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_optimizer_kernels_in_blocks_give_the_one_thread_results(builds, monkeypatch, optimizer):
    """Parameters of several sizes (one empty) laid end to end: threads find their parameter in
    the address table, across parameter boundaries and grid wraps."""
    monkeypatch.setattr(gk, "MAX_BLOCKS", CAP)
    shapes = [(7, 5), (0,), (300,), (40, 20), (3,)]
    results = {}
    for mode, cupy in builds.items():
        monkeypatch.setattr(gk, "_kernels", {})
        rng = np.random.default_rng(3)
        params, grads, buf1, buf2, buf3 = ([backend.to_device(rng.standard_normal(s), "standin") for s in shapes]
                                          for _ in range(5))
        with cuda_on_cpu.cuda_paths_on_standin(cupy.libraries):
            for first in (True, False):
                if optimizer == "sgd":
                    gk.sgd_step_cuda(testing.standin, params, grads, buf1, [first] * 5, lr=0.1, momentum=0.9,
                                     dampening=0.0, weight_decay=1e-3, nesterov=True)
                else:
                    gk.adam_step_cuda(testing.standin, params, grads, buf1, buf2, buf3, [1 + (not first)] * 5,
                                      lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2,
                                      decoupled=True, amsgrad=True)
        results[mode] = [backend.to_numpy(a) for a in params + buf1 + buf2 + buf3]
    for blocks, one in zip(results["blocks"], results["one thread"]):
        np.testing.assert_array_equal(blocks, one)


# ------------------------------------------------------------------------------------------------
# Block sums: each block's threads share its values, then add them in a tree
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (40, 3, 7), (70, 3, 11), (2, 2, 300), (600, 2), (3, 2, 256)])
@pytest.mark.parametrize("part_size", [gk.BN_PART_SIZE, 300])
def test_batch_norm_sums_in_blocks_match_numpy(run, monkeypatch, shape, dtype, part_size):
    """The partial sums step through (n, p) by blockDim.x values per thread: fewer values than
    threads, or several per thread with fewer positions S than threads, more, exactly as many,
    a single one; channels are cut into several parts (chunks of 257 values for (70, 3, 11)),
    and each block takes several (channel, part) pieces in turn."""
    monkeypatch.setattr(gk, "BN_PART_SIZE", part_size)
    x, g = (_x(shape, dtype, 4) * 3 + 1).astype(dtype), _x(shape, dtype, 5)
    axes = (0,) + tuple(range(2, len(shape)))

    def sums(cupy):
        rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
        mean, var, inv_std, scale, shift = gk.bn_statistics_cuda(cupy, x, None, None, rm, rv, 1e-5, 0.1)
        sum_g, sum_gxhat = gk.bn_gradient_sums_cuda(cupy, g, x, mean, inv_std)
        return mean, var, inv_std, rm, rv, sum_g, sum_gxhat, gk.channel_sums_cuda(cupy, g)
    results = run(sums)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    m = x.size // shape[1]
    xhat = (x64 - mean.reshape((1, -1) + (1,) * (len(shape) - 2))) / np.sqrt(
        var.reshape((1, -1) + (1,) * (len(shape) - 2)) + 1e-5)
    expected = (mean, var, 1 / np.sqrt(var + 1e-5), 0.1 * mean, 0.9 + 0.1 * var * m / (m - 1),
                g64.sum(axis=axes), (g64 * xhat).sum(axis=axes), g64.sum(axis=axes))
    tolerance = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for mode in results:
        for actual, wanted in zip(results[mode], expected):
            assert actual.dtype == dtype
            np.testing.assert_allclose(actual, wanted, **tolerance, err_msg=mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [3, 255, 1000])
def test_cross_entropy_forward_in_blocks_matches_numpy(run, classes, dtype):
    """A block per row, its threads sharing the classes (fewer than threads, or several each),
    a tree for the maximum and one for the sum; each block takes several rows in turn."""
    z = (_x((7, classes), dtype, 6) * 20).astype(dtype)
    t = np.random.default_rng(7).integers(0, classes, 7)
    results = run(lambda cupy: gk.cross_entropy_forward_cuda(cupy, z, t))
    z64 = z.astype(np.float64)
    shifted = z64 - z64.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(7), t]
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for mode, (actual_loss, actual_p) in results.items():
        np.testing.assert_allclose(actual_loss, loss, **tolerance, err_msg=mode)
        np.testing.assert_allclose(actual_p, p, **tolerance, err_msg=mode)


def test_why_the_kernels_cannot_be_built_here_is_said(monkeypatch):
    monkeypatch.setattr(cuda_on_cpu, "cxx_compiler", lambda: ["g++"])
    assert cuda_on_cpu.cannot_build() is None
    monkeypatch.setattr(cuda_on_cpu.sys, "platform", "win32")
    assert cuda_on_cpu.cannot_build() is None and "ucontext.h" in cuda_on_cpu.cannot_build(blocks=True)
    monkeypatch.setattr(cuda_on_cpu, "cxx_compiler", lambda: None)
    assert "no C++ compiler" in cuda_on_cpu.cannot_build()
