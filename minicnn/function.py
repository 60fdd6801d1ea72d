"""``Function``: the one pattern behind every differentiable operation, and the backward walk.

A ``Function`` subclass implements two methods on backend arrays (``numpy``/``cupy``):

    forward(self, *arrays)          -> output array (or a tuple of them)
    backward(self, *grad_outputs)   -> one gradient (or None) per input: a tuple, or a bare array
                                       when there is one input

and saves on ``self`` whatever ``backward`` needs. Calling an *instance* on tensors,
``Mul()(a, b)``, runs ``forward`` on their arrays and -- when a gradient is needed -- records the
call in the graph: the output remembers its creator, the creator remembers its inputs.

``self.needs_input_grad[i]`` tells ``forward``/``backward`` whether input ``i`` needs a gradient, so
an op can skip work (and saving arrays) for inputs that are constants.

Backward (``Tensor.backward``) visits the graph's functions once each, in reverse topological
order, found iteratively (no recursion: a ResNet-152 graph is thousands of nodes deep):

    1. depth-first from the output, record each function after all functions feeding it;
    2. walk that list backwards: sum the gradients arriving at each function's outputs, call its
       ``backward``, check that each input's gradient has exactly that input's shape (an op that
       broadcast an input sums its gradient back itself: ``ops.unbroadcast``), and pass it on.
       A tensor's gradient is complete when the walk reaches the function that made it: its hooks
       (``t.register_hook``) see it then and may replace it, and ``t.retain_grad()`` keeps it;
    3. leaves (tensors made by the user, ``requires_grad=True``) collect what reaches them, and
       after the walk, past their hooks, accumulate ``grad += g`` (:func:`_accumulate_leaves`);
    4. the graph is freed: each function drops its inputs and saved arrays -- unless
       ``backward(retain_graph=True)`` asked to keep it for another backward pass;
    5. the callbacks that a ``backward`` queued during the walk (:func:`queue_callback`) run, in
       order: ``DistributedDataParallel`` averages the gradients over the processes there (after a
       walk that accumulates ``.grad``: :func:`accumulates_into_leaves`).

``autograd.grad(outputs, inputs)`` runs the same walk (:func:`run_backward` with ``inputs``) over
only the functions between the outputs and the inputs, and returns the inputs' gradients instead
of accumulating any leaf's ``.grad``.
"""
import contextlib
import threading
from collections import Counter
import weakref

from . import backend

_state = threading.local()


def is_grad_enabled():
    """False inside ``with no_grad():``."""
    return getattr(_state, "enabled", True)


class no_grad(contextlib.ContextDecorator):
    """``with mc.no_grad():`` (or ``@mc.no_grad()``) runs ops without building a graph."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = False

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False


class enable_grad(no_grad):
    """Turn graph building back on inside a ``no_grad`` block."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = True


_tensor_type = {}
"""``Tensor`` and ``as_tensor``, handed over by ``tensor.py`` when it is imported (``use_tensor_type``):
``Function.__call__`` wraps arrays in Tensors, while ``tensor.py`` needs this module's backward walk,
so this module does not import ``tensor.py`` (the two would import each other)."""


def use_tensor_type(tensor_class, as_tensor):
    """Called once by ``tensor.py``: the class that ``Function.__call__`` returns its outputs in."""
    _tensor_type.update(Tensor=tensor_class, as_tensor=as_tensor)


_choose_implementation = None
"""Set by :mod:`minicnn.fast` (``fast.registry.choose``): called with each ``Function`` about to run
and its input arrays, it may switch the instance to a registered faster subclass for their device.
``None`` (what this module alone gives) runs every op exactly as its class is written."""


def set_implementation_chooser(chooser):
    """Install ``chooser(function, arrays)`` (or ``None``): the one hook through which fast paths
    replace reference implementations (see ``minicnn/fast/registry.py``)."""
    global _choose_implementation
    _choose_implementation = chooser


class Function:
    """Base class of every differentiable op. See the module docstring for the contract."""

    def forward(self, *arrays):
        """Compute the output array(s) from the input arrays; save what backward needs on self."""
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, *grad_outputs):
        """Given dL/d(output) for each output, return dL/d(input) for each input (None if unneeded)."""
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def __call__(self, *inputs):
        """Apply the op to tensors: run forward on their arrays and record the call in the graph."""
        Tensor, as_tensor = _tensor_type["Tensor"], _tensor_type["as_tensor"]
        name = type(self).__name__
        tensors = [x if (x is None or isinstance(x, Tensor)) else as_tensor(x) for x in inputs]
        arrays = [None if t is None else t.data for t in tensors]
        backend.check_same_device(name, arrays)
        if _choose_implementation is not None:  # minicnn.fast: the same op, a faster implementation
            _choose_implementation(self, arrays)

        record = is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
        self.needs_input_grad = tuple(record and t is not None and t.requires_grad for t in tensors)
        outputs = self.forward(*arrays)
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        results = tuple(Tensor(o, requires_grad=record) for o in outputs)
        if record:
            self.inputs = tensors
            self.input_versions = [None if t is None else t._version for t in tensors]
            self.outputs = [weakref.ref(r) for r in results]
            self.output_meta = [(o.shape, o.dtype) for o in outputs]
            for r in results:
                r._creator = self
        return results[0] if single else results


