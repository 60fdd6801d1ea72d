"""Course tooling: build student copies of assignments and grade submissions.

An assignment is a folder written by the instructor, complete with solutions (see
``assignments/README.md`` and the example ``assignments/assignment1``):

* solution code sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines;
* files and folders named ``*_hidden``/``*_solution`` (``hidden``/``solution`` too) are
  instructor-only;
* ``grader.py`` lists the questions, their points, public checks and hidden checks
  (:mod:`minicnn.assignment.questions`).

Two steps::

    minicnn assignment build assignments/assignment1 build/a1
        # -> build/a1/student (give to students), build/a1/grader (keep: grader + references.npz)
    minicnn assignment grade alice/ --references build/a1/grader
        # -> per-question report; students run it without --references for the public checks

The same from Python: :func:`build` and :func:`grade`. ``python -m minicnn.assignment`` runs the
same command line without the rest of minicnn's.

A submission's code never runs in the grading process: every submission gets its own
resource-limited Python process, isolated by the operating system with bubblewrap
(:mod:`~minicnn.assignment.isolation`, :mod:`~minicnn.assignment.sandbox`), which sends back the
arrays its checks returned on a pipe; the grading process checks what comes back, compares it
with the references and scores. Without bubblewrap, grading still works but every report says
loudly that the code was not isolated; ``--require-isolation`` refuses instead.
"""
import argparse
import json
import math
import sys

from ..argparsing import ArgumentParser
from .build import BuildError, LeakError, MarkerError, build, strip_solutions
from .challenge import Challenge
from .classroom import FORMATS, _check_writable, grade_folder
from .grade import GradeError, GradeReport, grade, gradescope_results
from .output import printable, write_atomically
from .questions import Question, collect_references, relative_error, substitute
from .sandbox import Limits
from .submission import Submission

__all__ = [
    "build", "grade", "grade_folder", "cli_build", "cli_grade", "cli_grade_all", "main",
    "Question", "collect_references", "relative_error", "substitute", "Submission", "strip_solutions",
    "BuildError", "MarkerError", "LeakError", "GradeError", "GradeReport", "Limits",
    "EXIT_INCOMPLETE", "add_arguments", "run", "Challenge",
]

#: Exit status of ``grade`` when the report was written but the submission could not be graded
#: completely (a check timed out, crashed the grading process or was not run).
EXIT_INCOMPLETE = 3


def cli_build(src, out):
    """``minicnn assignment build SRC OUT``: returns 0 on success, 1 when the build was refused."""
    try:
        result = build(src, out)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"built {result.files} files, {result.blocks} solution blocks replaced")
    if result.hidden:
        print(f"  left out (instructor-only): {', '.join(result.hidden)}")
    for name, source in result.reading:
        print(f"  shipped {source} as {name} (the handout links to it)")
    print(f"  student copy:  {result.student_dir}")
    if result.references:
        print(f"  grading kit:   {result.grader_dir}  (keep it private)")
    return 0


def cli_grade(submission, references=None, json_path=None, limits=None, require_isolation=False,
              format="report", challenge=False, data=None):
    """``minicnn assignment grade SUBMISSION [--references KIT]``: prints the report.

    ``json_path`` also saves the report as JSON: minicnn's (``format="report"``) or Gradescope's
    autograder ``results.json`` (``format="gradescope"``).

    Returns 0 when every check was graded (whatever the score), :data:`EXIT_INCOMPLETE` (3) when
    the report was written but some check timed out, crashed the grading process or was not run,
    and 1 when the tooling could not grade at all (no grader, unreadable references, a JSON file
    that cannot be written). ``json_path`` also saves the report as JSON. ``challenge`` also runs
    the kit's challenge (on the Fashion-MNIST files in ``data``, or the usual places) and prints
    its accuracy.
    """
    try:
        if json_path:
            _check_writable(json_path, "JSON report")
        report = grade(submission, references, limits=limits, require_isolation=require_isolation,
                       challenge=challenge, data=data)
    except GradeError as error:
        print(f"error: {printable(error)}", file=sys.stderr)
        return 1
    if json_path:
        data = gradescope_results(report) if format == "gradescope" else report.to_dict()
        try:
            write_atomically(json_path, lambda handle: json.dump(data, handle, indent=2))
        except OSError as error:
            print(f"error: could not write the JSON report {json_path}: {error}", file=sys.stderr)
            return 1
    return 0 if report.complete else EXIT_INCOMPLETE


