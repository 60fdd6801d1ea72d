"""``Optimizer``: the base class every optimizer shares (parameter groups, state, saving).

An optimizer holds *parameter groups*: lists of parameters that share options (``lr``,
``momentum``, ...). Pass a plain list of parameters for one group, or a list of dicts to give
groups their own options, exactly as in PyTorch:

>>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> opt = SGD([{"params": model.features.parameters(), "lr": 0.01},
...            {"params": model.classifier.parameters()}], lr=0.1, momentum=0.9)

Options missing from a group take the constructor's values (``defaults``). ``state[p]`` holds
what the rule keeps per parameter (a momentum buffer, Adam's moments), created on the first
``step()`` that sees a gradient for ``p``. Every update changes ``p.data`` *in place*, with the
array module of ``p.data`` (``numpy`` or ``cupy``), so the same code runs on every device.

``state_dict()`` returns nested dicts of plain values and host arrays (no lists of dicts), which
:func:`minicnn.save` can store:

    {"state":        {"0": {"momentum_buffer": array}, "1": {...}},      # by parameter index
     "param_groups": {"0": {"lr": 0.1, "momentum": 0.9, ..., "params": array([0, 1])}}}

Parameters are numbered in the order the groups list them. ``load_state_dict`` accepts that, or
the flat dotted-key form that :func:`minicnn.load` returns (``"state.0.momentum_buffer"``).
"""
import math
import numbers
import typing

import numpy

from .. import backend


#: What an optimizer takes: an iterable of Parameters, or of dicts (parameter groups) holding them
#: under ``"params"`` with per-group options.
Params = typing.Iterable

def nest(flat):
    """Dotted keys -> nested dicts: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (nested input passes)."""
    out = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            value = nest(value)
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"state entry {key!r} clashes with a value stored at {part!r}")
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(value)
        else:
            node[parts[-1]] = value
    return out


def to_python(value):
    """A loaded option value (0-d/1-d array or Python value) -> a Python scalar/tuple/list."""
    if backend.is_array(value):
        value = numpy.asarray(backend.to_numpy(value))
    if isinstance(value, numpy.ndarray):
        if value.ndim == 0:
            return value.item()
        return tuple(value.tolist())
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(value)
    return value


def _not_finite(value):
    """True unless ``value`` is a bool, a finite number or a tuple of them (an option's value)."""
    if isinstance(value, tuple):
        return any(_not_finite(v) for v in value)
    return not isinstance(value, numbers.Real) or not math.isfinite(value)


def _param_list(params):
    from ..tensor import Tensor
    if isinstance(params, Tensor):
        return [params]
    return list(params)