def _check_gradient(fn, index, grad, tensor):
    """A gradient must have its input's shape: a wrong one is a bug in ``fn.backward``, never
    reshaped or summed here (that would hide the very mistake a student should see)."""
    shape = getattr(grad, "shape", None)
    if shape is None or tuple(shape) != tensor.shape:
        got = f"shape {tuple(shape)}" if shape is not None else f"a {type(grad).__name__}"
        raise RuntimeError(f"{type(fn).__name__}.backward returned {got} as the gradient of input "
                           f"{index}, expected its shape {tensor.shape} (an input that was "
                           f"broadcast needs its gradient summed over the broadcast axes)")


def _saved(fn, array):
    """Whether ``fn`` kept ``array`` (or a view of it) for its backward, as an attribute or in a
    tuple/list attribute."""
    def same(value):
        return value is array or getattr(value, "base", None) is array

    return any(same(v) or (isinstance(v, (tuple, list)) and any(same(item) for item in v))
               for name, v in vars(fn).items() if name not in ("inputs", "outputs"))


def _check_saved_inputs_unchanged(fn):
    """PyTorch's rule: an input changed in place (``+=``, ``add_``...) after the forward pass must
    not be one whose values the op saved for its backward, or the gradient would be wrong."""
    for index, (t, version) in enumerate(zip(fn.inputs, fn.input_versions)):
        if t is not None and t._version != version and _saved(fn, t.data):
            raise RuntimeError(f"{type(fn).__name__}.backward needs input {index} (shape {t.shape}) "
                               f"as it was in the forward pass, but it was changed in place "
                               f"since (version {t._version}, was {version}); change it after "
                               f"backward(), or out of place")


def _topological_order(*roots):
    """Functions reachable from ``roots``, each listed after every function that feeds it."""
    order, visited, stack = [], set(), [(root, False) for root in reversed(roots)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t is not None and t._creator is not None and id(t._creator) not in visited:
                stack.append((t._creator, False))
    return order


def _leading_to(order, inputs):
    """The functions of ``order`` that a tensor of ``inputs`` feeds, directly or not."""
    reached, kept = {id(t) for t in inputs}, []
    for fn in order:  # each function comes after the functions that feed it
        if any(t is not None and id(t) in reached for t in fn.inputs):
            kept.append(fn)
            reached.update(id(ref()) for ref in fn.outputs if ref() is not None)
    return kept


class RemovableHandle:
    """What ``register_hook``, ``register_forward_hook`` and ``register_forward_pre_hook`` return:
    ``.remove()`` unregisters the hook (a second ``remove()`` does nothing)."""

    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


def _gradient_complete(tensor, g):
    """``tensor``'s gradient ``g`` (an array) is complete: each hook, in the order registered, sees
    it as a Tensor and may return a replacement; then ``retain_grad()`` keeps the result."""
    Tensor = _tensor_type["Tensor"]
    for hook in list(tensor._hooks.values()):
        result = hook(Tensor(g))
        if result is None:
            continue
        if not isinstance(result, Tensor) or result.shape != tuple(g.shape) or result.dtype != g.dtype:
            got = f"shape {result.shape}, {result.dtype}" if isinstance(result, Tensor) else type(result).__name__
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)} returned {got}; expected None "
                               f"or a Tensor of the gradient's shape {tuple(g.shape)}, {g.dtype}")
        g = result.data
    if tensor._retains_grad:
        tensor._accumulate(g)
    return g


def queue_callback(callback):
    """Run ``callback()`` once the backward walk now running has finished (step 5 above), as
    PyTorch's ``Variable._execution_engine.queue_callback``. Only a ``Function.backward`` (or code it
    calls) can queue one; a walk that raises runs none."""
    callbacks = getattr(_state, "callbacks", None)
    if callbacks is None:
        raise RuntimeError("queue_callback(): no backward() is running; call it from a "
                           "Function's backward")
    callbacks.append(callback)


def accumulates_into_leaves():
    """True inside a backward walk that accumulates into the leaves' ``.grad`` (``backward()``);
    False inside ``autograd.grad``, which returns gradients and leaves every ``.grad`` alone."""
    return getattr(_state, "accumulating", False)


