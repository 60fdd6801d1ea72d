"""Gradient checking: autograd's gradients against central finite differences, in float64.

For a function ``f`` of tensors ``x_1 .. x_k`` with output ``y`` we pick a *random* upstream
gradient ``v`` (all ones would hide errors that cancel in a sum) and the scalar

    L(x) = sum(v * f(x))

Autograd gives dL/dx_i. The numerical estimate of each element is the central difference

    dL/dx[j] ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)        error O(eps^2)

and an element passes when |analytic - numeric| <= atol + rtol * |numeric|.

That costs two forward passes per input element, fine for a layer on a small input. For a whole
network, ``gradcheck(..., directional=True)`` compares one number per input instead: for a random
direction ``u``, autograd's  <dL/dx, u>  against  (L(x + eps u) - L(x - eps u)) / (2 eps).

Each op module keeps sample cases next to its code as plain data, a list ``GRADCHECK_CASES`` of
``(op, case, make)`` where ``make()`` returns ``(fn, inputs)``; this module collects them (it imports
the op modules, never the reverse) and ``minicnn gradcheck`` runs them all (see
:func:`run_registered`). Your own cases can join them with :func:`register_case`.
"""
import numpy

from . import backend
from .factories import GRADCHECK_CASES as _FACTORIES
from .functional.activation import GRADCHECK_CASES as _ACTIVATION
from .functional.batchnorm import GRADCHECK_CASES as _BATCHNORM
from .functional.conv import GRADCHECK_CASES as _CONV
from .functional.dropout import GRADCHECK_CASES as _DROPOUT
from .functional.linear import GRADCHECK_CASES as _LINEAR
from .functional.loss import GRADCHECK_CASES as _LOSS
from .functional.lrn import GRADCHECK_CASES as _LRN
from .functional.pooling import GRADCHECK_CASES as _POOLING
from .ops import GRADCHECK_CASES as _OPS


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees with finite differences."""


BUILT_IN_CASES = (_OPS + _FACTORIES + _CONV + _POOLING + _BATCHNORM + _LRN + _ACTIVATION + _DROPOUT
                  + _LINEAR + _LOSS)
"""Every op module's ``GRADCHECK_CASES``, in the order ``minicnn gradcheck`` runs them."""

_EXTRA_CASES = []


def register_case(op, case, make):
    """Add a case of your own: ``make()`` returns ``(fn, inputs)`` for :func:`gradcheck`."""
    _EXTRA_CASES.append((op, case, make))
    return make


def registered_cases():
    """Every ``(op, case, make)`` triple: the op modules' ``GRADCHECK_CASES``, then your own."""
    return list(BUILT_IN_CASES) + _EXTRA_CASES


class GradcheckResult:
    """What a check measured: worst absolute and relative error, and where."""

    def __init__(self):
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.worst = None  # (excess over tolerance, input index, element index, analytic, numeric)
        self.passed = True

    def update(self, i, analytic, numeric, atol, rtol):
        diff = numpy.abs(analytic - numeric)
        scale = numpy.maximum(numpy.abs(analytic), numpy.abs(numeric))
        rel = numpy.where(scale > 1e-7, diff / numpy.maximum(scale, 1e-300), 0.0)
        excess = diff - (atol + rtol * numpy.abs(numeric))
        if diff.size == 0:
            return
        self.max_abs = max(self.max_abs, float(diff.max()))
        self.max_rel = max(self.max_rel, float(rel.max()))
        j = int(numpy.argmax(excess))
        if self.worst is None or excess.flat[j] > self.worst[0]:
            self.worst = (float(excess.flat[j]), i, numpy.unravel_index(j, analytic.shape),
                          float(analytic.flat[j]), float(numeric.flat[j]))
        if excess.flat[j] > 0:
            self.passed = False

    def message(self, names=None):
        _, i, idx, a, n = self.worst
        name = names[i] if names else f"input {i}"
        return (f"gradient mismatch for {name} at element {tuple(int(k) for k in idx)}: "
                f"analytic {a:.10g}, numeric {n:.10g} (max abs error {self.max_abs:.3g}, "
                f"max rel error {self.max_rel:.3g})")


def _prepare_inputs(inputs):
    """Floating tensors go to float64 (float64 ones are used as they are, so the parameters of a
    float64 model can be checked in place); other inputs are passed through."""
    from .tensor import Tensor
    prepared = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind == "f" and x.dtype != numpy.float64:
            x = Tensor(x.data.astype(numpy.float64), requires_grad=x.requires_grad)
        prepared.append(x)
    return prepared


