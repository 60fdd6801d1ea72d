"""Grade a whole class: every submission folder under one folder, one CSV of marks.

::

    minicnn assignment grade-all submissions/ --references build/a2/grader --csv marks.csv

``submissions/alice/``, ``submissions/bob/`` ... each hold one student's handed-in files (the
folder's name is the student's). Each is graded exactly as ``minicnn assignment grade`` grades
one (its own sandboxed process, the kit's references): a submission that crashes or hangs costs
only its own marks. The CSV has one row per student: the points of every question, the automatic
total, whether every check could be run, and an empty column for each written question that the
grader lists in ``WRITTEN`` (``{"w1": ("title", points)}``), for the instructor to fill in.
"""
import csv
import json
from pathlib import Path

from .grade import GradeError, grade, written_questions


def _submissions(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder of submissions")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise GradeError(f"{folder} holds no submission folders (one folder per student)")
    return found


def grade_folder(submissions, references, csv_path, json_dir=None, limits=None, log=print):
    """Grade every folder in ``submissions`` with the kit ``references``; write ``csv_path``.

    Returns the list of ``(student, report)`` pairs (``report`` is None where the grader could
    not run at all, with the reason in the CSV's ``complete`` column).
    """
    folders = _submissions(submissions)
    written = written_questions(references)
    results = []
    for folder in folders:
        try:
            report = grade(folder, references, quiet=True, limits=limits)
        except GradeError as error:
            log(f"{folder.name:<24} could not be graded: {error}")
            results.append((folder.name, None, str(error)))
            continue
        log(f"{folder.name:<24} {report.earned:g} / {report.possible:g}"
            + ("" if report.complete else "  (incomplete: see its report)"))
        if json_dir is not None:
            Path(json_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(json_dir) / f"{folder.name}.json", "w", encoding="utf-8") as handle:
                json.dump(report.to_dict(), handle, indent=2)
        results.append((folder.name, report, ""))
    _write_csv(csv_path, results, written)
    return [(name, report) for name, report, _ in results]


def _write_csv(path, results, written):
    questions = next((r.questions for _, r, _ in results if r is not None), [])
    header = (["student"] + [f"{q.name} ({q.points:g})" for q in questions]
              + ["automatic total", "automatic possible", "complete"]
              + [f"{key} {title} ({points:g}, by hand)" for key, (title, points) in written.items()])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, report, error in results:
            if report is None:
                writer.writerow([name] + [""] * len(questions) + ["", "", f"not graded: {error}"]
                                + [""] * len(written))
                continue
            earned = {q.name: q.earned for q in report.questions}
            writer.writerow([name] + [f"{earned.get(q.name, 0):g}" for q in questions]
                            + [f"{report.earned:g}", f"{report.possible:g}",
                               "yes" if report.complete else "no"] + [""] * len(written))
