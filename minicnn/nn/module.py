"""``Module``, ``Parameter`` and the containers: how layers hold their state.

A module registers what you assign to its attributes, as PyTorch does:

    self.weight = Parameter(...)        -> a parameter   (trained; in state_dict)
    self.register_buffer("running_mean", xp.zeros(c))  -> a buffer (not trained; in state_dict)
    self.block = Conv2d(...)            -> a sub-module  (its names are prefixed "block.")

so ``state_dict()`` keys are the dotted attribute paths, e.g. ``"features.0.weight"``.
"""
from collections import OrderedDict, namedtuple

import numpy

from .. import backend
from ..function import RemovableHandle
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a module trains: ``requires_grad=True`` by default and registered on assignment."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__`` and define
    ``forward``; calling the module runs ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # -- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()) and (value is None or backend.is_array(value)):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Register a non-trained array (e.g. BatchNorm's running mean) that state_dict saves."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent one like ``bias=False``)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name, module):
        """Register ``module`` as the sub-module ``name``."""
        setattr(self, name, module)

    # -- running ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the module; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args, **kwargs):
        """``module(x)`` runs ``forward(x)``, with the forward pre-hooks before it and the forward
        hooks after it (PyTorch's semantics: a hook's non-None result replaces the inputs/output)."""
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, inputs)`` before each forward; returns a handle with ``.remove()``."""
        key = object()
        self._forward_pre_hooks[key] = hook
        return RemovableHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after each forward; returns a handle with ``.remove()``."""
        key = object()
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # -- traversal ------------------------------------------------------------------------------
    def named_children(self):
        """``(name, module)`` for each direct sub-module."""
        return iter(self._modules.items())

    def children(self):
        """The direct sub-modules."""
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        """``(dotted name, module)`` for this module and every descendant, each once, pre-order."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        """This module and all its descendants."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", recurse=True):
        """``(dotted name, Parameter)`` pairs; a shared parameter is listed once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in modules:
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse=True):
        """All parameters (what an optimizer trains)."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix=""):
        """``(dotted name, array)`` for every buffer."""
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        """All buffers (e.g. BatchNorm's running statistics)."""
        return (b for _, b in self.named_buffers())

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module and self (children first), as PyTorch."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self):
        """Parameters and buffers as host NumPy arrays, keyed by dotted attribute path."""
        state = OrderedDict()
        for mname, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, value in store.items():
                    if value is not None:
                        array = value.data if isinstance(value, Tensor) else value
                        state[f"{mname}.{name}" if mname else name] = numpy.array(backend.to_numpy(array))
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` (name -> array-like) into the parameters and buffers.

        Raises ``ValueError`` naming the key on a shape mismatch, or on a missing or unexpected key
        when ``strict``. Everything is checked before anything is copied, so a load that raises
        leaves the model unchanged. ``num_batches_tracked`` entries are accepted and ignored.
        """
        targets = {}
        for mname, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, value in store.items():
                    if value is not None:
                        targets[f"{mname}.{name}" if mname else name] = (m, store, name)
        ignorable = {k for k in state if k.endswith("num_batches_tracked") and k not in targets}
        missing = [k for k in targets if k not in state and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in targets and k not in ignorable]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing key(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
            if unexpected:
                parts.append(f"unexpected key(s) {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(parts))
        staged = []
        for key, (m, store, name) in targets.items():
            if key not in state:
                continue
            current = store[name]
            array = current.data if isinstance(current, Tensor) else current
            value = state[key]
            value = value.data if isinstance(value, Tensor) else value
            host = numpy.asarray(backend.to_numpy(value) if backend.is_array(value) else value)
            if host.shape != tuple(array.shape):
                raise ValueError(f"load_state_dict into {type(self).__name__}: key {key!r} has shape "
                                 f"{host.shape}, expected {tuple(array.shape)}")
            staged.append((current, store, name, backend.to_device(host.astype(array.dtype), backend.device_of(array))))
        for current, store, name, new in staged:
            if isinstance(current, Tensor):
                current.data = new.copy() if new is current.data else new
            else:
                store[name] = new
        return _IncompatibleKeys(missing, unexpected)

    # -- modes and devices --------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout active, batch norm uses batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def to(self, device=None, dtype=None):
        """Move (and/or cast floating) parameters, gradients and buffers in place; returns self."""
        def convert(array):
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype)
            return backend.to_device(array, device) if device is not None else array

        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = convert(p.data)
                    p.grad = None if p.grad is None else Tensor(convert(p.grad.data))
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = convert(b)
        return self

    def cpu(self):
        """Move parameters and buffers to the host; returns self."""
        return self.to("cpu")

    def cuda(self):
        """Move parameters and buffers to the GPU; returns self."""
        return self.to("cuda")

    def double(self):
        """Cast floating parameters and buffers to float64 (for gradient checks)."""
        return self.to(dtype=numpy.float64)

    def float(self):
        """Cast floating parameters and buffers to float32."""
        return self.to(dtype=numpy.float32)

    def zero_grad(self):
        """Clear every parameter's gradient."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag=True):
        """Freeze (``False``) or unfreeze every parameter of this module; returns self."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def num_parameters(self, trainable_only=False):
        """Total number of parameter elements."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- printing ---------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Runs its modules in order; children are named ``"0"``, ``"1"``, ... (or by an OrderedDict)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        items = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*items[i])
        return items[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of sub-modules, registered as ``"0"``, ``"1"``, ...; no forward of its own."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of named sub-modules (insertion ordered); no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        for name, m in (modules or {}).items():
            self.add_module(name, m)

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def keys(self):
        return self._modules.keys()
