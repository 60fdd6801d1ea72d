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
import os
import re
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from .challenge import Challenge, ChallengeData, load_data, run_challenge
from .files import HandInError, digest, read_regular
from .output import printable
from .questions import EXPECTED_FILE, Question, hidden_weight_key, relative_error
from .sandbox import CRASHED, NOT_RUN, TIMEOUT, Limits, SandboxError, run_checks
from .submission import CheckTimeout, Submission

__all__ = ["grade", "GradeError", "GradeReport", "QuestionResult", "CheckResult", "load_grader",
           "INCOMPLETE", "printable", "KitChanged", "gradescope_results", "written_answers",
           "kit_challenge", "challenge_data"]

PASSED, FAILED, ERROR = "passed", "failed", "error"
NOT_IMPLEMENTED, SKIPPED, PARTIAL = "not implemented", "skipped", "partial"
#: Statuses of checks the grader could not finish: the submission was not graded completely.
INCOMPLETE = (TIMEOUT, CRASHED, NOT_RUN)
_CHILD_FAILURES = (FAILED, ERROR, NOT_IMPLEMENTED, TIMEOUT, CRASHED, NOT_RUN)


class GradeError(Exception):
    """The grader could not run: a problem with the tooling or the kit, or a submission it refuses
    to run at all (a handed-in file that is a link, a device, too large)."""


