"""ReLU and linear on the CPU: the same math on minicnn's threads.

* ``ThreadedReLU``: a memory-bound op; pieces of the batch on several threads run about 1.5x
  faster on two cores (``threads.batch_pieces``).
* ``ThreadedLinear``: the three products of a linear layer through ``threads.matmul``, which
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
    """y = x W^T + b, dx = G W, dW = G^T x with each product on threads (``threads.matmul``)."""

    def forward(self, x, weight, bias):
        self.x_shape, self.weight = x.shape, weight
        self.x2 = x.reshape(-1, x.shape[-1])                  # (N*, in)
        y = matmul(self.x2, weight.T)
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])                       # (N*, out)
        dx = matmul(g2, self.weight).reshape(self.x_shape) if need_x else None
        dw = matmul(g2.T, self.x2) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


register(ReLU, ThreadedReLU, devices=("cpu",))
register(Linear, ThreadedLinear, devices=("cpu",))
