"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (PyTorch's rule).

For each parameter ``p`` with gradient ``g``, one ``step()`` does::

    g   = g + weight_decay * p                       # L2 penalty (if weight_decay != 0)
    buf = g                            on the first step   (if momentum != 0)
    buf = momentum * buf + (1 - dampening) * g        afterwards
    g   = g + momentum * buf  if nesterov  else  buf
    p   = p - lr * g

Note that PyTorch (and so minicnn) folds the learning rate in *after* the momentum, unlike
Sutskever et al., and starts the buffer at the first gradient rather than at zero.
"""
from .. import backend
from ..fast import registry
from .optimizer import Optimizer, Params


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)``."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if lr is None:
            raise ValueError("SGD: lr is required")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group):
        super()._check_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']!r}")
        if group["weight_decay"] < 0:
            raise ValueError(f"SGD: invalid weight_decay {group['weight_decay']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        """Update every parameter that has a gradient (in place), one at a time: the formulas
        above (PyTorch's single-tensor form). On a GPU, ``minicnn.fast`` updates a whole group in
        one kernel instead (:func:`minicnn.fast.registry.step_group`), with the same formulas."""
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if registry.step_group("sgd", self, group, params):
                continue
            for p in params:
                buf, first = self.momentum_buffer(p, group)
                sgd_update(p.data, p.grad.data, buf, first=first, **self.hyper(group))

    @staticmethod
    def hyper(group):
        """The group's settings, as ``sgd_update`` takes them."""
        return dict(lr=float(group["lr"]), momentum=float(group["momentum"]),
                    dampening=float(group["dampening"]), weight_decay=float(group["weight_decay"]),
                    nesterov=bool(group["nesterov"]))

    def momentum_buffer(self, p, group):
        """``(buffer, first)``: ``p``'s momentum buffer (made on its first step, then ``first`` is
        true and ``sgd_update`` fills it with the gradient), or ``(None, False)`` without momentum."""
        if group["momentum"] == 0:
            return None, False
        state = self.state.setdefault(p, {})
        first = "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = backend.get_array_module(p.data).empty_like(p.data)
        return state["momentum_buffer"], first


def sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """One SGD step of one parameter, in place: ``p`` (and the momentum buffer ``buf``, unless
    ``momentum`` is 0) change; ``first`` says the buffer is new (it then starts at the gradient).
    The formulas are the module docstring's."""
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += g if dampening == 0 else (1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
