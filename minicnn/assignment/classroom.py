"""Grade a whole class: every submission folder under one folder, one CSV of marks.

::

    minicnn assignment grade-all submissions/ --references build/a2/grader --csv marks.csv

``submissions/alice/``, ``submissions/bob/`` ... each hold one student's handed-in files (the
folder's name is the student's). Each is graded exactly as ``minicnn assignment grade`` grades
one (its own isolated process, the kit's references). The CSV has one row per student: the points
of every question, the automatic total, whether every check could be run, and an empty column for
each written question that the grader lists in ``WRITTEN`` (``{"w1": ("title", points)}``), for
the instructor to fill in.

A class run always finishes, and what it graded is never lost:

* the CSV (and the JSON folder) are checked writable before the first submission is graded, and
  the CSV is rewritten, atomically, after every student: a run that is stopped keeps every row
  graded so far;
* one submission's failure (a refused hand-in, a crash of the tooling itself, a hang: its time
  budget) costs only its own row, which says why;
* a folder that is a symbolic link is not followed;
* the run ends with a summary: who was graded, who could not be and why. It stops early only when
  the grading kit changed under it (then nothing graded after could be trusted);
* cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) are escaped
  with a leading ``'``, and names are printed with control characters escaped.

With ``leaderboard`` (``--leaderboard board.csv``) every submission also runs the kit's open-ended
challenge (:mod:`~minicnn.assignment.challenge`), and the leaderboard (rank, student, accuracy,
CPU seconds, status, details) is rewritten atomically after every student, like the marks. A kit
without a challenge is refused before anyone is graded.
"""
import csv
import json
import os
import tempfile
import traceback
from pathlib import Path

import numpy

from . import isolation
from .challenge import NOT_GRADED, ChallengeResult, write_leaderboard
from .grade import GradeError, KitChanged, challenge_data, grade, gradescope_results, kit_challenge, kit_questions
from .output import printable, spreadsheet_safe, write_atomically

__all__ = ["grade_folder", "ClassRun", "FORMATS", "MAX_ANSWER"]

#: What ``--json-dir`` receives for each student: minicnn's report, or Gradescope's results.json.
FORMATS = ("report", "gradescope")
#: Longest written answer (characters) copied into the CSV.
MAX_ANSWER = 20000


def _submissions(folder):
    """``[(name, path or None, why not)]`` for every entry of the class folder (links refused)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder of submissions")
    found = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                found.append((entry.name, None, "not graded: the folder is a symbolic link"))
            elif entry.is_dir(follow_symlinks=False):
                found.append((entry.name, Path(entry.path), ""))
    if not found:
        raise GradeError(f"{folder} holds no submission folders (one folder per student)")
    return found


def _check_writable(path, what):
    """Fail now, before any grading, when ``path`` (a file to write later) cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=True):
            pass
    except OSError as error:
        raise GradeError(f"cannot write the {what} {path}: {error}") from None


class ClassRun:
    """The rows of a class run so far, saved after every student (see the module docstring)."""

    def __init__(self, csv_path, questions, written, leaderboard=None):
        self.csv_path, self.questions, self.written = Path(csv_path), questions, written
        self.leaderboard = leaderboard   # the leaderboard's CSV, or None
        self.rows = []                   # (student, report or None, why not graded)

    def add(self, student, report, error=""):
        self.rows.append((student, report, error))
        write_atomically(self.csv_path, self._write)
        if self.leaderboard is not None:
            write_leaderboard(self.leaderboard, [
                (name, report.challenge if report is not None and report.challenge is not None
                 else ChallengeResult(NOT_GRADED, message=printable(why or "the challenge did not run")))
                for name, report, why in self.rows])

    def _write(self, handle):
        header = (["student"] + [f"{q['name']} ({q['points']:g})" for q in self.questions]
                  + ["automatic total", "automatic possible", "complete", "isolated"]
                  + [cell for key, (title, points) in self.written.items()
                     for cell in (f"{key} answer", f"{key} {title} ({points:g}, by hand)")]
                  + (["hours spent"] if self.written else []) + ["not handed in"])
        writer = csv.writer(handle)
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        for name, report, error in self.rows:
            if report is None:
                writer.writerow([spreadsheet_safe(name)] + [""] * len(self.questions)
                                + ["", "", spreadsheet_safe(error), ""]
                                + [""] * (2 * len(self.written) + bool(self.written)) + [""])
                continue
            earned = {q.name: q.earned for q in report.questions}
            answers = []
            for key in self.written:
                text = report.written.get(key, "")
                answers += [spreadsheet_safe(text[:MAX_ANSWER]) if text else "MISSING", ""]
            writer.writerow([spreadsheet_safe(name)]
                            + [f"{earned.get(q['name'], 0):g}" for q in self.questions]
                            + [f"{report.earned:g}", f"{report.possible:g}",
                               "yes" if report.complete else "no",
                               "yes" if report.isolated else "NO"] + answers
                            + ([f"{report.hours:g}" if report.hours is not None else ""] if self.written else [])
                            + [spreadsheet_safe(" ".join(report.missing))])

    def summary(self):
        """Lines: how many were graded, and every student who was not, with the reason."""
        graded = [name for name, report, _ in self.rows if report is not None]
        incomplete = [name for name, report, _ in self.rows
                      if report is not None and not report.complete]
        failed = [(name, error) for name, report, error in self.rows if report is None]
        lines = [f"graded {len(graded)} of {len(self.rows)} submissions"
                 + (f"; {len(incomplete)} not completely (a check timed out, crashed or did not "
                    f"run): {', '.join(map(printable, incomplete))}" if incomplete else "")]
        lines += [f"  not graded: {printable(name)}: {printable(error)}" for name, error in failed]
        hours = sorted(report.hours for _, report, _ in self.rows
                       if report is not None and report.hours is not None)
        if hours:
            low, median, high = (float(numpy.percentile(hours, q)) for q in (25, 50, 75))
            lines.append(f"hours spent, as {len(hours)} of {len(self.rows)} students said: median "
                         f"{median:.3g} (middle half {low:.3g} to {high:.3g})")
        return lines


