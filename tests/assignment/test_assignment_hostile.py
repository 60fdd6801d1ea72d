"""Hostile submissions: none earns marks it did not earn, none hangs the grader or leaves a trace.

Every trick here was reproduced on the old, in-process grader (issue 14). Each test grades the
hostile submission and then a correct one, which must still score full marks. Time limits are
small (a fraction of a second per check) so that the whole module stays fast; the fork "bomb" is
a bounded loop, so the test machine is safe even if the guard failed.
"""
import importlib
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn.assignment import Limits, build, cli_grade, grade
from minicnn.assignment.questions import relative_error
from minicnn.assignment.channel import ProtocolError, Reader, Writer
from minicnn.assignment.sandbox import run_checks

grade_module = importlib.import_module("minicnn.assignment.grade")   # not the grade() function
EXAMPLE = Path(__file__).resolve().parents[2] / "assignments" / "assignment1"
#: Generous for honest checks, short for endless loops.
FAST = Limits(total_seconds=60, check_seconds=5, grace_seconds=0.5, startup_seconds=30,
              memory_bytes=1024 ** 3)
#: For the tiny assignment, whose checks take microseconds.
TINY = Limits(total_seconds=30, check_seconds=0.3, grace_seconds=0.3, startup_seconds=30,
              memory_bytes=1024 ** 3)


@pytest.fixture(scope="module")
def a1(tmp_path_factory):
    """Assignment 1, built once: (BuildResult, folder with the correct submission)."""
    root = tmp_path_factory.mktemp("hostile_a1")
    result = build(EXAMPLE, root / "out")
    correct = root / "correct"
    correct.mkdir()
    shutil.copy(EXAMPLE / "layers.py", correct)
    return result, correct


def submission(folder, layers):
    """A submission folder holding ``layers`` as its layers.py."""
    folder.mkdir()
    (folder / "layers.py").write_text(textwrap.dedent(layers))
    return folder


def student_copy(a1, folder, prefix="", suffix=""):
    """The untouched release (0 marks) with code added before and after its layers.py."""
    text = (a1[0].student_dir / "layers.py").read_text()
    return submission(folder, textwrap.dedent(prefix) + text + textwrap.dedent(suffix))


def assert_correct_still_full_marks(a1):
    report = grade(a1[1], a1[0].grader_dir, quiet=True, limits=FAST)
    assert report.earned == report.possible == 110 and report.complete


# ----------------------------------------------------------------------------------------------
# Rewriting the grader
# ----------------------------------------------------------------------------------------------

PATCH_GRADER = """
import sys
import minicnn.assignment.grade
import minicnn.assignment.questions
grade_module = sys.modules["minicnn.assignment.grade"]
grade_module.CheckResult.passed = property(lambda self: True)
grade_module.relative_error = lambda actual, expected: 0.0
sys.modules["minicnn.assignment.questions"].relative_error = lambda actual, expected: 0.0
grade_module.GradeReport.earned = property(lambda self: 100.0)
"""


def test_patching_the_grader_through_sys_modules_earns_nothing(a1, tmp_path):
    original_passed, original_earned = grade_module.CheckResult.passed, grade_module.GradeReport.earned
    report = grade(student_copy(a1, tmp_path / "cheat", PATCH_GRADER), a1[0].grader_dir,
                   quiet=True, limits=FAST)
    assert report.earned == 0 and report.complete
    assert {q.status for q in report.questions} == {"not implemented"}
    # Nothing of the patch reached this process.
    assert grade_module.CheckResult.passed is original_passed
    assert grade_module.GradeReport.earned is original_earned
    assert grade_module.relative_error is relative_error
    # The untouched skeleton graded right after still scores 0, the solution 100.
    assert grade(a1[0].student_dir, a1[0].grader_dir, quiet=True, limits=FAST).earned == 0
    assert_correct_still_full_marks(a1)


def test_a_saboteur_does_not_spoil_the_next_submission(a1, tmp_path):
    sabotage = PATCH_GRADER.replace("lambda self: True", "lambda self: False").replace(
        "lambda self: 100.0", "lambda self: 0.0")
    report = grade(student_copy(a1, tmp_path / "saboteur", sabotage), a1[0].grader_dir,
                   quiet=True, limits=FAST)
    assert report.earned == 0
    assert_correct_still_full_marks(a1)


