"""ReLU and linear on the CPU: the same math on minicnn's threads.

* ``ThreadedReLU``: a memory-bound op; pieces of the batch on several threads run about 1.5x
  faster on two cores (``threads.batch_pieces``).
* ``ThreadedLinear``: the reference's ``matmul`` step replaced by ``threads.matmul``, which
  splits one large product into blocks, each a one-thread BLAS call (VGG-11's classifier dW:
  430 -> 51 ms on the reference machine, docs/performance.md).

Both compute exactly what the references in ``minicnn.functional`` compute (tested equal).
"""
from .. import backend
from ..functional.activation import ReLU
from ..functional.linear import Linear
from .registry import register
from .threads import batch_pieces, matmul, parallel_map


class ThreadedReLU(ReLU):
    """y = max(x, 0), mask = x > 0, and dx = g * mask, in pieces of the batch on threads."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.mask, y = xp.empty(x.shape, dtype=bool), xp.empty_like(x)

        def piece(b):
            xp.greater(x[b], 0, out=self.mask[b])
            xp.maximum(x[b], 0, out=y[b])
        parallel_map(piece, batch_pieces(x, xp), xp)
        return y

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.empty_like(g)
        parallel_map(lambda b: xp.multiply(g[b], self.mask[b], out=dx[b]), batch_pieces(g, xp), xp)
        return dx


class ThreadedLinear(Linear):
    """The reference ``Linear`` with each of its three products on threads (``threads.matmul``)."""

    def matmul(self, a, b):
        return matmul(a, b)


register(ReLU, ThreadedReLU, devices=("cpu",))
register(Linear, ThreadedLinear, devices=("cpu",))
