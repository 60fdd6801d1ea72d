"""Grade a submission: run an assignment's questions and print a score report.

::

    report = grade("alice/", references="build/assignment1/grader")
    report.earned, report.possible        # 87.5, 100

What runs:

* The grader is the ``grader.py`` next to the references (the private kit written by the build),
  or, without one there, the submission's own ``grader.py``. Only the files the grader lists in
  ``SUBMISSION_FILES`` are taken from the submission; other modules come from the grader's folder.
* Every check runs on its own: an exception (``NotImplementedError`` from an untouched stub, a
  wrong shape, a failed assertion) or a time-out scores 0 for that check and the grader moves on.
  A question's points are shared among its checks by weight.
* Public checks pass unless they raise. Hidden checks pass when every array they return is within
  ``rtol`` relative error (:func:`~minicnn.assignment.questions.relative_error`) of the stored
  reference. Without references (``references=None``, what students run themselves) hidden checks
  are skipped, each question is scored on its public checks alone, and the report says so.

Problems with the tooling itself (no grader, unreadable references, a malformed ``QUESTIONS``)
raise :class:`GradeError`; problems with the submission never do.
"""
import dataclasses
import sys
import traceback
from pathlib import Path

import numpy as np

from .questions import Question, reference_arrays, relative_error
from .submission import CheckTimeout, Submission, time_limit

__all__ = ["grade", "GradeError", "GradeReport", "QuestionResult", "CheckResult", "load_grader"]

PASSED, FAILED, ERROR = "passed", "failed", "error"
NOT_IMPLEMENTED, TIMEOUT, SKIPPED, PARTIAL = "not implemented", "timeout", "skipped", "partial"


class GradeError(Exception):
    """The grader could not run (a problem with the tooling or the kit, not with the submission)."""


@dataclasses.dataclass
class CheckResult:
    """The outcome of one check."""
    name: str
    kind: str
    status: str
    message: str = ""
    weight: float = 1.0

    @property
    def passed(self):
        return self.status == PASSED


@dataclasses.dataclass
class QuestionResult:
    """The score of one question and the results of its checks."""
    name: str
    title: str
    points: float
    earned: float
    status: str
    message: str
    checks: list


@dataclasses.dataclass
class GradeReport:
    """Everything :func:`grade` found out. ``format()`` is the printed report."""
    title: str
    submission: str
    references: str              # None when hidden checks were skipped
    questions: list

    @property
    def earned(self):
        return sum(q.earned for q in self.questions)

    @property
    def possible(self):
        """Points at stake: every question that had at least one check to run."""
        return sum(q.points for q in self.questions if q.status != SKIPPED)

    @property
    def fraction(self):
        return self.earned / self.possible if self.possible else 0.0

    def to_dict(self):
        """A JSON-able copy of the report."""
        result = dataclasses.asdict(self)
        result.update(earned=self.earned, possible=self.possible, fraction=self.fraction)
        return result

    def format(self):
        """The report as text: one row per question, the total, then every check that did not pass."""
        lines = [self.title, f"submission: {self.submission}"]
        if self.references:
            lines.append(f"references: {self.references}")
        else:
            lines.append("references: none - public checks only, hidden checks skipped "
                         "(the final grade also runs them)")
        rows = [("question", "score", "status", "message")]
        for q in self.questions:
            earned = "-" if q.status == SKIPPED else _points(q.earned)
            rows.append((f"{q.name}  {q.title}", f"{earned} / {_points(q.points)}",
                         q.status, _first_line(q.message, 60)))
        rows.append(("total", f"{_points(self.earned)} / {_points(self.possible)}",
                     f"{100 * self.fraction:.1f}%", ""))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines.append("")
        for index, row in enumerate(rows):
            if index == len(rows) - 1:
                lines.append("-" * (sum(widths) + 6))
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3]]
            lines.append("  ".join(cells).rstrip())
        # Every check that did not pass, except in questions not started at all (the table says it).
        details = [(q, c) for q in self.questions if q.status != NOT_IMPLEMENTED
                   for c in q.checks if c.status not in (PASSED, SKIPPED)]
        if details:
            lines += ["", "checks that did not pass:"]
            for q, c in details:
                lines.append(f"  {q.name}.{c.name} [{c.kind}, {c.status}]: {c.message}")
        return "\n".join(lines)


def _points(value):
    return f"{round(value, 2):g}"


