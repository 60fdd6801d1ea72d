"""Assignment 2, Q7: three optimisers, written from their update formulas.

``network.py`` trains with ``optim.SGD(..., momentum=0.9)``, minicnn's optimiser. Here you write
the update rules yourself, from the formulas in the README (section Q7), with the interface of
minicnn's and PyTorch's optimisers (``zero_grad`` and ``step``), so that yours can train the
network of Q6 instead: ``network.train_step(model, SGDMomentum(model.parameters(), lr=0.05), x, y)``.

The plumbing is written: ``Optimizer.step`` visits every parameter that has a gradient, counts its
steps, and calls ``update(i, p, g)`` with the parameter's values ``p`` and gradient ``g`` as NumPy
arrays. Your job is each ``update``: change ``p`` **in place** (``p -= ...``; ``p = p - ...`` would
only rebind a local name and leave the parameter as it was), and keep the optimiser's state (the
arrays made in ``__init__``) up to date, in place too.
"""
import numpy as np


class Optimizer:
    """What the three optimisers share: the parameters (minicnn tensors), ``zero_grad`` and
    ``step``, which calls ``self.update(i, p, g)`` for the ``i``-th parameter, after adding one to
    ``self.steps[i]``, its number of updates so far (1 at its first)."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no parameters to optimise (an empty list)")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr!r}")
        self.lr = lr
        self.steps = [0] * len(self.params)

    def zero_grad(self):
        """Forget the gradients of the last backward pass (``backward`` adds to them)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.steps[i] += 1
                self.update(i, p.data, p.grad.data)

    def update(self, i, p, g):
        raise NotImplementedError(f"{type(self).__name__} defines no update")


class SGDMomentum(Optimizer):
    """Stochastic gradient descent with momentum (``nesterov=False``) or with Nesterov's momentum
    (``nesterov=True``), as PyTorch's ``optim.SGD(params, lr, momentum, nesterov=...)`` computes
    them. ``self.velocity[i]`` is the velocity ``v`` of parameter ``i``, zero before its first step.
    """

    def __init__(self, params, lr, momentum=0.9, nesterov=False):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGDMomentum: momentum must lie in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("SGDMomentum: Nesterov's momentum needs a momentum > 0, got 0")
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def update(self, i, p, g):
        """One step of parameter ``i``: update ``v = self.velocity[i]``, then ``p``, in place."""
        v = self.velocity[i]
        # BEGIN SOLUTION (hint: the README's two lines for v and p; with nesterov, p moves by the look-ahead instead of v)
        v *= self.momentum
        v += g
        if self.nesterov:
            p -= self.lr * (g + self.momentum * v)
        else:
            p -= self.lr * v
        # END SOLUTION


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), as PyTorch's ``optim.Adam(params, lr, betas, eps)`` computes it.

    ``self.m[i]`` and ``self.v[i]`` are the running averages of parameter ``i``'s gradient and of
    its square (zero before its first step); ``self.steps[i]`` is ``t``, the number of the step
    being taken (1 at the first).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: each of betas must lie in [0, 1), got {tuple(betas)!r}")
        if not eps >= 0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps!r}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def update(self, i, p, g):
        """Step ``t = self.steps[i]`` of parameter ``i``: update ``m``, ``v`` and ``p`` in place."""
        m, v, t = self.m[i], self.v[i], self.steps[i]
        # BEGIN SOLUTION (hint: the README's lines in order; t enters only the bias corrections)
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        # END SOLUTION