def _outputs(fn, inputs):
    out = fn(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _loss_value(fn, inputs, vs):
    from .function import no_grad
    with no_grad():
        outs = _outputs(fn, inputs)
    return sum(float((o.data * v).sum()) for o, v in zip(outs, vs))


def check(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, directional=False, seed=0):
    """Run a gradient check and return a :class:`GradcheckResult` (never raises on a mismatch)."""
    from .tensor import Tensor
    inputs = _prepare_inputs(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    rng = numpy.random.default_rng(seed)

    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    try:
        outs = _outputs(fn, inputs)
        vs = []
        for o in outs:
            xp = backend.get_array_module(o.data)
            vs.append(xp.asarray(rng.standard_normal(o.shape)).astype(o.dtype))
        total = None
        for o, v in zip(outs, vs):
            if o.requires_grad:
                term = (o * Tensor(v)).sum()
                total = term if total is None else total + term
        analytic = {}
        if total is not None:
            total.backward()
        for i in checked:
            g = inputs[i].grad
            analytic[i] = (numpy.zeros(inputs[i].shape) if g is None
                           else numpy.asarray(backend.to_numpy(g.data), dtype=numpy.float64))
    finally:
        for i, g in zip(checked, saved_grads):
            inputs[i].grad = g

    result = GradcheckResult()
    if directional:
        directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}

        def shift(sign):
            for i in checked:
                x = inputs[i]
                xp = backend.get_array_module(x.data)
                x.data += xp.asarray(sign * eps * directions[i]).astype(x.dtype)

        shift(+1)
        plus = _loss_value(fn, inputs, vs)
        shift(-2)
        minus = _loss_value(fn, inputs, vs)
        shift(+1)
        numeric = numpy.array([(plus - minus) / (2 * eps)])
        projected = numpy.array([sum(float((analytic[i] * directions[i]).sum()) for i in checked)])
        result.update(0, projected, numeric, atol, rtol)
        return result

    for i in checked:
        x = inputs[i]
        numeric = numpy.zeros(x.shape)
        for j in numpy.ndindex(*x.shape):
            original = float(x.data[j])
            x.data[j] = original + eps
            plus = _loss_value(fn, inputs, vs)
            x.data[j] = original - eps
            minus = _loss_value(fn, inputs, vs)
            x.data[j] = original
            numeric[j] = (plus - minus) / (2 * eps)
        result.update(i, analytic[i], numeric, atol, rtol)
    return result


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, directional=False):
    """Check autograd's gradient of every input that requires grad against finite differences.

    ``fn`` maps the tensors ``inputs`` to a tensor (or a tuple of tensors). Floating inputs are
    checked in float64. Returns ``True``; on a mismatch raises :class:`GradcheckError` naming the
    input, the worst element and both values (or returns ``False`` when ``raise_exception=False``).
    ``directional=True`` checks one random direction per call (cheap, for whole networks).
    """
    result = check(fn, inputs, eps=eps, atol=atol, rtol=rtol, directional=directional)
    if result.passed:
        return True
    if raise_exception:
        what = "directional derivative" if directional else None
        msg = result.message(["the directional derivative"] if directional else None)
        raise GradcheckError(msg if what is None else "gradcheck (directional): " + msg)
    return False


def run_registered(ops=None, device="cpu", out=print):
    """Check every registered case (or those of ``ops``); print a table; return True if all pass."""
    cases = [c for c in registered_cases() if not ops or c[0] in ops]
    if ops:
        unknown = sorted(set(ops) - {c[0] for c in registered_cases()})
        if unknown:
            raise ValueError(f"unknown op(s) {unknown}; known: {sorted({c[0] for c in registered_cases()})}")
    header = f"{'op':<24} {'case':<44} {'max abs err':>12} {'max rel err':>12}  result"
    out(header)
    out("-" * len(header))
    ok = True
    for op, case, make in cases:
        fn, inputs = make()
        inputs = [_to_device(x, device) for x in inputs]
        try:
            r = check(fn, inputs)
            status = "PASS" if r.passed else "FAIL"
            line = f"{op:<24} {case[:44]:<44} {r.max_abs:>12.2e} {r.max_rel:>12.2e}  {status}"
        except Exception as e:  # an op that crashes fails its check
            status, line = "FAIL", f"{op:<24} {case[:44]:<44} {'-':>12} {'-':>12}  FAIL ({type(e).__name__}: {e})"
        ok &= status == "PASS"
        out(line)
    out(f"{len(cases)} cases, {'all PASS' if ok else 'FAILURES'}")
    return ok


def _to_device(x, device):
    from .tensor import Tensor
    if isinstance(x, Tensor) and x.device != device:
        return Tensor(backend.to_device(x.data, device), requires_grad=x.requires_grad)
    return x
