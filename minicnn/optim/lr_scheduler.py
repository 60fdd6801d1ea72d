"""Learning-rate schedules: change each parameter group's ``lr`` as training goes on.

They follow PyTorch's ``torch.optim.lr_scheduler``: build the scheduler after the optimizer (it
records each group's starting ``lr`` as ``initial_lr``, the *base* rate) and call
``scheduler.step()`` after ``optimizer.step()``, once per epoch, or once per iteration if you
count the schedule in iterations. ``last_epoch`` counts the ``step()`` calls: building the
scheduler is step 0 and already sets the rate for it. Each rate is computed from ``last_epoch``
in closed form (no accumulated rounding), so a resumed run gets exactly the same rates:

============================  ===============================================================
``StepLR``                    ``base * gamma ** (t // step_size)``
``MultiStepLR``               ``base * gamma ** (number of milestones <= t)``
``CosineAnnealingLR``         ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``
``LinearLR``                  ``base * (start + (end - start) * min(t, total_iters) / total_iters)``
``LinearWarmup``              ``LinearLR`` starting by default from 0.1 (a warm-up)
``ConstantLR``                ``base * factor`` for ``total_iters`` steps, then ``base``
``SequentialLR``              one schedule after another, switching at ``milestones``
============================  ===============================================================

``state_dict()``/``load_state_dict()`` save and restore the position (``last_epoch``) and the
settings, as plain numbers and arrays that :func:`minicnn.save` can store.
"""
import bisect
import math

import numpy

from .optimizer import nest, to_python


