"""Batch norm on groups of channels, on threads (minicnn/fast/batchnorm_cpu.py)."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn.fast import batchnorm_cpu


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 5, 3, 3), (6, 3, 7), (8, 7)])
def test_bn_channel_groups_on_threads_match_one_group(on_one_and_three_threads, shape, training):
    """Large inputs are normalised in groups of channels, one per thread: the same numbers (to
    rounding), running buffers updated for every channel, gradients for every channel."""
    rng = np.random.default_rng(0)
    x_np, g_np = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    C = shape[1]
    w_np, b_np = rng.standard_normal(C), rng.standard_normal(C)

    def run():
        rm, rv = np.zeros(C), np.ones(C)
        x, w, b = (mc.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = F.batch_norm(x, rm, rv, w, b, training=training)
        y.backward(g_np)
        return [y.data, x.grad, w.grad, b.grad, rm, rv], len(batchnorm_cpu._channel_groups(C, x_np.size))

    (one, groups1), (three, groups3) = on_one_and_three_threads(run)
    assert (groups1, groups3) == (1, min(C, 3))
    for a, b in zip(one, three):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
