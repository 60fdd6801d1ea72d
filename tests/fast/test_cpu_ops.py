"""ReLU in pieces of the batch on threads (minicnn/fast/cpu_ops.py)."""
import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn.fast import threads


def test_relu_in_batch_pieces_on_threads_gives_the_same_bits(on_one_and_three_threads):
    x_np = np.random.default_rng(0).standard_normal((7, 3, 5))
    g_np = np.random.default_rng(1).standard_normal((7, 3, 5))

    def run():
        x = mc.Tensor(x_np, requires_grad=True)
        y = F.relu(x)
        y.backward(g_np)
        return y.data, x.grad, len(threads.batch_pieces(x_np, np))

    (y1, g1, pieces1), (y3, g3, pieces3) = on_one_and_three_threads(run)
    assert (pieces1, pieces3) == (1, 3)
    np.testing.assert_array_equal(y1, y3)
    np.testing.assert_array_equal(g1, g3)
    np.testing.assert_array_equal(y1, np.maximum(x_np, 0))
    np.testing.assert_array_equal(g1, g_np * (x_np > 0))