def grade_folder(submissions, references, csv_path, json_dir=None, limits=None, log=print,
                 require_isolation=False, format="report", leaderboard=None, data=None):
    """Grade every folder in ``submissions`` with the kit ``references``; write ``csv_path``.

    ``json_dir`` (optional) receives each student's report: ``<student>.json`` (``format``
    ``"report"``) or ``<student>/results.json`` in Gradescope's format (``"gradescope"``).

    ``leaderboard`` (optional) runs the kit's challenge for everyone on ``data`` (a folder of
    Fashion-MNIST IDX files; None: the usual places) and writes the ranking there.

    Returns the list of ``(student, report)`` pairs (``report`` is None where the grader could
    not run at all, with the reason in the CSV's ``complete`` column). Raises :class:`GradeError`
    before grading anyone when the kit, the CSV or the JSON folder cannot be used, and
    :class:`~minicnn.assignment.grade.KitChanged` (after saving the rows so far) when the kit
    changed during the run.
    """
    if format not in FORMATS:
        raise GradeError(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    folders = _submissions(submissions)
    questions, written = kit_questions(references)
    if leaderboard is not None:
        challenge = kit_challenge(references)
        if challenge is None:
            raise GradeError(f"the grading kit {references} has no challenge (no CHALLENGE in its "
                             f"grader.py): --leaderboard has nothing to rank")
        _check_writable(leaderboard, "leaderboard")
        data = challenge_data(data)
        log(f"challenge: {challenge.title} ({challenge.cpu_seconds:g} CPU seconds each; "
            f"data from {data.folder})")
    _check_writable(csv_path, "CSV file")
    if json_dir is not None:
        _check_writable(Path(json_dir) / ".minicnn-check", "JSON reports in")
    isolated = isolation.find()
    if not isolated.isolated:
        if require_isolation:
            raise GradeError(f"isolation is required, but {isolated.detail}")
        log(f"WARNING: the submissions will be {isolated.describe()}")
    run = ClassRun(csv_path, questions, written, leaderboard)
    for name, folder, refused in folders:
        if folder is None:
            log(f"{printable(name):<24} {refused}")
            run.add(name, None, refused)
            continue
        try:
            report = grade(folder, references, quiet=True, limits=limits,
                           require_isolation=require_isolation,
                           challenge=leaderboard is not None, data=data)
        except KitChanged as error:
            run.add(name, None, f"not graded: {error}")
            raise
        except GradeError as error:
            log(f"{printable(name):<24} could not be graded: {printable(error)}")
            run.add(name, None, f"not graded: {error}")
            continue
        except Exception as error:       # a bug of the tooling: this student only, and say so
            where = traceback.extract_tb(error.__traceback__)[-1]
            why = (f"not graded: the grader failed ({type(error).__name__}: {error}, "
                   f"{Path(where.filename).name}:{where.lineno})")
            log(f"{printable(name):<24} {printable(why)}")
            run.add(name, None, why)
            continue
        log(f"{printable(name):<24} {report.earned:g} / {report.possible:g}"
            + ("" if report.complete else "  (incomplete: see its report)")
            + (f"; challenge: {printable(report.challenge.describe())}"
               if report.challenge is not None else ""))
        if json_dir is not None and format == "gradescope":
            (Path(json_dir) / name).mkdir(exist_ok=True)
            write_atomically(Path(json_dir) / name / "results.json",
                              lambda handle: json.dump(gradescope_results(report), handle,
                                                       indent=2))
        elif json_dir is not None:
            write_atomically(Path(json_dir) / f"{name}.json",
                              lambda handle: json.dump(report.to_dict(), handle, indent=2))
        run.add(name, report)
    for line in run.summary():
        log(line)
    if not isolated.isolated:
        log(f"WARNING: every submission above was {isolated.describe()}")
    return [(name, report) for name, report, _ in run.rows]