def _first_line(text, width):
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[:width - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Loading the grader and the references
# ----------------------------------------------------------------------------------------------

def load_grader(sub, path):
    """Import the grader module at ``path`` inside ``sub``'s isolation and check its QUESTIONS."""
    try:
        grader = sub.load_file(path, "grader")
    except (ImportError, CheckTimeout) as error:
        raise GradeError(f"could not import the grader {path}: {error}") from None
    questions = getattr(grader, "QUESTIONS", None)
    if not isinstance(questions, (list, tuple)) or not all(isinstance(q, Question) for q in questions):
        raise GradeError(f"{path} must define QUESTIONS, a list of minicnn.assignment.Question")
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise GradeError(f"{path}: question names repeat: {names}")
    return grader


def _locate_references(references):
    """Return (references.npz path, kit folder or None) for the ``references`` argument."""
    if references is None:
        return None, None
    path = Path(references)
    if path.is_dir():
        path = path / "references.npz"
    if not path.is_file():
        raise GradeError(f"no references file at {path}")
    kit = path.parent if (path.parent / "grader.py").is_file() else None
    return path, kit


def _load_references(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as error:
        raise GradeError(f"could not read the references {path}: {error}") from None


# ----------------------------------------------------------------------------------------------
# Running the checks
# ----------------------------------------------------------------------------------------------

def _innermost(error, folder):
    """``(file name, line, function)`` of the innermost frame of ``error`` in ``folder``, or None."""
    found = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        path = Path(frame.f_code.co_filename)
        if path.parent == folder:
            found = (path.name, line, frame.f_code.co_name)
    return found


def _where(error, folder):
    """`` (layers.py:57 in relu_forward)``, or "" when the error did not pass through ``folder``."""
    found = _innermost(error, folder)
    return f" ({found[0]}:{found[1]} in {found[2]})" if found else ""


def _compare(question, check, outputs, references):
    """Compare a hidden check's outputs with the references: (status, message)."""
    prefix = question.reference_key(check, "")
    expected = {key[len(prefix):]: value for key, value in references.items() if key.startswith(prefix)}
    if not expected:
        return ERROR, "no reference values for this check (rebuild the assignment)"
    if set(outputs) != set(expected):
        return ERROR, (f"the check returned {sorted(outputs)} but the references hold "
                       f"{sorted(expected)} (rebuild the assignment)")
    worst = 0.0
    for key in expected:
        try:
            error = relative_error(outputs[key], expected[key])
        except ValueError as problem:
            return FAILED, f"{key}: {problem}"
        if not error <= check.rtol:
            return FAILED, f"{key}: relative error {error:.2e} (at most {check.rtol:.0e} allowed)"
        worst = max(worst, error)
    return PASSED, f"largest relative error {worst:.1e}"


def _run_check(question, check, sub, references):
    """Run one check; never raises (except KeyboardInterrupt)."""
    result = CheckResult(check.name, check.kind, SKIPPED, "", check.weight)
    if check.kind == "hidden" and references is None:
        result.message = "no references"
        return result
    try:
        with time_limit(question.timeout):
            value = check.function(sub)
            outputs = reference_arrays(value, "this check") if check.kind == "hidden" else None
    except CheckTimeout as error:
        result.status, result.message = TIMEOUT, str(error) + _where(error, sub.directory)
    except NotImplementedError as error:
        result.status = NOT_IMPLEMENTED
        found = _innermost(error, sub.directory)
        result.message = (f"{found[2]} is not implemented yet ({found[0]}:{found[1]})" if found
                          else f"NotImplementedError: {error}".rstrip(": "))
    except AssertionError as error:
        result.status = FAILED
        result.message = (str(error) or "assertion failed") + _where(error, sub.directory)
    except (Exception, SystemExit) as error:
        result.status = ERROR
        result.message = f"{type(error).__name__}: {error}{_where(error, sub.directory)}"
    else:
        if check.kind == "hidden":
            result.status, result.message = _compare(question, check, outputs, references)
        else:
            result.status = PASSED
    return result


def _grade_question(question, sub, references):
    checks = [_run_check(question, check, sub, references) for check in question.checks]
    counted = [c for c in checks if c.status != SKIPPED]
    weight = sum(c.weight for c in counted)
    passed = [c for c in counted if c.passed]
    failed = [c for c in counted if not c.passed]
    earned = question.points * sum(c.weight for c in passed) / weight if weight else 0.0
    if not counted:
        status = SKIPPED
    elif not failed:
        status = PASSED
    elif passed:
        status = PARTIAL
    elif all(c.status == NOT_IMPLEMENTED for c in failed):
        status = NOT_IMPLEMENTED
    else:
        status = next(c.status for c in failed if c.status != NOT_IMPLEMENTED)
    if status == NOT_IMPLEMENTED:
        message = failed[0].message
    else:
        message = f"{failed[0].name}: {failed[0].message}" if failed else ""
    return QuestionResult(question.name, question.title, question.points, earned, status,
                          message, checks)


def grade(submission_dir, references=None, *, quiet=False, file=None):
    """Grade the assignment in ``submission_dir``; print and return a :class:`GradeReport`.

    ``references`` is the kit folder written by the build (``out/grader``) or the path of its
    ``references.npz``; ``None`` runs the public checks only. The report is printed to ``file``
    (standard output by default) unless ``quiet``.
    """
    folder = Path(submission_dir).resolve()
    if not folder.is_dir():
        raise GradeError(f"{submission_dir} is not a folder")
    references_path, kit = _locate_references(references)
    grader_path = (kit or folder) / "grader.py"
    if not grader_path.is_file():
        raise GradeError(f"no grader.py in {grader_path.parent}")
    reference_values = _load_references(references_path) if references_path else None

    with Submission(folder, provided_dir=kit) as sub:
        grader = load_grader(sub, grader_path)
        sub.submission_files = set(getattr(grader, "SUBMISSION_FILES", ()))
        results = [_grade_question(q, sub, reference_values) for q in grader.QUESTIONS]
        title = getattr(grader, "TITLE", folder.name)

    report = GradeReport(title=title, submission=str(folder),
                         references=str(references_path) if references_path else None,
                         questions=results)
    if not quiet:
        print(report.format(), file=file or sys.stdout)
    return report