class LRScheduler:
    """Base class: subclasses implement ``_lr_at(base_lr, t)``, the rate at step ``t``."""

    #: Attributes that ``state_dict()`` saves (besides ``last_epoch``, ``base_lrs``, ``_last_lr``).
    _saved = ()

    def __init__(self, optimizer, last_epoch: int = -1) -> None:
        from .optimizer import Optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: resuming (last_epoch={last_epoch}) "
                                   f"needs 'initial_lr' in parameter group {i}")
        self.base_lrs = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._last_lr = [float(group["lr"]) for group in optimizer.param_groups]
        self.step()

    def _lr_at(self, base_lr, t):
        raise NotImplementedError

    def get_lr(self):
        """The rates for the current ``last_epoch``, one per parameter group."""
        return [float(self._lr_at(base, self.last_epoch)) for base in self.base_lrs]

    def get_last_lr(self) -> list:
        """The rates the last ``step()`` set."""
        return list(self._last_lr)

    def step(self, epoch: int = None) -> None:
        """Advance one step (or jump to ``epoch``) and set the groups' ``lr``."""
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        self._apply(self.get_lr())

    def _apply(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [float(lr) for lr in lrs]

    # -- saving ---------------------------------------------------------------------------
    def state_dict(self):
        """The position and settings: ``last_epoch``, ``base_lrs``, ``_last_lr`` and the
        scheduler's own arguments (numbers and 1-d arrays)."""
        state = {"last_epoch": self.last_epoch,
                 "base_lrs": numpy.array(self.base_lrs, dtype=numpy.float64),
                 "_last_lr": numpy.array(self._last_lr, dtype=numpy.float64)}
        for name in self._saved:
            value = getattr(self, name)
            state[name] = numpy.array(value) if isinstance(value, (list, tuple)) else value
        return state

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (also the flat form ``minicnn.load`` gives).

        Every entry must be there and make sense: ``last_epoch`` a whole number >= 0, one finite
        base rate >= 0 per parameter group, and settings that give finite rates >= 0. Otherwise
        ``ValueError`` names the entry, and the scheduler is left as it was."""
        before = [(s, dict(s.__dict__)) for s in [self] + list(getattr(self, "_schedulers", []))]
        try:
            self._restore(nest(state_dict))
            self._check_restored()
        except BaseException:
            for s, attributes in before:
                s.__dict__.clear()
                s.__dict__.update(attributes)
            raise

    def _restore(self, state):
        name = f"{type(self).__name__}.load_state_dict"
        missing = [k for k in ("last_epoch", "base_lrs") + tuple(self._saved) if k not in state]
        if missing:
            raise ValueError(f"{name}: the saved state has no {', '.join(missing)}")
        last_epoch = to_python(state["last_epoch"])
        if not isinstance(last_epoch, int) or isinstance(last_epoch, bool) or last_epoch < 0:
            raise ValueError(f"{name}: last_epoch is {last_epoch!r}; expected a whole number >= 0 "
                             f"(the steps taken)")
        try:
            self.last_epoch = last_epoch
            self.base_lrs = [float(v) for v in numpy.atleast_1d(_host(state["base_lrs"]))]
            if "_last_lr" in state:
                self._last_lr = [float(v) for v in numpy.atleast_1d(_host(state["_last_lr"]))]
            for key in self._saved:
                value, old = state[key], getattr(self, key)
                if isinstance(old, (list, tuple)):
                    value = type(old)(numpy.atleast_1d(_host(value)).tolist())
                else:
                    value = to_python(value)
                    if isinstance(old, (int, float)) and not isinstance(old, bool):
                        if not math.isfinite(value) or (isinstance(old, int) and value != int(value)):
                            raise ValueError(f"expected a finite {type(old).__name__}")
                        value = type(old)(value)
                setattr(self, key, value)
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"{name}: a saved setting is not a valid number ({err})") from None

    def _check_restored(self):
        """Raise ``ValueError`` unless the restored state gives one finite rate >= 0 per group."""
        name = f"{type(self).__name__}.load_state_dict"
        groups = len(self.optimizer.param_groups)
        if len(self.base_lrs) != groups or len(self._last_lr) != groups:
            raise ValueError(f"{name}: the saved state has {len(self.base_lrs)} base rate(s); "
                             f"the optimizer has {groups} parameter group(s)")
        try:
            rates = self.get_lr()
        except (ArithmeticError, ValueError, TypeError, IndexError) as err:
            raise ValueError(f"{name}: the saved settings give no learning rate ({err})") from None
        bad = [r for r in self.base_lrs + self._last_lr + rates if not (math.isfinite(r) and r >= 0)]
        if bad:
            raise ValueError(f"{name}: the saved state gives the learning rate(s) {bad}; expected "
                             f"finite numbers >= 0")

    def __repr__(self):
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._saved)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


def _host(value):
    return numpy.asarray(value)


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps."""

    _saved = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each of the (increasing) ``milestones``."""

    _saved = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base rate down to ``eta_min`` over ``T_max`` steps (SGDR without
    restarts). Past ``T_max`` it climbs back up, as PyTorch's does."""

    _saved = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Scale the rate by a factor going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, then keep ``end_factor`` (PyTorch's ``LinearLR``)."""

    _saved = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: need 0 < start_factor <= 1 and 0 <= end_factor <= 1, got "
                             f"{start_factor} and {end_factor}")
        if int(total_iters) < 0:
            raise ValueError(f"LinearLR: total_iters must be >= 0, got {total_iters}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        if self.total_iters == 0:
            return base_lr * self.end_factor
        frac = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LinearWarmup(LinearLR):
    """A warm-up: ``LinearLR`` with the same arguments, but starting by default from a tenth of
    the rate, ``LinearWarmup(optimizer, start_factor=0.1, end_factor=1.0, total_iters=5)``."""

    def __init__(self, optimizer, start_factor: float = 0.1, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        super().__init__(optimizer, start_factor=start_factor, end_factor=end_factor,
                         total_iters=total_iters, last_epoch=last_epoch)


class ConstantLR(LRScheduler):
    """Scale the rate by ``factor`` for the first ``total_iters`` steps, then use the base rate
    (PyTorch's ``ConstantLR``)."""

    _saved = ("factor", "total_iters")

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if not 0 <= factor <= 1:
            raise ValueError(f"ConstantLR: factor must lie in [0, 1], got {factor}")
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * (self.factor if t < self.total_iters else 1.0)


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` counted from 0, ...

    e.g. five warm-up epochs then cosine decay::

        SequentialLR(opt, [LinearWarmup(opt, total_iters=5), CosineAnnealingLR(opt, T_max=epochs - 5)],
                     milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1) -> None:
        schedulers = list(schedulers)
        if len(schedulers) < 1 or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestone(s) for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must belong to the same optimizer")
        self._schedulers = schedulers
        self._milestones = [int(m) for m in milestones]
        for group in optimizer.param_groups:
            if "initial_lr" in group:
                group["lr"] = group["initial_lr"]
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The active scheduler's rates, counted from the start of its phase."""
        t = self.last_epoch
        i = bisect.bisect_right(self._milestones, t)
        local = t - (self._milestones[i - 1] if i > 0 else 0)
        sub = self._schedulers[i]
        sub.last_epoch = local
        return [float(sub._lr_at(base, local)) for base in sub.base_lrs]

    def step(self, epoch: int = None) -> None:
        """Advance one step (or jump to ``epoch``), switching schedulers at the milestones."""
        super().step(epoch)
        i = bisect.bisect_right(self._milestones, self.last_epoch)
        self._schedulers[i]._last_lr = list(self._last_lr)

    def state_dict(self):
        """The position, the milestones and each scheduler's own state (under ``_schedulers``)."""
        state = super().state_dict()
        state["_milestones"] = numpy.array(self._milestones, dtype=numpy.int64)
        state["_schedulers"] = {str(i): s.state_dict() for i, s in enumerate(self._schedulers)}
        return state

    def _restore(self, state):
        subs = state.pop("_schedulers", {})
        super()._restore(state)
        milestones = [int(m) for m in numpy.atleast_1d(_host(state.get("_milestones", [])))]
        if len(milestones) != len(self._milestones) or set(subs) != {
                str(i) for i in range(len(self._schedulers))}:
            raise ValueError(f"SequentialLR.load_state_dict: the saved state has {len(milestones)} "
                             f"milestone(s) and scheduler(s) {sorted(subs)}; this one has "
                             f"{len(self._milestones)} and {len(self._schedulers)}")
        self._milestones = milestones
        for key, sub_state in subs.items():
            self._schedulers[int(key)]._restore(nest(sub_state))


#: PyTorch 2's name for the base class.
_LRScheduler = LRScheduler

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup",
           "ConstantLR", "SequentialLR"]