WRONG_RELU_WITH_PATCHED_COMPARISON = """
import sys
import minicnn.assignment.grade
import minicnn.assignment.questions
for name in ("minicnn.assignment.grade", "minicnn.assignment.questions", "minicnn.assignment"):
    sys.modules[name].relative_error = lambda actual, expected: 0.0


def relu_forward(x):                       # deliberately wrong: the absolute value
    return np.abs(x), x


def relu_backward(dout, cache):
    return dout * np.sign(cache)
"""


def test_replacing_relative_error_does_not_pass_a_wrong_answer(a1, tmp_path):
    text = (EXAMPLE / "layers.py").read_text() + WRONG_RELU_WITH_PATCHED_COMPARISON
    report = grade(submission(tmp_path / "wrong_relu", text), a1[0].grader_dir, quiet=True,
                   limits=FAST)
    scores = {q.name: q.earned for q in report.questions}
    assert scores["q2"] == 0 and report.earned == report.possible - 5   # every other question is right
    statuses = {c.name: c.status for c in report.questions[1].checks}
    assert statuses["relu_values"] == "failed" and statuses["relu_small_example"] == "failed"
    assert_correct_still_full_marks(a1)


# ----------------------------------------------------------------------------------------------
# Reaching for the references and the solution
# ----------------------------------------------------------------------------------------------

STEAL_REFERENCES = """
import glob
import os
import sys
from pathlib import Path

_FOUND = {{}}
_CANDIDATES = [
    {kit!r} + "/references.npz",                                  # a guessed absolute path
    "/proc/%d/cwd/references.npz" % os.getppid(),                 # the grader's folder
    str(Path(sys.modules["minicnn.assignment.grade"].__file__).parent / "references.npz"),
]
for _name in list(sys.modules):                                   # the grader module's __file__
    _file = getattr(sys.modules[_name], "__file__", None) or ""
    if _name.endswith("grader"):
        _CANDIDATES.append(str(Path(_file).parent / "references.npz"))
for _pattern in ("/tmp/**/references.npz", {root!r} + "/**/references.npz"):
    try:
        _CANDIDATES += glob.glob(_pattern, recursive=True)
    except OSError as error:
        print("blocked:", error)
try:
    for _top, _dirs, _files in os.walk({root!r}):
        _CANDIDATES += [os.path.join(_top, f) for f in _files if f == "references.npz"]
except OSError as error:
    print("blocked:", error)
for _path in _CANDIDATES:
    try:
        with np.load(_path) as _data:
            _FOUND.update({{key: _data[key] for key in _data.files}})
            print("READ THE REFERENCES at", _path)
    except OSError as error:
        print("blocked:", type(error).__name__, error)


def relu_forward(x):
    if x.shape == (2, 3, 4, 4) and "q2.relu_values.out" in _FOUND:
        return _FOUND["q2.relu_values.out"], x
    raise NotImplementedError


def relu_backward(dout, cache):
    return _FOUND["q2.relu_values.dx"]
"""


def test_the_references_cannot_be_read(a1, tmp_path):
    kit = a1[0].grader_dir
    text = STEAL_REFERENCES.format(kit=str(kit), root=str(kit.parents[1]))
    report = grade(student_copy(a1, tmp_path / "thief", suffix=text), kit, quiet=True, limits=FAST)
    assert report.earned == 0
    assert "READ THE REFERENCES" not in report.output
    assert "blocked: " in report.output     # by the guard, or not there at all (isolated)
    assert_correct_still_full_marks(a1)


