"""An open-ended challenge: the best test accuracy within a fixed CPU-time budget, ranked.

An assignment's ``grader.py`` may declare one::

    from minicnn.assignment import Challenge
    CHALLENGE = Challenge("challenge.py", cpu_seconds=120,
                          title="Best Fashion-MNIST accuracy in 120 CPU seconds")

Students hand in ``challenge.py`` with a function ``train(images, labels, seconds)``: it gets the
Fashion-MNIST training set (``uint8`` images ``(N, 1, 28, 28)``, ``int64`` labels ``(N,)``) and
the CPU seconds left, trains what it likes with minicnn, and returns a function
``predict(images) -> labels`` (an integer array with one label per image).

``minicnn assignment grade-all ... --leaderboard board.csv`` (or ``grade --challenge``) runs it:

* in its own sandboxed child, isolated exactly like the checks (:mod:`~minicnn.assignment.sandbox`):
  the handed-in files, the kit's released files and one data file, ``challenge-data.npz``, which
  the grading process writes into the sandbox's read-only ``code/`` folder before the child
  starts. It holds the training images and labels and the **test images only**: the test labels
  stay in the grading process, which scores the predictions that come back on the pipe. The
  data's own folder and every place Fashion-MNIST is found by default (:func:`data_folders`) are
  hidden from the child (an empty folder is mounted over each one that lies inside a folder the
  sandbox binds, such as ``/usr/share/datasets``; the others are simply not there);
* under the kit's CPU budget for the whole child (starting Python, loading the data, training,
  predicting), enforced by the kernel: ``RLIMIT_CPU`` kills the child at the budget (no grace,
  no signal it could catch), and the grading process stops it at a wall-clock limit
  (:attr:`Challenge.wall_seconds`; a sleeping submission uses no CPU). The CPU seconds on the leaderboard are the
  child's own count (``time.process_time`` when ``predict`` returned): information, not the
  enforcement, which is the kernel's.

Running over the budget, crashing or sending back malformed predictions costs the challenge only:
the assignment's points do not depend on it.
"""
import csv
import dataclasses
import math
import os
import re
from pathlib import Path, PurePosixPath

import numpy as np

from .output import printable, spreadsheet_safe, write_atomically
from .sandbox import TIMEOUT, Limits, run_checks

__all__ = ["Challenge", "ChallengeData", "ChallengeResult", "load_data", "run_challenge",
           "leaderboard_rows", "write_leaderboard", "data_folders", "LEADERBOARD_COLUMNS", "OK", "OVER_TIME",
           "CRASHED", "NOT_HANDED_IN", "NOT_IMPLEMENTED", "INVALID", "NOT_GRADED", "DATA_FILE",
           "CHECK_ID"]

OK, OVER_TIME, CRASHED, NOT_HANDED_IN = "ok", "over time", "crashed", "not handed in"
NOT_IMPLEMENTED, INVALID, NOT_GRADED = "not implemented", "invalid predictions", "not graded"
#: The file of the sandbox's ``code/`` folder that holds the data the child receives.
DATA_FILE = "challenge-data.npz"
#: The arrays of :data:`DATA_FILE`: the training set and the test images (never test labels).
DATA_KEYS = ("train_images", "train_labels", "test_images")
#: The name of the challenge's run in the sandbox's protocol (one "check").
CHECK_ID = "challenge.train"
#: The leaderboard's columns.
LEADERBOARD_COLUMNS = ("rank", "student", "accuracy (%)", "CPU seconds", "status", "details")

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")


@dataclasses.dataclass(frozen=True)
class Challenge:
    """What a kit's ``grader.py`` declares as ``CHALLENGE`` (see the module docstring).

    ``file``: the handed-in module (a top-level ``.py`` file) with ``train``; ``cpu_seconds``:
    the CPU budget of the whole run; ``title``: one line for reports; ``wall_seconds``: the
    wall-clock limit (None: five times the CPU budget plus a minute, which a busy grading machine
    needs: the limit only catches a run that sleeps instead of computing).
    """
    file: str = "challenge.py"
    cpu_seconds: float = 120.0
    title: str = "challenge"
    wall_seconds: float = None

    def __post_init__(self):
        if not _MODULE_NAME.match(str(self.file)):
            raise ValueError(f"Challenge file {self.file!r}: expected a top-level module such as "
                             f"'challenge.py'")
        if not (isinstance(self.cpu_seconds, (int, float)) and math.isfinite(self.cpu_seconds)
                and self.cpu_seconds > 0):
            raise ValueError(f"Challenge cpu_seconds: expected a positive number of seconds, got "
                             f"{self.cpu_seconds!r}")
        if self.wall_seconds is None:
            object.__setattr__(self, "wall_seconds", 5 * self.cpu_seconds + 60)
        elif not (isinstance(self.wall_seconds, (int, float)) and self.wall_seconds >= self.cpu_seconds):
            raise ValueError(f"Challenge wall_seconds: expected at least cpu_seconds "
                             f"({self.cpu_seconds:g}), got {self.wall_seconds!r}")


