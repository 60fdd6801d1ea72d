"""The vocabulary of an assignment's ``grader.py``: questions, their checks, and references.

An assignment's ``grader.py`` lists its questions; each question is worth some points and owns
checks of two kinds. **Every check returns the student's outputs it looked at**, as a dict of
arrays::

    from minicnn.assignment import Question, collect_references

    TITLE = "Assignment 1: CNN layers"
    SUBMISSION_FILES = ["layers.py"]        # the files students hand in

    q1 = Question("q1", "ReLU", points=5)

    @q1.public
    def relu_small_example(sub):
        out, _ = sub.layers.relu_forward(np.array([-1.0, 0.0, 2.0]))
        assert np.array_equal(out, [0, 0, 2]), f"expected [0, 0, 2], got {out}"
        return {"out": out}

    @q1.hidden
    def relu_values(sub):
        x = np.random.default_rng(0).standard_normal((3, 4))
        out, cache = sub.layers.relu_forward(x)
        return {"out": out, "dx": sub.layers.relu_backward(np.ones_like(x), cache)}

    QUESTIONS = [q1]

    def make_references(sub):
        return collect_references(QUESTIONS, sub)

``sub`` is a :class:`~minicnn.assignment.submission.Submission`: ``sub.layers`` is the module
``layers.py`` of the code under test (the student's when grading, the instructor's solution when
the build makes the references). When grading, the checks run in a separate, resource-limited
process that holds only the handed-in ``SUBMISSION_FILES`` and the released helper files
(:mod:`minicnn.assignment.sandbox`).

*Public* checks are tests that students see and run themselves: with ``minicnn assignment grade .``
(no references) a public check passes when it returns without raising (an ``AssertionError`` with a
helpful message, usually). *Hidden* checks compute on inputs students do not know about. The
build runs every check, public and hidden, on the instructor's solution and stores the returned
arrays in ``references.npz``; the real grade (with references) then decides **every** check in the
grading process, by comparing the arrays the submission's process sent back with the references
(:func:`relative_error` within ``rtol``), never by what that process says about itself. A
question's points are shared among its checks in proportion to their ``weight`` (1 by default).

Values a check may return: a dict of ``str`` to anything :func:`numpy.asarray` turns into a
numeric array (floats, integers, booleans, complex numbers, scalars such as a loss).
"""
import contextlib
import dataclasses
import re

import numpy as np

__all__ = ["Question", "Check", "relative_error", "collect_references", "reference_arrays",
           "DEFAULT_RTOL", "DEFAULT_TIMEOUT", "EXPECTED_FILE", "hidden_weight_key", "substitute"]

#: Largest relative error (see :func:`relative_error`) a hidden check accepts by default.
DEFAULT_RTOL = 1e-5
#: Seconds one check may run before it is stopped (where the platform allows; see ``submission``).
DEFAULT_TIMEOUT = 30.0

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

#: The file of a student copy that holds the public checks' expected values (written by the build).
EXPECTED_FILE = "expected.npz"


def hidden_weight_key(question_name):
    """The key of :data:`EXPECTED_FILE` that holds the total weight of a question's hidden checks
    (``:`` cannot occur in a question's or a check's name: no output's key looks like it)."""
    return f"hidden_weight:{question_name}"