@dataclasses.dataclass
class CheckResult:
    """The outcome of one check."""
    name: str
    kind: str
    status: str
    message: str = ""
    weight: float = 1.0
    points: float = 0.0          # its share of the question's points
    earned: float = 0.0          # of those, what it scored (outputs are scored one by one)

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
    possible: float = None       # points at stake here (the public part only in a student's run)

    def __post_init__(self):
        if self.possible is None:
            self.possible = 0.0 if self.status == SKIPPED else self.points


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
    missing: list = dataclasses.field(default_factory=list)   # expected files not handed in
    written: dict = dataclasses.field(default_factory=dict)   # {"w1": answer text, "" if none}
    expected: str = None         # the expected values a student's own run scored against
    challenge: object = None     # the challenge's ChallengeResult, when it was run
    hours: float = None          # the hours the student says the assignment took (answers file)

    @property
    def complete(self):
        """False when an expected file was not handed in, or a check timed out, crashed the
        grading process or was not run."""
        return not self.missing and \
            not any(c.status in INCOMPLETE for q in self.questions for c in q.checks)

    @property
    def earned(self):
        return sum(q.earned for q in self.questions)

    @property
    def possible(self):
        """Points at stake: the checks that ran (in a student's own run, the public part)."""
        return sum(q.possible for q in self.questions)

    @property
    def public_earned(self):
        """Points scored by the public checks: the same in a student's run and the real grade."""
        return sum(c.earned for q in self.questions for c in q.checks if c.kind == "public")

    @property
    def public_possible(self):
        return sum(c.points for q in self.questions for c in q.checks if c.kind == "public")

    @property
    def fraction(self):
        return self.earned / self.possible if self.possible else 0.0

    def to_dict(self):
        """A JSON-able copy of the report."""
        result = dataclasses.asdict(self)
        result.update(earned=self.earned, possible=self.possible, fraction=self.fraction,
                      complete=self.complete, public_earned=self.public_earned,
                      public_possible=self.public_possible)
        return result

    def format(self):
        """The report as text: one row per question, the total, then every check that did not pass."""
        lines = [printable(self.title), f"submission: {printable(self.submission)}"]
        if not self.isolated:
            lines.append(f"WARNING: {printable(self.isolation)}")
        if self.references:
            lines.append(f"references: {self.references}")
        elif self.expected:
            lines.append(f"public checks only, scored against {self.expected} exactly as the "
                         f"final grade scores them; the final grade adds the hidden checks "
                         f"(score / the points of the public checks)")
        else:
            lines.append("references: none - public checks only, hidden checks skipped "
                         "(the final grade also runs them)")
        if self.missing:
            lines.append(f"NOT HANDED IN: {', '.join(map(printable, self.missing))}")
        rows = [("question", "score", "status", "message")]
        for q in self.questions:
            earned = "-" if q.status == SKIPPED else _points(q.earned)
            rows.append((printable(f"{q.name}  {q.title}"), f"{earned} / {_points(q.possible)}",
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
        empty = [key for key, text in self.written.items() if not text]
        if empty:
            lines += ["", f"written answers missing: {', '.join(map(printable, empty))}"]
        if self.challenge is not None:
            lines += ["", f"challenge (ranked, not graded): {printable(self.challenge.describe())}"]
        if not self.complete:
            lines += ["", "NOT GRADED COMPLETELY: " + ("expected files were not handed in"
                                                      if self.missing else
                                                      "some checks timed out, crashed or did not "
                                                      "run")]
        printed = printable(self.output, one_line=False).strip().splitlines()[-OUTPUT_LINES:]
        if printed:
            lines += ["", f"what the submission printed (last {len(printed)} lines):"]
            lines += [f"  | {line}" for line in printed]
        if not self.isolated:
            lines += ["", f"WARNING: the submission's code was {printable(self.isolation)}"]
        return "\n".join(lines)


def gradescope_results(report):
    """``report`` as Gradescope's autograder ``results.json`` (a dict, ready for ``json.dump``).

    One test per check, named ``"q1.affine_gradients (Affine layer)"``, with its share of the
    question's points; public checks are ``visible`` at once, hidden ones ``after_published``
    (students see their names and results once the instructor publishes the grades). The written
    questions are not in it: they are graded by hand, in Gradescope or from the class CSV.
    """
    tests = []
    for q in report.questions:
        for c in q.checks:
            if c.status == SKIPPED:
                continue
            tests.append({
                "name": printable(f"{q.name}.{c.name} ({q.title})"),
                "score": round(c.earned, 6), "max_score": round(c.points, 6),
                "status": "passed" if c.passed else "failed",
                "output": printable(f"{c.status}: {c.message}" if c.message else c.status),
                "visibility": "visible" if c.kind == "public" else "after_published"})
    notes = [f"{_points(report.earned)} / {_points(report.possible)} points from the automatic "
             f"checks"]
    if report.missing:
        notes.append(f"not handed in: {', '.join(map(printable, report.missing))}")
    empty = [key for key, text in report.written.items() if not text]
    if empty:
        notes.append(f"written answers missing: {', '.join(empty)}")
    if not report.complete:
        notes.append("NOT GRADED COMPLETELY: see the tests below")
    return {"score": round(report.earned, 6), "max_score": round(report.possible, 6),
            "output": "\n".join(notes), "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests}


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

def _expected_for(question, check, references):
    prefix = f"{question['name']}.{check['name']}."
    return {key[len(prefix):]: value for key, value in references.items()
            if key.startswith(prefix)}


def _compare(check, outputs, expected):
    """Compare a check's returned arrays with the expected ones, output by output:
    ``(status, message, fraction of the outputs that match)``. Outputs the check returned that the
    references do not hold are ignored; a missing or wrongly shaped output fails by itself."""
    problems, worst = [], 0.0
    for key in sorted(expected):
        if key not in outputs:
            problems.append(f"{key}: not returned")
            continue
        try:
            error = relative_error(outputs[key], expected[key])
        except (ValueError, TypeError) as problem:
            problems.append(f"{key}: {problem}")
            continue
        if not error <= check["rtol"]:
            problems.append(f"{key}: relative error {error:.2e} (at most {check['rtol']:.0e} "
                            f"allowed)")
        else:
            worst = max(worst, error)
    right = len(expected) - len(problems)
    if not problems:
        return PASSED, f"largest relative error {worst:.1e}", 1.0
    status = PARTIAL if right else FAILED
    message = "; ".join(problems)
    if right:
        message += f" ({right} of {len(expected)} outputs right)"
    return status, message, right / len(expected)


def _decide(question, check, raw, references, strict):
    """``(status, message, fraction earned)`` of one check, decided here; ``raw`` is the child's
    (untrusted) word. ``references`` holds the expected values (the kit's, or the public ones a
    student's copy ships) or is None; ``strict`` (the real grade): every check must have some."""
    expected = _expected_for(question, check, references) if references is not None else {}
    if not expected and not strict and check["kind"] == "hidden":
        return SKIPPED, "no references", 0.0
    if raw is None:
        return NOT_RUN, "no result came back for this check", 0.0
    if raw.outputs is not None and (expected or strict):
        if not expected:
            return ERROR, "no reference values for this check (rebuild the assignment)", 0.0
        return _compare(check, raw.outputs, expected)   # the arrays alone decide
    if raw.status == PASSED:
        if raw.outputs is None:
            return ERROR, "the check sent back no outputs", 0.0
        return PASSED, "", 1.0       # a student's own run, no expected values: the check ran
    if raw.status not in _CHILD_FAILURES:
        return ERROR, f"unexpected status {raw.status!r} from the grading process", 0.0
    return raw.status, raw.message, 0.0


def _grade_question(question, results, references, strict=False, extra_hidden_weight=0.0):
    """Score one question: every check gets ``points * weight / total weight`` of it, and earns
    that share times the fraction of its outputs that match."""
    total_weight = sum(c["weight"] for c in question["checks"]) + extra_hidden_weight
    checks = []
    for check in question["checks"]:
        raw = results.get(f"{question['name']}.{check['name']}")
        status, message, fraction = _decide(question, check, raw, references, strict)
        share = question["points"] * check["weight"] / total_weight if total_weight else 0.0
        checks.append(CheckResult(check["name"], check["kind"], status, message, check["weight"],
                                  points=share, earned=share * fraction))
    counted = [c for c in checks if c.status != SKIPPED]
    weight = sum(c.weight for c in counted)
    failed = [c for c in counted if not c.passed]
    some = [c for c in counted if c.earned > 0]
    if not failed and weight == total_weight:
        possible = earned = question["points"]          # exact: no sum of rounded shares
    else:
        possible = question["points"] * weight / total_weight if total_weight else 0.0
        earned = possible if not failed else sum(c.earned for c in counted)
    if not counted:
        status = SKIPPED
    elif not failed:
        status = PASSED
    elif some:
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
                          message, checks, possible=0.0 if status == SKIPPED else possible)


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


#: Where the written answers are handed in, unless the grader says otherwise (``ANSWERS_FILE``).
ANSWERS_FILE = "answers.md"


@dataclasses.dataclass
class KitGrader:
    """What the kit's ``grader.py`` declares (imported in this process: the instructor's code)."""
    questions: list              # as data (Question.describe())
    title: str
    submission_files: list       # the code handed in
    written: dict                # {"w1": (title, points)}: graded by hand
    answers_file: str            # where the written answers are (None without WRITTEN)
    challenge: Challenge = None  # the open-ended challenge (CHALLENGE), if the kit has one

    @property
    def expected_files(self):
        """Every file a complete hand-in holds."""
        return self.submission_files + ([self.answers_file] if self.answers_file else [])


def _trusted_grader(kit):
    """The kit's :class:`KitGrader`; no file of the submission is involved."""
    with Submission(kit) as own:
        grader = load_grader(own, kit / "grader.py")
        questions = [q.describe() for q in grader.QUESTIONS]
        title = getattr(grader, "TITLE", None)
        submission_files = [str(name) for name in getattr(grader, "SUBMISSION_FILES", ())]
        written = {str(key): (str(title), float(points))
                   for key, (title, points) in (getattr(grader, "WRITTEN", {}) or {}).items()}
        answers = str(getattr(grader, "ANSWERS_FILE", ANSWERS_FILE)) if written else None
        challenge = getattr(grader, "CHALLENGE", None)
        if challenge is not None and not isinstance(challenge, Challenge):
            raise GradeError(f"{kit / 'grader.py'}: CHALLENGE must be a minicnn.assignment."
                             f"Challenge, got {type(challenge).__name__}")
    return KitGrader(questions, title, submission_files, written, answers, challenge)


def kit_challenge(references):
    """The kit's :class:`~minicnn.assignment.challenge.Challenge`, or None when it has none."""
    _, kit = _locate_references(references)
    if kit is None:
        raise GradeError("the challenge needs the kit folder written by the build (--references)")
    return _trusted_grader(kit).challenge


def challenge_data(folder=None):
    """The challenge's data set (:func:`~minicnn.assignment.challenge.load_data`), problems as
    :class:`GradeError`."""
    try:
        return load_data(folder)
    except ValueError as error:
        raise GradeError(str(error)) from None


def kit_questions(references):
    """The kit grader's questions (as data) and its ``WRITTEN`` questions, graded by hand
    (``{key: (title, points)}``)."""
    _, kit = _locate_references(references)
    if kit is None:
        raise GradeError("grading a class needs the kit folder written by the build (--references)")
    declared = _trusted_grader(kit)
    return declared.questions, declared.written


def _sections(text):
    """``{"w1": [lines]}``: the lines under each ``## W1 ...`` heading of an answers file."""
    sections, current = {}, None
    for line in text.splitlines():
        heading = re.match(r"^##\s+([A-Za-z]+\d+)\b", line)
        if heading:
            current = heading.group(1).lower()
            sections[current] = []
        elif line.startswith("#"):
            current = None
        elif current is not None:
            sections[current].append(line.rstrip())
    return sections


def written_answers(answers_text, template_text, keys):
    """``{key: answer}`` for every written question: the lines of its section that the handout's
    template (``template_text``) does not already hold; ``""`` where nothing was written."""
    answers, template = _sections(answers_text), _sections(template_text or "")
    result = {}
    for key in keys:
        given = set(line.strip() for line in template.get(key.lower(), []))
        lines = [line for line in answers.get(key.lower(), [])
                 if line.strip() and line.strip() not in given]
        result[key] = "\n".join(lines).strip()
    return result


#: ``Hours spent: 7.5`` in an answers file: what the assignment took the student (not graded).
_HOURS = re.compile(r"^\s*hours spent\s*:\s*(?P<hours>\d+(?:[.,]\d+)?)\s*(?:h|hours?)?\s*$",
                    re.IGNORECASE | re.MULTILINE)
#: Fewer hours than this, or more, is not a number of hours that an assignment took.
HOURS_RANGE = (0.25, 200.0)


def hours_spent(answers_text):
    """The number on the answers file's ``Hours spent:`` line (``7``, ``7.5``, ``7,5 h``), or None
    when there is no such number, or it is not a plausible time for an assignment."""
    found = _HOURS.search(answers_text or "")
    if found is None:
        return None
    hours = float(found["hours"].replace(",", "."))
    return hours if HOURS_RANGE[0] <= hours <= HOURS_RANGE[1] else None


def _collect_written(folder, kit, declared, limits):
    """The written answers of a submission (``{key: text}``, ``""`` for each missing one) and the
    hours it says it took (None when it does not say)."""
    if not declared.written:
        return {}, None
    max_bytes = (limits or Limits()).handin_bytes
    try:
        data = read_regular(folder, PurePosixPath(declared.answers_file), max_bytes)
    except HandInError as error:
        raise GradeError(f"refused the hand-in in {folder}: {error}") from None
    template_path = kit / declared.answers_file
    template = template_path.read_text(encoding="utf-8") if template_path.is_file() else ""
    text = "" if data is None else data.decode("utf-8", errors="replace")
    return written_answers(text, template, list(declared.written)), hours_spent(text)


def _missing_files(folder, names):
    """The expected files that are not in the submission folder (links count as present: the
    sandbox refuses them with a clear message)."""
    return [name for name in names if not os.path.lexists(Path(folder) / PurePosixPath(name))]


def _expected_values(folder):
    """A student copy's :data:`EXPECTED_FILE`: ``(expected arrays, {question: hidden weight})``,
    or ``(None, {})`` where there is none."""
    path = Path(folder) / EXPECTED_FILE
    if not path.is_file():
        return None, {}
    values = _load_references(path)
    prefix = hidden_weight_key("")
    weights = {key[len(prefix):]: float(values.pop(key)) for key in list(values)
               if key.startswith(prefix)}
    return values, weights


class KitChanged(GradeError):
    """The grading kit's files changed during a grading: nothing graded with it can be trusted."""


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


def _run_challenge(folder, kit, declared, data, limits, require_isolation):
    """:func:`~minicnn.assignment.challenge.run_challenge`, its refusals as :class:`GradeError`."""
    before = digest(kit)
    try:
        result = run_challenge(folder, kit, declared.challenge, declared.submission_files, data,
                               limits, require_isolation=require_isolation)
    except HandInError as error:
        raise GradeError(f"refused the hand-in in {folder}: {error}") from None
    except SandboxError as error:
        raise GradeError(str(error)) from None
    if digest(kit) != before:
        raise KitChanged(f"the grading kit {kit} changed while {folder.name}'s challenge ran: "
                         f"restore it from the build before grading on")
    return result


def grade(submission_dir, references=None, *, quiet=False, file=None, limits=None,
          require_isolation=False, challenge=False, data=None):
    """Grade the assignment in ``submission_dir``; print and return a :class:`GradeReport`.

    ``references`` is the kit folder written by the build (``out/grader``) or the path of its
    ``references.npz`` (with the kit's ``grader.py`` next to it); ``None`` runs the public checks
    only, with the submission's own ``grader.py`` (what students do). The submission's code runs
    in a separate process, isolated by the operating system where bubblewrap runs
    (``require_isolation``: refuse where it does not), under ``limits``
    (:class:`~minicnn.assignment.sandbox.Limits`); this process compares and scores. The report is
    printed to ``file`` (standard output by default) unless ``quiet``.

    ``challenge=True`` also runs the kit's open-ended challenge (:mod:`~minicnn.assignment.challenge`;
    refused when the kit has none) on ``data``: a folder of Fashion-MNIST IDX files, a loaded
    :class:`~minicnn.assignment.challenge.ChallengeData`, or None for the usual places. Its result
    is ``report.challenge``; it adds no points.
    """
    folder = Path(submission_dir).resolve()
    if not folder.is_dir():
        raise GradeError(f"{submission_dir} is not a folder")
    references_path, kit = _locate_references(references)
    grader_path = (kit or folder) / "grader.py"
    if not grader_path.is_file():
        raise GradeError(f"no grader.py in {grader_path.parent}")
    reference_values = _load_references(references_path) if references_path else None

    missing, written, hours, expected_path, hidden_weights, ranked = [], {}, None, None, {}, None
    if challenge and kit is None:
        raise GradeError("the challenge needs the grading kit (--references)")
    if kit is not None:
        declared = _trusted_grader(kit)
        if challenge:
            if declared.challenge is None:
                raise GradeError(f"the grading kit {kit} has no challenge (no CHALLENGE in its "
                                 f"grader.py)")
            if not isinstance(data, ChallengeData):
                data = challenge_data(data)
        questions, title = declared.questions, declared.title
        missing = _missing_files(folder, declared.expected_files)
        written, hours = _collect_written(folder, kit, declared, limits)
        plan = [f"{q['name']}.{c['name']}" for q in questions for c in q["checks"]]
        run = _run_isolated(folder, kit, declared.submission_files, plan, limits,
                            require_isolation, questions=questions)
        if challenge:
            ranked = _run_challenge(folder, kit, declared, data, limits, require_isolation)
    else:
        run = _run_isolated(folder, None, (), None, limits, require_isolation, kinds=("public",))
        if run.manifest is None:
            detail = f"\n{printable(run.output, one_line=False).rstrip()}" if run.output.strip() else ""
            raise GradeError(f"could not run the grader {grader_path}: "
                             f"{printable(run.failure)}{detail}")
        questions = _questions_from_manifest(run.manifest, folder)
        title = str(run.manifest.get("title") or "")
        reference_values, hidden_weights = _expected_values(folder)
        if reference_values is not None:
            expected_path = EXPECTED_FILE

    results = []
    for q in questions:
        has_hidden = any(c["kind"] == "hidden" for c in q["checks"])
        extra = 0.0 if has_hidden else hidden_weights.get(q["name"], 0.0)
        results.append(_grade_question(q, run.results, reference_values, strict=kit is not None,
                                       extra_hidden_weight=extra))
    report = GradeReport(title=title or folder.name, submission=str(folder),
                         references=str(references_path) if references_path else None,
                         questions=results, output=run.output,
                         isolation=run.isolation.describe(), isolated=run.isolation.isolated,
                         missing=missing, written=written, expected=expected_path,
                         challenge=ranked, hours=hours)
    if not quiet:
        print(report.format(), file=file or sys.stdout)
    return report
