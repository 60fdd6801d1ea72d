"""Grade a submission: run an assignment's checks in a sandboxed process, score them here.

::

    report = grade("alice/", references="build/assignment1/grader")
    report.earned, report.possible        # 87.5, 100
    report.complete                       # False when a check crashed, timed out or did not run

How it works:

* With references, the grader is the ``grader.py`` of the private kit written by the build
  (next to ``references.npz``); it is imported here, and it alone says which questions, points,
  weights and tolerances there are. Without references (what students run themselves) the
  submission's own ``grader.py`` is used, and only the public checks run.
* The submission's code never runs in this process. :func:`~minicnn.assignment.sandbox.run_checks`
  runs the checks in a separate Python process, in a temporary folder that holds the kit's files
  (never ``references.npz``) and the handed-in ``SUBMISSION_FILES``, under resource limits and a
  time budget. That process sends back, per check, the arrays the check returned.
* This process alone reads the references and compares: with references, a check (public or
  hidden) passes when every array it returned is within ``rtol`` relative error
  (:func:`~minicnn.assignment.questions.relative_error`) of the solution's. What the sandboxed
  process says about itself ("passed") is never believed then; without references it is (the
  students' own run is a self-check). A question's points are shared among its checks by weight.
* A check that fails, raises (``NotImplementedError`` from an untouched stub), runs past its time
  limit, crashes the process (``os._exit``, a segfault, the memory limit) or is left when the
  time budget is used up scores 0 and is reported as such; the grading goes on.

Problems with the tooling itself (no grader, unreadable references, a malformed ``QUESTIONS``)
raise :class:`GradeError`; problems with the submission never do.
"""
import dataclasses
import re
import sys
from pathlib import Path

import numpy as np

from .files import HandInError, digest
from .questions import Question, relative_error
from .sandbox import CRASHED, NOT_RUN, TIMEOUT, SandboxError, run_checks
from .submission import CheckTimeout, Submission

__all__ = ["grade", "GradeError", "GradeReport", "QuestionResult", "CheckResult", "load_grader",
           "INCOMPLETE", "printable", "KitChanged"]

PASSED, FAILED, ERROR = "passed", "failed", "error"
NOT_IMPLEMENTED, SKIPPED, PARTIAL = "not implemented", "skipped", "partial"
#: Statuses of checks the grader could not finish: the submission was not graded completely.
INCOMPLETE = (TIMEOUT, CRASHED, NOT_RUN)
_CHILD_FAILURES = (FAILED, ERROR, NOT_IMPLEMENTED, TIMEOUT, CRASHED, NOT_RUN)


class GradeError(Exception):
    """The grader could not run: a problem with the tooling or the kit, or a submission it refuses
    to run at all (a handed-in file that is a link, a device, too large)."""


# Control characters (but newline and tab; ESC starts every terminal escape code), the Unicode
# line separators and the controls that reorder text on screen: shown as escapes, never printed.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                      "\u2028\u2029\u2066-\u2069]")


def printable(text, one_line=True):
    """``text`` (from a submission) made safe to print: escape codes and control characters shown
    as ``\\x1b``-style escapes; with ``one_line``, line breaks shown as ``\\n`` too, so that a
    message cannot start a line of its own (a fake "total")."""
    text = str(text)
    if one_line:
        text = text.replace("\n", "\\n").replace("\t", " ")
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


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
    output: str = ""             # the end of what the submission's process printed (raw)
    isolation: str = ""          # how the submission's code was isolated, in words
    isolated: bool = True        # False: it ran without the operating system's isolation

    @property
    def complete(self):
        """False when a check timed out, crashed the grading process or was not run."""
        return not any(c.status in INCOMPLETE for q in self.questions for c in q.checks)

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
        result.update(earned=self.earned, possible=self.possible, fraction=self.fraction,
                      complete=self.complete)
        return result

    def format(self):
        """The report as text: one row per question, the total, then every check that did not pass."""
        lines = [printable(self.title), f"submission: {printable(self.submission)}"]
        if not self.isolated:
            lines.append(f"WARNING: {printable(self.isolation)}")
        if self.references:
            lines.append(f"references: {self.references}")
        else:
            lines.append("references: none - public checks only, hidden checks skipped "
                         "(the final grade also runs them)")
        rows = [("question", "score", "status", "message")]
        for q in self.questions:
            earned = "-" if q.status == SKIPPED else _points(q.earned)
            rows.append((printable(f"{q.name}  {q.title}"), f"{earned} / {_points(q.points)}",
                         q.status, _first_line(printable(q.message), 60)))
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
                lines.append(f"  {q.name}.{c.name} [{c.kind}, {c.status}]: {printable(c.message)}")
        if not self.complete:
            lines += ["", "NOT GRADED COMPLETELY: some checks timed out, crashed or did not run"]
        printed = printable(self.output, one_line=False).strip().splitlines()[-OUTPUT_LINES:]
        if printed:
            lines += ["", f"what the submission printed (last {len(printed)} lines):"]
            lines += [f"  | {line}" for line in printed]
        if not self.isolated:
            lines += ["", f"WARNING: the submission's code was {printable(self.isolation)}"]
        return "\n".join(lines)


