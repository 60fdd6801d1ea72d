"""The open-ended challenge (issue 24): a hand-in's ``train`` runs in the sandbox under a CPU budget,
the grading process scores its predictions against test labels the child never sees, and
``grade-all --leaderboard`` ranks the class. Also: Assignment 4's notebook demo converges.

Everything here uses a tiny data set the test writes (IDX files, 10 classes a nearest-centroid
rule separates) and a kit whose budget is 3 CPU seconds: each run takes a second or two.
"""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from minicnn import cli
from minicnn.assignment import Challenge, build, cli_grade, cli_grade_all, grade, isolation
from minicnn.assignment.challenge import OK, ChallengeResult, leaderboard_rows, write_leaderboard
from minicnn.data import FashionMNIST
from minicnn.data.idx import write_idx

from test_assignment_notebooks import code_cells, inside

ROOT = Path(__file__).resolve().parents[2]
A4 = ROOT / "assignments" / "assignment4"
ISOLATED = isolation.find()
needs_bwrap = pytest.mark.skipif(not ISOLATED.isolated, reason=ISOLATED.detail)

KIT_GRADER = '''
from minicnn.assignment import Challenge
TITLE = "A challenge alone"
SUBMISSION_FILES = []
QUESTIONS = []
CHALLENGE = Challenge("challenge.py", cpu_seconds=3, title="tiny challenge")
'''

GOOD = '''
import numpy as np

def train(images, labels, seconds):
    x = images.reshape(len(images), -1).astype(np.float32)
    centroids = np.stack([x[labels == k].mean(axis=0) for k in range(10)])

    def predict(test):
        t = test.reshape(len(test), -1).astype(np.float32)
        return np.argmin(((t[:, None] - centroids[None]) ** 2).sum(axis=2), axis=1)
    return predict
'''
WEAK = '''
import numpy as np

def train(images, labels, seconds):
    return lambda test: np.zeros(len(test), dtype=np.int64)      # always class 0
'''
SLOW = '''
def train(images, labels, seconds):
    while True:                                                   # never stops by itself
        pass
'''
CRASH = '''
def train(images, labels, seconds):
    raise ValueError("=cmd|' /C calc'!A0 is not a formula in the leaderboard")
'''
#: Switches the audit-hook guard off from inside the child (as test_grader_isolation does): the
#: labels must stay out of reach of the operating system's boundary alone.
CHEAT = '''
import os, sys
import numpy as np
_main = sys.modules["__main__"]
_main._REFUSED_EVENTS.clear()
_main._inside = lambda *args: True

def train(images, labels, seconds):
    found = []
    for path in {paths!r}:
        try:
            with open(path, "rb") as handle:
                found.append(f"READ {{path}} ({{len(handle.read())}} bytes)")
        except OSError as error:
            found.append(type(error).__name__)
    data = np.load("/sandbox/code/challenge-data.npz") if os.path.exists("/sandbox/code") else None
    keys = sorted(data.files) if data is not None else "unisolated"
    raise RuntimeError(f"keys={{keys}}; " + "; ".join(found))
'''


def write_dataset(folder, train=300, test=60, seed=0):
    """Fashion-MNIST's four IDX files, tiny: class k is a bright band in rows 2k, 2k+1; the test
    set has 6 images per class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10 if prefix == "t10k" else rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4:2 * k + 6] = 250
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(kit folder, data folder) for the tiny challenge."""
    root = tmp_path_factory.mktemp("challenge")
    kit = root / "kit"
    kit.mkdir()
    (kit / "grader.py").write_text(KIT_GRADER)
    np.savez(kit / "references.npz")
    return kit, write_dataset(root / "data")


def hand_in(folder, code):
    folder.mkdir(parents=True)
    if code is not None:
        (folder / "challenge.py").write_text(code)
    return folder


def test_grade_all_ranks_the_class_into_a_leaderboard(setup, tmp_path, capsys):
    kit, data = setup
    room = tmp_path / "class"
    for name, code in (("ann", GOOD), ("ben", WEAK), ("cat", SLOW), ("=eve", CRASH), ("fay", None)):
        hand_in(room / name, code)
    board = tmp_path / "board.csv"
    status = cli_grade_all(room, kit, tmp_path / "marks.csv", leaderboard=board, data=data)
    assert status == 0, capsys.readouterr()           # the challenge is not part of the marks
    rows = list(csv.DictReader(board.open()))
    assert list(rows[0]) == ["rank", "student", "accuracy (%)", "CPU seconds", "status", "details"]
    ranked = [(r["rank"], r["student"], r["accuracy (%)"], r["status"]) for r in rows]
    assert ranked == [("1", "ann", "100.00", "ok"), ("2", "ben", "10.00", "ok"),
                      ("", "'=eve", "", "crashed"), ("", "cat", "", "over time"),
                      ("", "fay", "", "not handed in")], ranked
    by_name = {r["student"]: r for r in rows}
    assert 0 < float(by_name["ann"]["CPU seconds"]) <= 3
    assert by_name["cat"]["CPU seconds"] == "3.0"             # the kernel stopped it there
    assert "stopped by the kernel at the CPU budget" in by_name["cat"]["details"]
    assert by_name["'=eve"]["details"].startswith("ValueError: =cmd")   # the name: no formula
    out = capsys.readouterr().out
    assert "challenge: accuracy 100.00% in" in out and f"wrote {board}" in out