class Optimizer:
    """Base class: holds ``param_groups`` and ``state``; subclasses implement :meth:`step`.

    Parameters with ``requires_grad=False`` or ``grad is None`` are skipped by ``step()``
    (frozen layers, or parameters the loss did not reach).
    """

    def __init__(self, params: Params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        params = _param_list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group (a dict with ``"params"`` and optional per-group options)."""
        from ..tensor import Tensor
        if not isinstance(group, dict):
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict, got "
                            f"{type(group).__name__}")
        group = dict(group)
        if "params" not in group:
            raise ValueError(f"{type(self).__name__}: a parameter group needs a 'params' entry")
        group["params"] = _param_list(group["params"])
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, got "
                                f"{type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError(f"{type(self).__name__}: a parameter group lists a parameter twice")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)} in a "
                             f"parameter group; known: {sorted(self.defaults)}")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Validate a group's options (subclasses raise ``ValueError`` on bad values)."""
        lr = group.get("lr")
        if not isinstance(lr, numbers.Real) or lr < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr!r}")

    # -- the update -----------------------------------------------------------------------
    def _params_with_grad(self, group):
        """The parameters of ``group`` that ``step()`` updates."""
        return [p for p in group["params"] if p.requires_grad and p.grad is not None]

    def step(self) -> None:
        """Update the parameters from their gradients (one optimisation step)."""
        raise NotImplementedError(f"{type(self).__name__}.step")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters (``set_to_none=False`` fills them with zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    # -- saving ---------------------------------------------------------------------------
    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict:
        """``{"state": {index: {name: host array}}, "param_groups": {index: options}}``.

        Arrays are host NumPy copies (a snapshot); integer/float options stay Python values.
        """
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {}
        for p, entry in self.state.items():
            if id(p) not in index:
                continue
            state[str(index[id(p)])] = {
                name: (numpy.array(backend.to_numpy(v)) if backend.is_array(v) else v)
                for name, v in entry.items()}
        groups = {}
        for g, group in enumerate(self.param_groups):
            saved = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                     if k != "params"}
            saved["params"] = numpy.array([index[id(p)] for p in group["params"]], dtype=numpy.int64)
            groups[str(g)] = saved
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (nested, or flat with dotted keys).

        The optimizer must have been built over the same parameters (same group sizes, same
        shapes). Every option must be there, finite and valid (as the constructor checks it), and
        every state value finite; otherwise ``ValueError`` says which, and the optimizer is left as
        it was. State arrays are copied to each parameter's device.
        """
        state_dict = nest(state_dict)
        saved_groups = state_dict.get("param_groups", {})
        if isinstance(saved_groups, dict):
            saved_groups = [saved_groups[k] for k in sorted(saved_groups, key=int)]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state has "
                             f"{len(saved_groups)} parameter group(s), this optimizer has "
                             f"{len(self.param_groups)}")
        params = self._all_params()
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            n_saved = len(numpy.atleast_1d(numpy.asarray(saved.get("params", []))))
            if n_saved != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {g} has "
                                 f"{n_saved} parameter(s) saved, {len(group['params'])} here")
        new_groups = [self._restored_group(g, group, saved)
                      for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups))]
        new_state = {}
        for key, entry in state_dict.get("state", {}).items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for parameter "
                                 f"{i}, but there are only {len(params)}")
            p = params[i]
            restored = {}
            for name, value in entry.items():
                if name in self._scalar_state or not (backend.is_array(value) or
                                                      isinstance(value, (list, tuple))):
                    restored[name] = to_python(value)
                    if _not_finite(restored[name]) or not restored[name] >= 0:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state {name!r} "
                                         f"of parameter {i} is {restored[name]!r}; expected a "
                                         f"finite number >= 0")
                    continue
                host = numpy.asarray(backend.to_numpy(value) if backend.is_array(value) else value)
                if host.shape != p.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {name!r} of "
                                     f"parameter {i} has shape {host.shape}, the parameter {p.shape}")
                if host.dtype.kind not in "fiub" or not numpy.isfinite(host).all():
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {name!r} of "
                                     f"parameter {i} holds NaN, inf or non-numbers ({host.dtype}); "
                                     f"expected finite numbers")
                if host.dtype.kind == "f":
                    host = host.astype(p.dtype)
                restored[name] = backend.to_device(numpy.array(host), p.device)
            new_state[p] = restored
        for group, restored in zip(self.param_groups, new_groups):
            group.update(restored)
        self.state = new_state

    def _restored_group(self, g, group, saved):
        """The options of group ``g`` as saved, checked as the constructor checks them: every
        option present, none unknown, numbers finite. Raises ``ValueError`` naming the group."""
        name = f"{type(self).__name__}.load_state_dict"
        options = {k: to_python(v) for k, v in saved.items() if k != "params"}
        missing = sorted(set(self.defaults) - set(options))
        unknown = sorted(set(options) - set(self.defaults) - {"initial_lr"})
        if missing or unknown:
            raise ValueError(f"{name}: group {g} of the saved state lacks the option(s) {missing} "
                             f"or has unknown ones {unknown}; expected {sorted(self.defaults)}")
        bad = sorted(k for k, v in options.items() if _not_finite(v))
        if bad:
            raise ValueError(f"{name}: group {g} of the saved state has non-finite or non-numeric "
                             f"option(s) {bad}: {[options[k] for k in bad]}")
        restored = dict(group, **options)
        try:
            self._check_group(restored)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: group {g} of the saved state: {err}") from None
        return {k: v for k, v in restored.items() if k != "params"}

    #: Per-parameter state entries that are plain numbers (e.g. Adam's ``step``).
    _scalar_state = ("step",)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)
