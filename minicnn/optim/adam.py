"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as PyTorch computes them.

For each parameter ``p`` with gradient ``g``, step ``t = 1, 2, ...``::

    g  = g + weight_decay * p                     # Adam only: L2 penalty folded into g
    p  = p * (1 - lr * weight_decay)              # AdamW only: decoupled weight decay
    m  = beta1 * m + (1 - beta1) * g              # first moment  (m, v start at 0)
    v  = beta2 * v + (1 - beta2) * g * g          # second moment
    m_hat = m / (1 - beta1 ** t)                  # bias corrections
    v_hat = v / (1 - beta2 ** t)
    p  = p - lr * m_hat / (sqrt(v_hat) + eps)

(computed as PyTorch does: ``p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)``).
With ``amsgrad=True`` the running maximum of ``v`` replaces ``v`` in the denominator.
"""
import math

from .. import backend
from ..fast import registry
from .optimizer import Optimizer, Params


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``."""

    decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_group(self, group):
        super()._check_group(group)
        name = type(self).__name__
        group["betas"] = tuple(float(b) for b in group["betas"])
        if len(group["betas"]) != 2 or not all(0.0 <= b < 1.0 for b in group["betas"]):
            raise ValueError(f"{name}: invalid betas {group['betas']!r}; each must lie in [0, 1)")
        if group["eps"] < 0:
            raise ValueError(f"{name}: invalid eps {group['eps']!r}")
        if group["weight_decay"] < 0:
            raise ValueError(f"{name}: invalid weight_decay {group['weight_decay']!r}")

    def step(self) -> None:
        """Update every parameter that has a gradient (in place), one at a time: the formulas
        above (PyTorch's single-tensor form). On a GPU, ``minicnn.fast`` updates a whole group in
        one kernel instead (:func:`minicnn.fast.registry.step_group`), with the same formulas."""
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if registry.step_group("adam", self, group, params):
                continue
            for p in params:
                state = self.moments(p, group)
                adam_update(p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"],
                            state.get("max_exp_avg_sq"), state["step"], **self.hyper(group))

    def hyper(self, group):
        """The group's settings, as ``adam_update`` takes them."""
        beta1, beta2 = (float(b) for b in group["betas"])
        return dict(lr=float(group["lr"]), beta1=beta1, beta2=beta2, eps=float(group["eps"]),
                    weight_decay=float(group["weight_decay"]), decoupled=self.decoupled,
                    amsgrad=bool(group["amsgrad"]))

    def moments(self, p, group):
        """``p``'s state for this step: the moments (zero at first) and the step count ``t``,
        already advanced to this step."""
        state = self.state.setdefault(p, {})
        if not state:
            xp = backend.get_array_module(p.data)
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        return state


def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, t, lr, beta1, beta2, eps, weight_decay,
                decoupled, amsgrad):
    """Step ``t`` of one parameter, in place (``p``, the moments and, with ``amsgrad``, their
    running maximum change); the formulas are the module docstring's."""
    xp = backend.get_array_module(p)
    if weight_decay != 0:
        if decoupled:
            p *= 1.0 - lr * weight_decay
        else:
            g = g + weight_decay * p
    exp_avg += (1.0 - beta1) * (g - exp_avg)  # = beta1 * m + (1 - beta1) * g (a lerp)
    exp_avg_sq *= beta2
    exp_avg_sq += (1.0 - beta2) * (g * g)
    bias_correction1 = 1.0 - beta1 ** t
    bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** t)
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = xp.sqrt(second) / bias_correction2_sqrt + eps
    p -= (lr / bias_correction1) * (exp_avg / denom)


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``:
    Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay`` before the Adam update."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