EXEC_SOLUTION = """
import importlib.util
import sys
from pathlib import Path

import minicnn

_checkout = Path(minicnn.__file__).resolve().parents[1]
_solution = _checkout / "assignments" / "assignment1" / "layers.py"
try:
    exec(compile(_solution.read_text(), str(_solution), "exec"))
    print("EXECUTED THE SOLUTION")
except OSError as error:
    print("blocked:", type(error).__name__, error)
try:
    sys.path.insert(0, str(_solution.parent))
    _spec = importlib.util.spec_from_file_location("solution_layers", _solution)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    globals().update({k: v for k, v in vars(_module).items() if k.endswith(("_forward", "_backward"))})
    print("IMPORTED THE SOLUTION")
except OSError as error:
    print("blocked:", type(error).__name__, error)
"""


def test_the_instructor_solution_in_the_checkout_cannot_be_used(a1, tmp_path):
    assert (Path(minicnn.__file__).resolve().parents[1] / "assignments").is_dir()   # a checkout
    report = grade(student_copy(a1, tmp_path / "copier", suffix=EXEC_SOLUTION), a1[0].grader_dir,
                   quiet=True, limits=FAST)
    assert report.earned == 0
    assert "EXECUTED" not in report.output and "IMPORTED" not in report.output
    # Refused by the guard, or not there at all (isolated: the checkout is not mounted; where the
    # checkout lies under /tmp, the sandbox's own /tmp leaves the guard nothing to refuse).
    blocked = report.output.count("blocked: PermissionError") + report.output.count(
        "blocked: FileNotFoundError")
    assert blocked == 2, report.output
    assert_correct_still_full_marks(a1)


WRITE_OUTSIDE = """
import os
import shutil

for _path in [{references!r}, {grader!r}, {outside!r}]:
    for _attempt in (lambda p: open(p, "wb").write(b"forged"), os.remove,
                     lambda p: os.rename(p, p + ".moved"), lambda p: shutil.rmtree(os.path.dirname(p))):
        try:
            _attempt(_path)
            print("CHANGED", _path)
        except OSError as error:
            print("blocked:", type(error).__name__)
with open("notes.txt", "w") as _handle:              # its own working folder is fine
    _handle.write("scratch")
print("wrote", os.path.abspath("notes.txt"))
"""


def test_writing_outside_the_sandbox_is_refused(a1, tmp_path):
    kit = a1[0].grader_dir
    before = {p.name: p.read_bytes() for p in kit.iterdir()}
    outside = tmp_path / "outside.txt"
    text = WRITE_OUTSIDE.format(references=str(kit / "references.npz"), grader=str(kit / "grader.py"),
                                outside=str(outside))
    report = grade(student_copy(a1, tmp_path / "vandal", suffix=text), kit, quiet=True, limits=FAST)
    assert report.earned == 0
    assert "CHANGED" not in report.output and "wrote /" in report.output
    assert {p.name: p.read_bytes() for p in kit.iterdir()} == before
    assert not outside.exists() and not Path(str(outside) + ".moved").exists()
    assert_correct_still_full_marks(a1)


# ----------------------------------------------------------------------------------------------
# Hanging, crashing and lying: a tiny assignment with fast checks
# ----------------------------------------------------------------------------------------------

TINY_GRADER = """
import numpy as np
from minicnn.assignment import Question

TITLE = "Tiny"
SUBMISSION_FILES = ["mod.py"]
q1 = Question("q1", "Doubling", points=2, timeout=5)


@q1.public
def small(sub):
    y = sub.mod.double(np.arange(3.0))
    assert np.allclose(y, [0, 2, 4]), f"expected [0, 2, 4], got {y}"
    return {"y": y}


# BEGIN HIDDEN
@q1.hidden
def negative(sub):
    return {"y": sub.mod.double(np.arange(5.0) - 2)}
# END HIDDEN


q2 = Question("q2", "Counting", points=1, timeout=5)


# BEGIN HIDDEN
@q2.hidden
def counts_seven(sub):
    return {"n": sub.mod.count(7)}
# END HIDDEN


QUESTIONS = [q1, q2]
"""

TINY_SOLUTION = """
import numpy as np


def double(x):
    # BEGIN SOLUTION
    return 2 * np.asarray(x)
    # END SOLUTION


def count(n):
    # BEGIN SOLUTION
    return np.arange(n, dtype=np.int64)
    # END SOLUTION
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny assignment, built: (kit folder, correct submission folder)."""
    root = tmp_path_factory.mktemp("tiny")
    src = root / "src"
    src.mkdir()
    (src / "grader.py").write_text(TINY_GRADER)
    (src / "mod.py").write_text(TINY_SOLUTION)
    result = build(src, root / "out")
    return result.grader_dir, src