def test_test_labels_never_reach_the_child(setup, tmp_path):
    kit, data = setup
    # The test's data, and every place the real Fashion-MNIST is looked for (its labels are public).
    paths = [str(data / "t10k-labels-idx1-ubyte")] + [
        str(Path(folder) / name) for folder in FashionMNIST.search_dirs()
        for name in ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte")]
    folder = hand_in(tmp_path / "mallory", CHEAT.format(paths=paths))
    report = grade(folder, kit, quiet=True, challenge=True, data=data)
    result = report.challenge
    assert result.status == "crashed", result
    if ISOLATED.isolated:
        # What the child received: the training set and the test images, nothing else; and the
        # label files are not there, even with the guard switched off.
        assert "keys=['test_images', 'train_images', 'train_labels']" in result.message
        assert "READ" not in result.message, result.message
        assert result.message.count("FileNotFoundError") == len(paths), result.message


def test_a_single_grade_prints_the_accuracy_and_the_refusals(setup, tmp_path, capsys):
    kit, data = setup
    folder = hand_in(tmp_path / "ann", GOOD)
    assert cli_grade(folder, kit, challenge=True, data=data) == 0
    assert "challenge (ranked, not graded): accuracy 100.00% in" in capsys.readouterr().out
    # The options on the command line; a kit without a challenge, data that is not there.
    board = tmp_path / "board.csv"
    assert cli.main(["assignment", "grade-all", str(tmp_path), "--references", str(kit),
                     "--csv", str(tmp_path / "m.csv"), "--leaderboard", str(board),
                     "--challenge-data", str(tmp_path / "nowhere")]) == 1
    assert "challenge data:" in capsys.readouterr().err and not board.exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "grader.py").write_text(KIT_GRADER.replace("CHALLENGE = ", "_ = "))
    np.savez(plain / "references.npz")
    assert cli_grade_all(tmp_path, plain, tmp_path / "m.csv", leaderboard=board, data=data) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no challenge" in err and "--leaderboard" in err


def test_the_leaderboard_shares_ranks_and_escapes_cells(tmp_path):
    results = [("b", ChallengeResult(OK, 0.5, 1.0, 3)), ("a", ChallengeResult(OK, 0.9, 2.0, 3)),
               ("=c", ChallengeResult(OK, 0.5, 1.5, 3)), ("d", ChallengeResult(OK, 0.1, 1.0, 3))]
    assert [(r["rank"], r["student"]) for r in leaderboard_rows(results)] == \
        [("1", "a"), ("2", "=c"), ("2", "b"), ("4", "d")]
    write_leaderboard(tmp_path / "b.csv", results)
    assert "'=c" in (tmp_path / "b.csv").read_text()
    with pytest.raises(ValueError, match="cpu_seconds"):
        Challenge("challenge.py", cpu_seconds=0)
    with pytest.raises(ValueError, match="top-level module"):
        Challenge("../challenge.py")


def test_a4_declares_the_challenge_and_its_baseline_stays_private(tmp_path):
    built = build(A4, tmp_path / "out")
    student = (built.student_dir / "challenge.py").read_text()
    assert "raise NotImplementedError" in student
    grader = (built.grader_dir / "grader.py").read_text()
    assert "CHALLENGE = Challenge(" in grader


def test_a4_notebook_demo_loss_decreases(tmp_path):
    """The Q4-Q5 cell of the solution's notebook: fine-tuning on the toy images converges."""
    folder = tmp_path / "assignment4"
    shutil.copytree(A4, folder, ignore=shutil.ignore_patterns("pretrained.npz"))
    cells = code_cells(folder / "assignment4.ipynb")
    demo = next(i for i, source in enumerate(cells) if "finetune.fine_tune(" in source)
    namespace = {"__name__": "__main__"}
    with inside(folder):
        for source in cells[1:demo + 1]:                     # the setup cell installs nothing
            exec(compile(source, "assignment4.ipynb", "exec"), namespace)
    losses = np.asarray(namespace["losses"])
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
    assert np.mean(losses[3:]) < np.mean(losses[:3]), losses
