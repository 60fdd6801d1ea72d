"""Assignment 2: the backward passes of a set of operations, in minicnn's ``Function`` pattern.

Every differentiable operation in minicnn is a subclass of ``mc.Function`` with two methods that
work on NumPy arrays (never on Tensors):

    forward(self, *arrays)        -> the output array; saves on ``self`` what backward needs
    backward(self, g)             -> one gradient per input (a tuple, or a bare array when there
                                     is one input); ``g`` is dL/d(output), shaped like the output

and is applied to tensors as ``Multiply()(a, b)``: minicnn runs ``forward``, records the call in
the graph, and later, during ``loss.backward()``, calls ``backward`` with the gradient of the
output (read docs/autograd.md, section 1).

The forward passes are written. Your job is every ``backward``: replace each
``raise NotImplementedError`` by code that returns the gradient of the loss with respect to each
input, **shaped exactly like that input**. Check each one with ``mc.gradcheck`` (see the README and
``python grader.py``). NumPy only; do not call minicnn's own operations here.
"""
import numpy as np

import minicnn as mc


# ------------------------------------------------------------------------------------------------
# Q1. Elementwise operations
# ------------------------------------------------------------------------------------------------

class Multiply(mc.Function):
    """``y = a * b`` elementwise, for ``a`` and ``b`` of the same shape."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        da = db = None
        # BEGIN SOLUTION (hint: differentiate a * b by a with b held fixed, then by b; then the chain rule with g)
        da = g * self.b
        db = g * self.a
        # END SOLUTION
        return da, db


class Exp(mc.Function):
    """``y = exp(x)`` elementwise."""

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        dx = None
        # BEGIN SOLUTION (hint: what is the derivative of exp(x), and what did forward save that equals it?)
        dx = g * self.y
        # END SOLUTION
        return dx


class Log(mc.Function):
    """``y = log(x)`` elementwise, for positive ``x``."""

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        dx = None
        # BEGIN SOLUTION (hint: differentiate log(x); forward saved the x you need)
        dx = g / self.x
        # END SOLUTION
        return dx


# ------------------------------------------------------------------------------------------------
# Q2. Activations
# ------------------------------------------------------------------------------------------------

class ReLU(mc.Function):
    """``y = max(0, x)`` elementwise."""

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0.0).astype(x.dtype)

    def backward(self, g):
        dx = None
        # BEGIN SOLUTION (hint: the gradient passes where the input was positive)
        dx = g * self.positive
        # END SOLUTION
        return dx


class Sigmoid(mc.Function):
    """``y = 1 / (1 + exp(-x))`` elementwise."""

    def forward(self, x):
        self.y = 1.0 / (1.0 + np.exp(-x))
        return self.y

    def backward(self, g):
        dx = None
        # BEGIN SOLUTION (hint: differentiate 1 / (1 + exp(-x)), then write it with y alone: what is exp(-x) in terms of y?)
        dx = g * self.y * (1.0 - self.y)
        # END SOLUTION
        return dx


class Tanh(mc.Function):
    """``y = tanh(x)`` elementwise."""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        dx = None
        # BEGIN SOLUTION (hint: differentiate sinh / cosh by the quotient rule, then write the result in terms of y = tanh(x))
        dx = g * (1.0 - self.y ** 2)
        # END SOLUTION
        return dx


# ------------------------------------------------------------------------------------------------
# Q3. Matrix product and bias
# ------------------------------------------------------------------------------------------------

class MatMul(mc.Function):
    """``y = a @ b`` for 2-d ``a`` of shape (N, K) and ``b`` of shape (K, M)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        da = db = None
        # BEGIN SOLUTION (hint: match the shapes: (N, M) and (K, M) give (N, K); (N, K) and (N, M) give (K, M))
        da = g @ self.b.T
        db = self.a.T @ g
        # END SOLUTION
        return da, db


class AddBias(mc.Function):
    """``y = x + b``: ``x`` of shape (N, M), ``b`` of shape (M,) added to every row."""

    def forward(self, x, b):
        return x + b

    def backward(self, g):
        dx = db = None
        # BEGIN SOLUTION (hint: b was used by every row: a broadcast in the forward pass is a sum in the backward pass)
        dx = g.copy()
        db = g.sum(axis=0)
        # END SOLUTION
        return dx, db


# ------------------------------------------------------------------------------------------------
# Q4. Softmax cross-entropy
# ------------------------------------------------------------------------------------------------

class SoftmaxCrossEntropy(mc.Function):
    """The mean cross-entropy of ``softmax(scores)`` against integer ``labels``: a 0-d array.

    ``scores`` is (N, C), ``labels`` (N,) integers in [0, C). ``labels`` gets no gradient: return
    ``None`` for it.
    """

    def forward(self, scores, labels):
        shifted = scores - scores.max(axis=1, keepdims=True)       # no overflow
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs, self.labels = np.exp(log_probs), labels.astype(np.int64)
        n = scores.shape[0]
        return np.array(-log_probs[np.arange(n), self.labels].mean(), dtype=scores.dtype)

    def backward(self, g):
        dscores = None
        # BEGIN SOLUTION (hint: derive d(-log p_y) / d s_j for one row, for j = y and j != y; then the mean over rows, times g)
        n = self.probs.shape[0]
        dscores = self.probs.copy()
        dscores[np.arange(n), self.labels] -= 1.0
        dscores *= g / n
        # END SOLUTION
        return dscores, None