@contextlib.contextmanager
def substitute(module, **replacements):
    """Replace attributes of ``module`` (a submission's module) for the duration of a ``with``.

    A question that builds on an earlier one uses the reference version of the earlier part, so
    that one mistake costs points once::

        with substitute(sub.counting, conv_params=reference_conv_params):
            result = sub.counting.inception_cost(...)      # calls the reference conv_params

    Functions look their globals up when they run, so the module's own functions see the
    replacements too.
    """
    missing = object()
    saved = {name: getattr(module, name, missing) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield module
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(module, name)
            else:
                setattr(module, name, value)


@dataclasses.dataclass
class Check:
    """One public or hidden check of a question."""
    name: str
    kind: str                # "public" or "hidden"
    function: object
    weight: float = 1.0
    rtol: float = DEFAULT_RTOL


class Question:
    """A graded question: a name (``"q1"``), a title, its points, and its checks.

    Register checks with the :meth:`public` and :meth:`hidden` decorators, in the order they should
    run. ``timeout`` (seconds) bounds each check; ``rtol`` is the default tolerance of the hidden
    checks.
    """

    def __init__(self, name, title, points, *, rtol=DEFAULT_RTOL, timeout=DEFAULT_TIMEOUT):
        if not _NAME.match(name):
            raise ValueError(f"question name {name!r}: use letters, digits, '_' or '-'")
        if points < 0:
            raise ValueError(f"question {name!r}: points must be >= 0, got {points}")
        if not timeout > 0:
            raise ValueError(f"question {name!r}: timeout must be > 0 seconds, got {timeout}")
        self.name, self.title, self.points = name, title, points
        self.rtol, self.timeout = rtol, timeout
        self.checks = []

    def __repr__(self):
        return f"Question({self.name!r}, {self.title!r}, points={self.points}, checks={len(self.checks)})"

    def _register(self, kind, function, weight, rtol):
        def register(function):
            name = getattr(function, "__name__", "")
            if not _NAME.match(name):
                raise ValueError(f"question {self.name!r}: a check must be a named function "
                                 f"(letters, digits, '_'), got {name!r}")
            if any(check.name == name for check in self.checks):
                raise ValueError(f"question {self.name!r} already has a check named {name!r}")
            self.checks.append(Check(name, kind, function, float(weight),
                                     self.rtol if rtol is None else rtol))
            return function
        return register(function) if function is not None else register

    def public(self, function=None, *, weight=1.0, rtol=None):
        """Decorator: ``function(sub)`` is a test students see; it returns ``{name: array}``.

        Run by students (no references), it passes unless it raises; in the real grade its
        arrays are compared with the solution's.
        """
        return self._register("public", function, weight, rtol)

    def hidden(self, function=None, *, weight=1.0, rtol=None):
        """Decorator: ``function(sub)`` returns ``{name: array}`` to compare with the references."""
        return self._register("hidden", function, weight, rtol)

    def check_id(self, check):
        """The name of one check in reports and result files: ``"q1.relu_values"``."""
        return f"{self.name}.{check.name}"

    def describe(self):
        """The question as plain data (JSON-able): what the grading process needs to score it."""
        return {"name": self.name, "title": str(self.title), "points": float(self.points),
                "timeout": float(self.timeout),
                "checks": [{"name": c.name, "kind": c.kind, "weight": float(c.weight),
                            "rtol": float(c.rtol)} for c in self.checks]}

    def reference_key(self, check, key):
        """The name under which one output of a hidden check is stored: ``"q1.relu_values.out"``."""
        return f"{self.name}.{check.name}.{key}"


def relative_error(actual, expected):
    """``max|actual - expected| / max(max|actual|, max|expected|)``, 0 when both are all zeros.

    Measured against the largest magnitude rather than element by element, so that entries that
    happen to be close to zero (where round-off dominates) do not blow the error up. Raises
    ``ValueError`` when the shapes differ.
    """
    complex_values = np.iscomplexobj(actual) or np.iscomplexobj(expected)
    dtype = np.complex128 if complex_values else np.float64
    actual = np.asarray(actual, dtype=dtype)
    expected = np.asarray(expected, dtype=dtype)
    if actual.shape != expected.shape:
        raise ValueError(f"shape {actual.shape}, expected {expected.shape}")
    if actual.size == 0:
        return 0.0
    scale = max(np.max(np.abs(actual)), np.max(np.abs(expected)))
    difference = np.max(np.abs(actual - expected))
    if not np.isfinite(difference) or not np.isfinite(scale):
        return float("inf")
    return float(difference / scale) if scale > 0 else 0.0


def reference_arrays(outputs, where):
    """Check that a check returned ``{str: numeric array}``; return it with arrays."""
    if not isinstance(outputs, dict):
        raise TypeError(f"{where} must return a dict of arrays (the outputs it checked, which the "
                        f"real grade compares with the solution's), got {type(outputs).__name__}")
    if not outputs:
        raise TypeError(f"{where} returned an empty dict: return the outputs it checked")
    arrays = {}
    for key, value in outputs.items():
        try:
            array = np.asarray(value)
        except Exception as error:                       # e.g. ragged lists
            raise TypeError(f"{where}: {key!r} is not an array ({error})") from None
        if array.dtype.kind not in "biufc":
            raise TypeError(f"{where}: {key!r} is not a numeric array "
                            f"(got {type(value).__name__} of dtype {array.dtype})")
        arrays[str(key)] = array
    return arrays


def collect_references(questions, sub):
    """Run every check of ``questions`` (public and hidden) on ``sub``; return one flat dict.

    The keys are :meth:`Question.reference_key` names, the values arrays. Used by the build on
    the instructor's solution; any exception propagates (the solution must run).
    """
    references = {}
    for question in questions:
        for check in question.checks:
            outputs = reference_arrays(check.function(sub), question.check_id(check))
            for key, array in outputs.items():
                references[question.reference_key(check, key)] = array
    return references