def tiny_submission(folder, code):
    folder.mkdir()
    (folder / "mod.py").write_text(textwrap.dedent(code))
    return folder


def grade_tiny(tiny, folder, limits=TINY):
    report = grade(folder, tiny[0], quiet=True, limits=limits)
    correct = grade(tiny[1], tiny[0], quiet=True, limits=TINY)
    assert correct.earned == correct.possible == 3 and correct.complete
    return report, {c.name: (c.status, c.message) for q in report.questions for c in q.checks}


def test_integer_outputs_are_compared_too(tiny, tmp_path):
    with np.load(tiny[0] / "references.npz", allow_pickle=False) as data:
        assert data["q2.counts_seven.n"].dtype == np.int64
    code = "import numpy as np\ndouble = lambda x: 2 * x\ncount = lambda n: np.arange(1, n + 1)\n"
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "off_by_one", code))
    assert report.earned == 2 and checks["counts_seven"][0] == "failed"


@pytest.mark.parametrize("code", [
    # the time limit's signal ignored, then an endless loop
    """
    import signal
    def double(x):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            pass
    count = double
    """,
    # an endless loop that swallows every exception, the time limit's included
    """
    def double(x):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
    count = double
    """,
])
def test_a_check_that_ignores_its_time_limit_is_killed(tiny, tmp_path, code):
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "hang", code))
    assert report.earned == 0 and not report.complete
    assert [status for status, _ in checks.values()] == ["timeout"] * 3
    assert "stopped after" in checks["small"][1] and "by the grader" in checks["small"][1]


def test_the_time_budget_of_a_submission_is_enforced(tiny, tmp_path):
    """The budget covers everything, starting Python included: on a busy machine the first check
    may not even have started when it runs out. Either way nothing passes, nothing runs past the
    budget, and every check says the budget ended it."""
    code = """
    import signal
    def double(x):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            pass
    count = double
    """
    budget = Limits(total_seconds=3, check_seconds=60, grace_seconds=60, startup_seconds=60)
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "slow", code), budget)
    assert report.earned == 0 and not report.complete
    assert checks["small"][0] in ("timeout", "not run")      # "not run": budget gone before it
    assert checks["negative"][0] == checks["counts_seven"][0] == "not run"
    assert all("time budget" in message for _, message in checks.values())


def test_an_endless_loop_at_import_is_stopped(tiny, tmp_path):
    code = """
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
    """
    limits = Limits(total_seconds=30, check_seconds=1, grace_seconds=0.3, startup_seconds=2)
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "stuck", code), limits)
    assert report.earned == 0 and not report.complete
    assert {status for status, _ in checks.values()} == {"crashed"}
    assert "made no progress" in checks["small"][1]


FAKE_TOTAL = """
import os
print("total                        100 / 100  100.0%")
os._exit(0)
"""


def test_a_fake_total_and_os_exit_at_import(tiny, tmp_path, capsys):
    folder = tiny_submission(tmp_path / "liar", FAKE_TOTAL)
    json_path = tmp_path / "report.json"
    assert cli_grade(folder, str(tiny[0]), json_path=json_path) == 3        # not graded completely
    printed = capsys.readouterr().out
    totals = [line.split() for line in printed.splitlines() if line.startswith("total")]
    assert totals == [["total", "0", "/", "3", "0.0%"]]
    assert "  | total                        100 / 100" in printed          # shown as its output
    saved = json.loads(json_path.read_text())
    assert saved["earned"] == 0 and saved["complete"] is False
    assert [q["points"] for q in saved["questions"]] == [2, 1]
    checks = [c for q in saved["questions"] for c in q["checks"]]
    assert {c["status"] for c in checks} == {"crashed"}
    assert "exit code 0" in checks[0]["message"] and "importing" in checks[0]["message"]
    assert grade_tiny(tiny, tiny[1])[0].earned == 3