def backward(tensor, grad, retain_graph=False):
    """Reverse-mode autodiff from ``tensor`` with upstream gradient ``grad`` (a backend array);
    every leaf reached accumulates its gradient into ``.grad``.

    The graph is freed afterwards (step 4 above) unless ``retain_graph`` is true."""
    run_backward([tensor], [grad], retain_graph=retain_graph)


def run_backward(tensors, grads, retain_graph=False, inputs=None):
    """The backward walk from ``tensors``, starting from their gradients ``grads`` (backend arrays).

    Without ``inputs``, leaves accumulate ``.grad``. With ``inputs`` (tensors) no leaf's ``.grad``
    changes: the walk visits only the functions between ``tensors`` and ``inputs`` and returns the
    inputs' gradients, a list of arrays (``None`` for an input that no gradient reached)."""
    pending = {}  # gradients of non-leaf tensors, keyed by identity
    leaves = {}  # id(leaf) -> (leaf, the gradients that reached it)
    for t, g in zip(tensors, grads):
        if t._creator is None:
            leaves.setdefault(id(t), (t, []))[1].append(g)
        else:
            pending[id(t)] = pending[id(t)] + g if id(t) in pending else g
    order = _topological_order(*[t._creator for t in tensors if t._creator is not None])
    captured = {}
    if inputs is not None:
        order = _leading_to(order, inputs)
        captured = {id(t): None for t in inputs}
    outer_callbacks, _state.callbacks = getattr(_state, "callbacks", None), []
    outer_accumulating, _state.accumulating = accumulates_into_leaves(), inputs is None
    try:
        for fn in reversed(order):
            grad_outputs = []
            for ref, (shape, dtype) in zip(fn.outputs, fn.output_meta):
                out = ref()
                g = pending.pop(id(out), None) if out is not None else None
                if g is None:
                    xp = backend.get_array_module(*[t.data for t in fn.inputs if t is not None])
                    g = xp.zeros(shape, dtype=dtype)
                else:
                    g = _gradient_complete(out, g)
                    if id(out) in captured:
                        captured[id(out)] = g
                grad_outputs.append(g)
            _check_saved_inputs_unchanged(fn)
            input_grads = fn.backward(*grad_outputs)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(fn.inputs):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(input_grads)} "
                                   f"gradients for {len(fn.inputs)} inputs")
            for index, (t, g) in enumerate(zip(fn.inputs, input_grads)):
                if t is None or g is None or not t.requires_grad:
                    continue
                _check_gradient(fn, index, g, t)
                if t._creator is None:
                    leaves.setdefault(id(t), (t, []))[1].append(g)
                elif id(t) in pending:
                    pending[id(t)] = pending[id(t)] + g
                else:
                    pending[id(t)] = g
        if inputs is None:
            _accumulate_leaves(leaves.values())
        for t in inputs or ():  # leaves, and non-leaves whose creator the walk did not visit
            if id(t) in leaves:
                captured[id(t)] = _gradient_complete(t, _total(leaves.pop(id(t))[1]))
            elif id(t) in pending:
                captured[id(t)] = _gradient_complete(t, pending.pop(id(t)))
    finally:
        callbacks, _state.callbacks = _state.callbacks, outer_callbacks
        _state.accumulating = outer_accumulating
        if not retain_graph:
            _free_graph(order)
    for callback in callbacks:
        callback()
    return None if inputs is None else [captured[id(t)] for t in inputs]


def _accumulate_leaves(leaves):
    """Step 3: each leaf's ``grad += `` the sum of the gradients that reached it.

    Only to save copies: a leaf's gradient that is a fresh array (not a view) no other leaf got is
    kept as its first ``.grad`` as it is, where a copy would otherwise be made. On a GPU that is
    one launch less per parameter and step (ResNet-20 on the CUDA path: 346 launches instead of
    411; fashion_cnn 63 instead of 74); on the CPU the copies cost under 1% of a ResNet-20 step.
    """
    reached = Counter(id(g) for _, grads in leaves for g in grads)
    for leaf, grads in leaves:
        total = _total(grads)
        fresh = len(grads) > 1 or (getattr(total, "base", None) is None and reached[id(total)] == 1)
        if leaf._hooks:  # a hook may keep the array it was shown, or return one it keeps
            total, fresh = _gradient_complete(leaf, total), False
        leaf._accumulate(total, owned=fresh)


def _total(grads):
    """The sum of a list of arrays; more than one gives a new array (out of place)."""
    total = grads[0]
    for g in grads[1:]:
        total = total + g
    return total


def _free_graph(order):
    """Drop the graph so memory does not grow across steps (calling backward twice is an error)."""
    for fn in order:
        for ref in fn.outputs:
            out = ref()
            if out is not None:
                out._creator = None
                out._graph_freed = True
        fn.__dict__.clear()