#: Lines of the submission's printed output shown at the end of the report.
OUTPUT_LINES = 15


def _points(value):
    return f"{round(value, 2):g}"


def _first_line(text, width):
    line = text.split("\\n")[0] if text else ""
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
    if not (path.parent / "grader.py").is_file():
        raise GradeError(f"no grader.py next to the references {path}: grading with references "
                         f"needs the whole grading kit written by the build")
    return path, path.parent


def _load_references(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as error:
        raise GradeError(f"could not read the references {path}: {error}") from None


# ----------------------------------------------------------------------------------------------
# Scoring (in this process only, from the arrays the sandboxed process sent back)
# ----------------------------------------------------------------------------------------------

def _compare(question, check, outputs, references):
    """Compare a check's returned arrays with the references: (status, message)."""
    prefix = f"{question['name']}.{check['name']}."
    expected = {key[len(prefix):]: value for key, value in references.items() if key.startswith(prefix)}
    if not expected:
        return ERROR, "no reference values for this check (rebuild the assignment)"
    if set(outputs) != set(expected):
        return ERROR, (f"the check returned {sorted(outputs)} but the references hold "
                       f"{sorted(expected)} (rebuild the assignment)")
    worst = 0.0
    for key in sorted(expected):
        try:
            error = relative_error(outputs[key], expected[key])
        except (ValueError, TypeError) as problem:
            return FAILED, f"{key}: {problem}"
        if not error <= check["rtol"]:
            return FAILED, f"{key}: relative error {error:.2e} (at most {check['rtol']:.0e} allowed)"
        worst = max(worst, error)
    return PASSED, f"largest relative error {worst:.1e}"


def _decide(question, check, raw, references):
    """The status and message of one check, decided here; ``raw`` is the child's (untrusted) word."""
    if check["kind"] == "hidden" and references is None:
        return SKIPPED, "no references"
    if raw is None:
        return NOT_RUN, "no result came back for this check"
    if references is not None and raw.outputs is not None:
        return _compare(question, check, raw.outputs, references)   # the arrays alone decide
    if raw.status == PASSED:
        if raw.outputs is None:
            return ERROR, "the check sent back no outputs"
        return PASSED, ""            # students' own run (no references): the public check ran
    if raw.status not in _CHILD_FAILURES:
        return ERROR, f"unexpected status {raw.status!r} from the grading process"
    return raw.status, raw.message


def _grade_question(question, results, references):
    checks = []
    for check in question["checks"]:
        raw = results.get(f"{question['name']}.{check['name']}")
        status, message = _decide(question, check, raw, references)
        checks.append(CheckResult(check["name"], check["kind"], status, message, check["weight"]))
    counted = [c for c in checks if c.status != SKIPPED]
    weight = sum(c.weight for c in counted)
    passed = [c for c in counted if c.passed]
    failed = [c for c in counted if not c.passed]
    earned = question["points"] * sum(c.weight for c in passed) / weight if weight else 0.0
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
    return QuestionResult(question["name"], question["title"], question["points"], earned, status,
                          message, checks)


def _questions_from_manifest(manifest, folder):
    """The questions as the submission's own grader listed them (students' own run only)."""
    try:
        questions = []
        for q in manifest["questions"]:
            checks = [{"name": str(c["name"]), "kind": str(c["kind"]), "weight": float(c["weight"]),
                       "rtol": float(c["rtol"])} for c in q["checks"]]
            questions.append({"name": str(q["name"]), "title": str(q["title"]),
                              "points": float(q["points"]), "checks": checks})
        return questions
    except (KeyError, TypeError, ValueError) as error:
        raise GradeError(f"the grader in {folder} listed its questions in an unexpected form "
                         f"({type(error).__name__}: {error})") from None


def _trusted_grader(kit):
    """The kit's questions (as data), title and SUBMISSION_FILES, imported in this process.

    The kit's ``grader.py`` is the instructor's code; no file of the submission is involved.
    """
    with Submission(kit) as own:
        grader = load_grader(own, kit / "grader.py")
        questions = [q.describe() for q in grader.QUESTIONS]
        title = getattr(grader, "TITLE", None)
        submission_files = [str(name) for name in getattr(grader, "SUBMISSION_FILES", ())]
    return questions, title, submission_files


def kit_questions(references):
    """The kit grader's questions (as data) and its ``WRITTEN`` questions, graded by hand
    (``{key: (title, points)}``)."""
    _, kit = _locate_references(references)
    if kit is None:
        raise GradeError("grading a class needs the kit folder written by the build (--references)")
    with Submission(kit) as own:
        grader = load_grader(own, kit / "grader.py")
        questions = [q.describe() for q in grader.QUESTIONS]
        written = getattr(grader, "WRITTEN", {}) or {}
    return questions, {str(key): (str(title), float(points))
                       for key, (title, points) in written.items()}


def _run_isolated(folder, kit, submission_files, plan, limits, require_isolation, **options):
    """:func:`run_checks`, its refusals as :class:`GradeError` (the kit checked unchanged after)."""
    before = digest(kit) if kit is not None else None
    try:
        run = run_checks(folder, kit, submission_files, plan, limits,
                         require_isolation=require_isolation, **options)
    except HandInError as error:
        raise GradeError(f"refused the hand-in in {folder}: {error}") from None
    except SandboxError as error:
        raise GradeError(str(error)) from None
    if before is not None:
        after = digest(kit)
        changed = sorted(name for name in before.keys() | after.keys()
                         if before.get(name) != after.get(name))
        if changed:
            raise KitChanged(f"the grading kit {kit} changed while {folder.name} was graded "
                             f"({', '.join(changed)}): restore it from the build before grading "
                             f"on")
    return run


class KitChanged(GradeError):
    """The grading kit's files changed during a grading: nothing graded with it can be trusted."""


def grade(submission_dir, references=None, *, quiet=False, file=None, limits=None,
          require_isolation=False):
    """Grade the assignment in ``submission_dir``; print and return a :class:`GradeReport`.

    ``references`` is the kit folder written by the build (``out/grader``) or the path of its
    ``references.npz`` (with the kit's ``grader.py`` next to it); ``None`` runs the public checks
    only, with the submission's own ``grader.py`` (what students do). The submission's code runs
    in a separate process, isolated by the operating system where bubblewrap runs
    (``require_isolation``: refuse where it does not), under ``limits``
    (:class:`~minicnn.assignment.sandbox.Limits`); this process compares and scores. The report is
    printed to ``file`` (standard output by default) unless ``quiet``.
    """
    folder = Path(submission_dir).resolve()
    if not folder.is_dir():
        raise GradeError(f"{submission_dir} is not a folder")
    references_path, kit = _locate_references(references)
    grader_path = (kit or folder) / "grader.py"
    if not grader_path.is_file():
        raise GradeError(f"no grader.py in {grader_path.parent}")
    reference_values = _load_references(references_path) if references_path else None

    if kit is not None:
        questions, title, submission_files = _trusted_grader(kit)
        plan = [f"{q['name']}.{c['name']}" for q in questions for c in q["checks"]]
        run = _run_isolated(folder, kit, submission_files, plan, limits, require_isolation,
                            questions=questions)
    else:
        run = _run_isolated(folder, None, (), None, limits, require_isolation, kinds=("public",))
        if run.manifest is None:
            detail = f"\n{printable(run.output, one_line=False).rstrip()}" if run.output.strip() else ""
            raise GradeError(f"could not run the grader {grader_path}: "
                             f"{printable(run.failure)}{detail}")
        questions = _questions_from_manifest(run.manifest, folder)
        title = str(run.manifest.get("title") or "")

    results = [_grade_question(q, run.results, reference_values) for q in questions]
    report = GradeReport(title=title or folder.name, submission=str(folder),
                         references=str(references_path) if references_path else None,
                         questions=results, output=run.output,
                         isolation=run.isolation.describe(), isolated=run.isolation.isolated)
    if not quiet:
        print(report.format(), file=file or sys.stdout)
    return report