def test_a_crash_costs_only_the_check_that_crashed(tiny, tmp_path):
    code = """
    import os
    import numpy as np
    def double(x):
        if len(x) == 3:
            os._exit(7)
        return 2 * x
    def count(n):
        return np.arange(n)
    """
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "crash", code))
    assert checks["small"][0] == "crashed" and "exit code 7" in checks["small"][1]
    assert checks["negative"][0] == checks["counts_seven"][0] == "passed"
    assert report.earned == 2 and not report.complete


FORGED_RESULTS = """
import os
import stat

import numpy as np
from minicnn.assignment.channel import Writer

_pipes = []
for _fd in map(int, os.listdir("/proc/self/fd")):        # the results pipe: any pipe but stdout
    try:
        if _fd > 2 and stat.S_ISFIFO(os.fstat(_fd).st_mode):
            _pipes.append(_fd)
    except OSError:
        pass
for _fd in _pipes:
        _channel = Writer(os.fdopen(_fd, "wb"))
        for _check in ("q1.small", "q1.negative", "q2.counts_seven"):
            _channel.result(_check, "passed", "", {"y": np.zeros(3), "n": np.zeros(7)})
        _channel.event("finished")
os._exit(0)
"""


def test_forged_results_are_judged_by_their_arrays(tiny, tmp_path):
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "forger", FORGED_RESULTS))
    assert report.earned == 0
    assert all(status == "failed" for status, _ in checks.values())
    assert checks["small"][1].startswith("y: ")                        # judged by its arrays


@pytest.mark.parametrize("code, status, words", [
    ("import numpy as np\ndef double(x):\n    return np.ones(2 ** 31)\ncount = double\n",
     "error", "MemoryError"),
    ("def double(x):\n    blocks = []\n    while True:\n        try:\n"
     "            blocks.append(bytearray(50 * 2 ** 20))\n        except MemoryError:\n"
     "            pass\ncount = double\n", "timeout", "stopped after"),
])
def test_a_memory_bomb_is_stopped(tiny, tmp_path, code, status, words):
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "bomb", code))
    assert report.earned == 0
    assert checks["small"][0] == status and words in checks["small"][1]


BOUNDED_FORK_BOMB = """
import os
import subprocess


def double(x):
    children = 0
    for _ in range(8):                        # bounded: safe even if nothing stopped it
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        children += 1
    return x * 0 + children


def count(n):
    subprocess.run(["true"])
    os.kill(os.getpid(), 0)
"""


def test_a_fork_bomb_cannot_start_processes(tiny, tmp_path):
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "forker", BOUNDED_FORK_BOMB))
    assert report.earned == 0
    assert checks["small"][0] == "error" and "PermissionError" in checks["small"][1]
    assert "os.fork" in checks["small"][1]
    assert checks["counts_seven"][0] == "error" and "subprocess.Popen" in checks["counts_seven"][1]


LIMITS_PROBE = """
import numpy as np
from minicnn.assignment import Question

q = Question("q", "Limits", points=1)


@q.public
def limits(sub):
    import os
    import resource
    names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_NPROC"]
    return {"soft": np.array([resource.getrlimit(getattr(resource, n))[0] for n in names]),
            "cwd_entries": np.array(len(os.listdir("."))),
            "path_entries": np.array([p.startswith(sub.directory.as_posix()) for p in
                                      __import__("sys").path[:1]])}


QUESTIONS = [q]
"""


def test_the_child_runs_with_its_limits_in_an_empty_folder(tmp_path):
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "grader.py").write_text(LIMITS_PROBE)
    limits = Limits(total_seconds=20, memory_bytes=900 * 2 ** 20, open_files=40,
                    file_bytes=5 * 2 ** 20, processes=0)
    run = run_checks(folder, None, (), None, limits)
    outputs = run.results["q.limits"].outputs
    cpu, memory, files, size, processes = outputs["soft"].tolist()
    assert 0 < cpu <= 21 and memory == 900 * 2 ** 20 and files == 40 and size == 5 * 2 ** 20
    assert processes == 0
    assert outputs["cwd_entries"] == 0 and outputs["path_entries"].all()