@dataclasses.dataclass
class ChallengeData:
    """The data set, loaded in the grading process: the test labels never leave it."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    folder: Path                 # where the files are: hidden from the child

    def for_child(self):
        """The arrays written into the sandbox (:data:`DATA_KEYS`; no test labels)."""
        return {"train_images": self.train_images, "train_labels": self.train_labels,
                "test_images": self.test_images}


def load_data(folder=None):
    """Fashion-MNIST's four IDX files from ``folder`` (or the usual places, see
    :class:`minicnn.data.FashionMNIST`); nothing is downloaded. An instructor's private test set
    is a folder with the same four file names (``t10k-*`` its own images and labels).

    Raises ``ValueError`` (files missing or malformed) with one line that says which and why.
    """
    from minicnn.data import FashionMNIST
    from minicnn.data.datasets import DatasetNotFoundError
    if folder is not None and not Path(folder).is_dir():
        raise ValueError(f"challenge data: {folder} is not a folder")
    try:
        train = FashionMNIST(root=folder, train=True, download=False)
        test = FashionMNIST(root=folder, train=False, download=False)
    except (DatasetNotFoundError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"challenge data: {first}") from None
    return ChallengeData(train.data, np.asarray(train.targets, dtype=np.int64), test.data,
                         np.asarray(test.targets, dtype=np.int64), Path(train.folder).resolve())


@dataclasses.dataclass
class ChallengeResult:
    """One submission's challenge: ``status`` (:data:`OK`, :data:`OVER_TIME`, ...), the accuracy
    (a fraction; None unless ``ok``), the CPU seconds the child reported (its own count, None
    when none came back; the budget for a run the kernel stopped) and a one-line ``message``."""
    status: str
    accuracy: float = None
    cpu_seconds: float = None
    budget: float = None
    message: str = ""

    def describe(self):
        """One line for the report."""
        if self.status == OK:
            text = (f"accuracy {100 * self.accuracy:.2f}% in {self.cpu_seconds:.1f} of "
                    f"{self.budget:g} CPU seconds")
        else:
            text = self.status + (f" ({self.cpu_seconds:.1f} CPU s of {self.budget:g})"
                                  if self.cpu_seconds is not None and self.budget else "")
        return text + (f": {self.message}" if self.message and self.status != OK else "")


def _reported_cpu(outputs):
    """The CPU seconds the child says it used (a finite number >= 0), else None."""
    value = (outputs or {}).get("cpu_seconds")
    if value is None or value.shape != () or value.dtype.kind not in "iuf":
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _score(raw, data, challenge):
    """Decide the result from what came back (``raw``, untrusted)."""
    budget = challenge.cpu_seconds
    if raw is None:
        return ChallengeResult(CRASHED, None, None, budget, "no result came back")
    message = printable(raw.message or "")[:300]
    cpu = _reported_cpu(raw.outputs)
    if raw.status == TIMEOUT or "SIGXCPU" in message or "SIGKILL" in message or \
            (cpu is not None and cpu > budget):
        why = ("stopped by the kernel at the CPU budget" if "SIG" in message else
               "ran past the wall-clock limit" if raw.status == TIMEOUT else
               f"used {cpu:.1f} CPU seconds")
        return ChallengeResult(OVER_TIME, None, budget if cpu is None else cpu, budget,
                               f"{why} ({budget:g} CPU seconds)")
    if raw.status == "not implemented":
        return ChallengeResult(NOT_IMPLEMENTED, None, None, budget, message)
    if raw.status != "passed" or raw.outputs is None:
        return ChallengeResult(CRASHED, None, None, budget, message or raw.status)
    predictions = raw.outputs.get("predictions")
    expected = data.test_labels.shape
    if predictions is None or predictions.shape != expected or predictions.dtype.kind not in "iu":
        got = ("nothing" if predictions is None else
               f"{predictions.dtype} of shape {predictions.shape}")
        return ChallengeResult(INVALID, None, cpu, budget,
                               f"predict(test images) must return {expected[0]} integer labels, "
                               f"one per image; got {got}")
    accuracy = float(np.mean(predictions.astype(np.int64) == data.test_labels))
    return ChallengeResult(OK, accuracy, cpu, budget)


def data_folders(data):
    """The folders hidden from the child: the data's own, and every place where Fashion-MNIST is
    looked for by default (``$MINICNN_DATA``, ``~/.minicnn/data``, ``/usr/share/datasets``):
    their test labels are the public ones, and the grading data may be a private copy."""
    from minicnn.data import FashionMNIST
    folders = {str(data.folder)}
    folders.update(str(Path(d).resolve()) for d in FashionMNIST.search_dirs() if Path(d).is_dir())
    return tuple(sorted(folders))


def run_challenge(folder, kit, challenge, submission_files, data, limits=None,
                  require_isolation=False):
    """Run ``challenge`` on the submission in ``folder`` (see the module docstring); returns a
    :class:`ChallengeResult`. Raises :class:`~minicnn.assignment.files.HandInError` for a
    handed-in file the grader refuses to copy, and :class:`~.sandbox.SandboxError` when the
    sandbox cannot be set up."""
    if not os.path.lexists(Path(folder) / PurePosixPath(challenge.file)):
        return ChallengeResult(NOT_HANDED_IN, budget=challenge.cpu_seconds,
                               message=f"{challenge.file} was not handed in")
    base = limits or Limits()
    wall = challenge.wall_seconds
    limits = dataclasses.replace(base, total_seconds=wall + base.startup_seconds,
                                 cpu_seconds=challenge.cpu_seconds, check_seconds=None)
    question = {"name": CHECK_ID.split(".")[0], "timeout": wall,
                "checks": [{"name": CHECK_ID.split(".")[1], "kind": "hidden"}]}
    job = {"challenge": {"module": challenge.file[:-3], "data": DATA_FILE,
                         "cpu_seconds": challenge.cpu_seconds, "wall_seconds": wall}}
    files = list(dict.fromkeys([*submission_files, challenge.file]))
    run = run_checks(folder, kit, files, [CHECK_ID], limits, require_isolation=require_isolation,
                     hidden=data_folders(data), questions=[question],
                     data={DATA_FILE: data.for_child()}, job=job)
    return _score(run.results.get(CHECK_ID), data, challenge)


# ----------------------------------------------------------------------------------------------
# The leaderboard
# ----------------------------------------------------------------------------------------------

def leaderboard_rows(results):
    """``results``: ``[(student, ChallengeResult)]``. Returns the rows (dicts of
    :data:`LEADERBOARD_COLUMNS`), best accuracy first; equal accuracies (to the 2 decimals shown)
    share a rank (1, 2, 2, 4); submissions without an accuracy follow, unranked, by name."""
    ranked = sorted(((round(100 * r.accuracy, 2), name, r) for name, r in results
                     if r.status == OK), key=lambda item: (-item[0], item[1]))
    rows, previous, rank = [], None, 0
    for position, (percent, name, result) in enumerate(ranked, start=1):
        if percent != previous:
            rank, previous = position, percent
        rows.append({"rank": str(rank), "student": name, "accuracy (%)": f"{percent:.2f}",
                     "CPU seconds": f"{result.cpu_seconds:.1f}", "status": OK, "details": ""})
    for name, result in sorted(((n, r) for n, r in results if r.status != OK),
                               key=lambda item: item[0]):
        rows.append({"rank": "", "student": name, "accuracy (%)": "",
                     "CPU seconds": "" if result.cpu_seconds is None else f"{result.cpu_seconds:.1f}",
                     "status": result.status, "details": result.message})
    return rows


def write_leaderboard(path, results):
    """Write the leaderboard CSV atomically; every text cell spreadsheet-safe."""

    def write(handle):
        writer = csv.writer(handle)
        writer.writerow(LEADERBOARD_COLUMNS)
        for row in leaderboard_rows(results):
            writer.writerow([spreadsheet_safe(row[column]) for column in LEADERBOARD_COLUMNS])

    write_atomically(path, write)