def cli_grade_all(submissions, references, csv_path, json_dir=None, limits=None,
                  require_isolation=False, format="report", leaderboard=None, data=None):
    """``minicnn assignment grade-all SUBMISSIONS --references KIT --csv FILE``: one row per student.

    ``leaderboard`` also runs the kit's challenge for everyone (on ``data``) and ranks them there.
    Returns 0 when every submission was graded completely, :data:`EXIT_INCOMPLETE` (3) when some
    could not be (a timeout, a crash, a folder the grader could not run), 1 on a tooling problem.
    """
    try:
        results = grade_folder(submissions, references, csv_path, json_dir, limits,
                               require_isolation=require_isolation, format=format,
                               leaderboard=leaderboard, data=data)
    except (GradeError, OSError) as error:
        print(f"error: {printable(error)}", file=sys.stderr)
        return 1
    print(f"wrote {csv_path}: {len(results)} submissions")
    if leaderboard is not None:
        print(f"wrote {leaderboard}: the challenge's ranking")
    return 0 if all(r is not None and r.complete for _, r in results) else EXIT_INCOMPLETE


def _seconds(text):
    """``--time-budget``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, "
                                         f"got {text!r}")
    return value


def _mebibytes(text):
    """``--memory-mb``: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB >= 0, got {text!r}")
    return value


def _limit_options(parser):
    """The options that set a submission's limits (``grade`` and ``grade-all``)."""
    parser.add_argument("--time-budget", type=_seconds, default=Limits.total_seconds,
                        help="seconds for the whole submission (default %(default)g)")
    parser.add_argument("--memory-mb", type=_mebibytes, default=Limits.memory_bytes // 2 ** 20,
                        help="address-space limit of the grading process, MiB; 0: none "
                             "(default %(default)d)")
    parser.add_argument("--require-isolation", action="store_true",
                        help="refuse to grade unless bubblewrap isolates the submissions")


def _challenge_data_option(parser):
    parser.add_argument("--challenge-data", default=None, metavar="DIR",
                        help="the challenge's data: a folder with Fashion-MNIST's four IDX files "
                             "(a private test set: your own t10k-* files); default: the usual "
                             "places (see minicnn.data.FashionMNIST)")


def add_arguments(parser):
    """Add the ``build``/``grade``/``grade-all`` commands to ``parser`` (``minicnn assignment``)."""
    commands = parser.add_subparsers(dest="action", required=True)
    p_build = commands.add_parser("build", help="make the student copy and the grading kit")
    p_build.add_argument("src", help="the instructor's assignment folder")
    p_build.add_argument("out", help="output folder (must not exist or be empty)")
    p_grade = commands.add_parser("grade", help="grade a submission folder")
    p_grade.add_argument("submission", help="the folder to grade")
    p_grade.add_argument("--references", default=None,
                         help="the grading kit folder (OUT/grader from build, or its "
                              "references.npz); without it only the public checks run")
    p_grade.add_argument("--json", dest="json_path", default=None, help="also write the report here")
    p_grade.add_argument("--format", choices=FORMATS, default="report",
                         help="what --json writes: minicnn's report, or Gradescope's autograder "
                              "results.json (default %(default)s)")
    p_grade.add_argument("--challenge", action="store_true",
                         help="also run the kit's open-ended challenge and print its accuracy "
                              "(needs --references)")
    _challenge_data_option(p_grade)
    _limit_options(p_grade)
    p_all = commands.add_parser("grade-all", help="grade every submission folder in a folder; one CSV")
    p_all.add_argument("submissions", help="a folder holding one folder per student")
    p_all.add_argument("--references", required=True, help="the grading kit folder (OUT/grader)")
    p_all.add_argument("--csv", dest="csv_path", default="marks.csv",
                       help="where to write the marks (default %(default)s)")
    p_all.add_argument("--json-dir", default=None, help="also write each student's report as JSON here")
    p_all.add_argument("--format", choices=FORMATS, default="report",
                       help="what --json-dir receives: STUDENT.json reports, or STUDENT/results.json "
                            "for Gradescope (default %(default)s)")
    p_all.add_argument("--leaderboard", default=None, metavar="FILE.csv",
                       help="also run the kit's open-ended challenge for every student and write "
                            "the ranking here")
    _challenge_data_option(p_all)
    _limit_options(p_all)


def run(args):
    """Run the command that :func:`add_arguments`'s parser read; returns the exit code."""
    if args.action == "build":
        return cli_build(args.src, args.out)
    limits = Limits(total_seconds=args.time_budget,
                    memory_bytes=args.memory_mb * 2 ** 20 if args.memory_mb else None)
    if args.action == "grade-all":
        if args.format == "gradescope" and not args.json_dir:
            print("error: --format gradescope writes into --json-dir: name the folder",
                  file=sys.stderr)
            return 1
        return cli_grade_all(args.submissions, args.references, args.csv_path, args.json_dir,
                             limits, args.require_isolation, args.format, args.leaderboard,
                             args.challenge_data)
    return cli_grade(args.submission, args.references, args.json_path, limits,
                     args.require_isolation, args.format, args.challenge, args.challenge_data)


def main(argv=None):
    """The ``build``/``grade``/``grade-all`` command line; returns the exit code."""
    parser = ArgumentParser(prog="python -m minicnn.assignment",
                            description="Build and grade minicnn assignments.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
