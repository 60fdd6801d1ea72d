"""Tests of minicnn.assignment.grade on the shipped example and on small crafted assignments."""
import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minicnn.assignment import GradeError, Submission, build, cli_build, cli_grade, grade
from minicnn.assignment.build import find_secrets, _read_sources

EXAMPLE = Path(__file__).resolve().parents[2] / "assignments" / "assignment1"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The example assignment, built once for the whole module."""
    return build(EXAMPLE, tmp_path_factory.mktemp("assignment1") / "out")


def copy_student(built, tmp_path, append=""):
    """A fresh copy of the release with ``append`` added to the end of its layers.py."""
    folder = tmp_path / "submission"
    shutil.copytree(built.student_dir, folder)
    if append:
        with open(folder / "layers.py", "a") as handle:
            handle.write(textwrap.dedent(append))
    return folder


def scores(report):
    return {q.name: q.earned for q in report.questions}


# ----------------------------------------------------------------------------------------------
# The example assignment
# ----------------------------------------------------------------------------------------------

def test_release_of_the_example(built):
    files, hidden, _ = _read_sources(EXAMPLE)
    secrets = find_secrets(files)
    assert len(secrets) > 30
    student = {p.relative_to(built.student_dir).as_posix(): p.read_text()
               for p in built.student_dir.rglob("*") if p.is_file() and p.suffix != ".npz"}
    assert sorted(student) == ["README.md", "assignment1.ipynb", "grader.py", "gradient_check.py", "layers.py",
                               "train.py"]
    assert (built.student_dir / "expected.npz").is_file()
    assert [str(p) for p in hidden] == ["notes_hidden.md"]
    for relpath, number, line in secrets:
        for name, text in student.items():
            assert line not in text, f"{relpath}:{number} {line!r} leaked into {name}"
    layers = student["layers.py"]
    assert "SOLUTION" not in layers
    blocks = sum(len(f.stripped.solution_blocks) for f in files if f.stripped)
    stubs = [line for line in layers.splitlines() if line.strip() == "raise NotImplementedError"]
    assert len(stubs) == blocks == built.blocks == 17
    assert "# TODO: your code here (hint: np.maximum compares elementwise)" in layers
    compile(layers, "layers.py", "exec")


def test_non_solution_content_is_byte_identical(built):
    """Remove the blocks from the instructor's files and the stubs from the student's: equal."""
    for source in EXAMPLE.iterdir():
        if source.name.endswith("_hidden.md") or source.name == "__pycache__":
            continue
        released = (built.student_dir / source.name).read_bytes()
        original = source.read_bytes()
        if b"# BEGIN HIDDEN" in original:               # the grader: the hidden blocks left out
            kept, inside = [], False
            for line in original.splitlines(keepends=True):
                if line.startswith((b"# BEGIN HIDDEN", b"# END HIDDEN")):
                    inside = b"BEGIN" in line
                elif not inside:
                    kept.append(line)
            assert released == b"".join(kept)
            continue
        if b"# BEGIN SOLUTION" not in original:
            assert released == original, source.name
            continue
        without_blocks, inside = [], False
        for line in original.splitlines(keepends=True):
            if b"# BEGIN SOLUTION" in line or b"# END SOLUTION" in line:
                inside = b"BEGIN" in line
            elif not inside:
                without_blocks.append(line)
        without_stubs = [line for line in released.splitlines(keepends=True)
                         if b"# TODO: your code here" not in line
                         and line.strip() != b"raise NotImplementedError"]
        assert without_stubs == without_blocks


def test_references_and_kit(built):
    with np.load(built.references, allow_pickle=False) as data:
        keys = data.files
        assert all(data[key].dtype == np.float64 for key in keys)
    assert "q4.conv_im2col_backward_values.dx" in keys and "q1.affine_small_example.out" in keys
    assert len({key.rsplit(".", 1)[0] for key in keys}) == 37          # every check, public too
    kit = sorted(p.name for p in built.grader_dir.iterdir())
    assert "grader.py" in kit and "gradient_check.py" in kit and "references.npz" in kit
    assert "layers.py" not in kit and "notes_hidden.md" not in kit


def test_instructor_solution_gets_full_marks(built, capsys):
    report = grade(EXAMPLE, built.grader_dir)
    assert report.earned == report.possible == 110
    assert all(q.status == "passed" for q in report.questions)
    printed = capsys.readouterr().out
    assert "Assignment 1: CNN layers" in printed and "110 / 110" in printed
    assert "q4  Convolution with im2col" in printed


def test_untouched_student_copy_gets_zero(built, tmp_path, capsys):
    report = grade(copy_student(built, tmp_path), built.references)
    assert report.earned == 0 and report.possible == 110
    assert {q.status for q in report.questions} == {"not implemented"}
    assert "layers.py" in report.questions[0].message and "affine_forward" in report.questions[0].message
    assert "0 / 110" in capsys.readouterr().out
    json.dumps(report.to_dict())


PARTIAL = """

def relu_forward(x):
    return np.where(x > 0, x, 0.0), x


def relu_backward(dout, cache):
    return np.where(cache > 0, dout, 0.0)


def affine_forward(x, w, b):
    # right forward pass ...
    return x.reshape(len(x), -1).dot(w.T) + b, (x, w)


def affine_backward(dout, cache):
    # ... but dx is left flat and db is wrong
    x, w = cache
    return dout.dot(w), dout.T.dot(x.reshape(len(x), -1)), dout.sum(axis=0) * 2
"""


def test_partially_solved_copy_gets_partial_credit(built, tmp_path):
    report = grade(copy_student(built, tmp_path, PARTIAL), built.grader_dir, quiet=True)
    by_name = {q.name: q for q in report.questions}
    assert by_name["q2"].status == "passed" and by_name["q2"].earned == 5
    # q1: 4 checks of 2.5 points; the forward checks pass. The public gradient check (out, dx,
    # dw, db) has out and dw right; the hidden one (x already flat: dx right) dx and dw.
    assert by_name["q1"].status == "partial"
    assert by_name["q1"].earned == pytest.approx(2.5 + 2.5 * 2 / 4 + 2.5 + 2.5 * 2 / 3)
    assert [c.status for c in by_name["q1"].checks] == ["passed", "partial", "passed", "partial"]
    assert "dx: shape (3, 6), expected (3, 2, 3)" in by_name["q1"].checks[1].message
    assert by_name["q1"].checks[3].message.startswith("db: relative error 5.00e-01")
    assert all(by_name[q].earned == 0 for q in ["q3", "q4", "q5", "q6"])
    assert 0 < report.fraction < 1
    text = report.format()
    assert "q1.affine_backward_values [hidden, partial]" in text
    assert "q3.conv_naive_small_example" not in text        # questions not started: table only


def test_without_references_only_public_checks_run(built, tmp_path):
    report = grade(copy_student(built, tmp_path, PARTIAL), quiet=True)
    assert report.references is None and report.expected == "expected.npz"
    assert all(c.kind == "public" for q in report.questions for c in q.checks)   # none shipped
    real = grade(copy_student(built, tmp_path / "again", PARTIAL), built.grader_dir, quiet=True)
    # The public part is scored as in the real grade, point for point, out of the public points.
    assert report.earned == pytest.approx(real.public_earned)
    assert report.possible == pytest.approx(real.public_possible)
    assert scores(report)["q2"] == pytest.approx(5 * 2 / 3)     # ReLU: 2 public checks of 3
    assert "public checks only" in report.format()
    instructor = grade(EXAMPLE, quiet=True)             # no expected values: they pass if they run
    assert instructor.earned == pytest.approx(instructor.possible) == pytest.approx(instructor.public_possible)


def test_grader_helpers_come_from_the_kit(built, tmp_path):
    """Only layers.py is taken from the submission: a doctored gradient_check.py changes nothing."""
    folder = tmp_path / "only_layers"
    folder.mkdir()
    shutil.copy(EXAMPLE / "layers.py", folder)
    (folder / "gradient_check.py").write_text("def check_layer(*a, **k):\n    return {}\n"
                                              "rel_error = lambda *a: 0.0\n")
    (folder / "grader.py").write_text("QUESTIONS = []\n")
    assert grade(folder, built.grader_dir, quiet=True).earned == 110
    tampered = copy_student(built, tmp_path, "")
    shutil.copy(folder / "gradient_check.py", tampered)
    assert grade(tampered, built.grader_dir, quiet=True).earned == 0


def test_grading_leaves_sys_modules_and_sys_path_as_they_were(built, tmp_path):
    sentinel = type(sys)("layers")
    sys.modules["layers"] = sentinel                    # an unrelated module of the same name
    try:
        before_modules, before_path = set(sys.modules), list(sys.path)
        grade(copy_student(built, tmp_path, PARTIAL), built.grader_dir, quiet=True)
        grade(EXAMPLE, built.grader_dir, quiet=True)
        assert set(sys.modules) == before_modules and sys.path == before_path
        assert sys.modules["layers"] is sentinel
    finally:
        del sys.modules["layers"]


def test_cli_functions(built, tmp_path, capsys):
    assert cli_grade(copy_student(built, tmp_path), str(built.grader_dir),
                     json_path=tmp_path / "report.json") == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["earned"] == 0 and saved["possible"] == 110
    assert cli_grade(tmp_path / "missing") == 1
    assert cli_grade(EXAMPLE, tmp_path / "missing.npz") == 1
    assert cli_build(EXAMPLE, tmp_path / "cli_out") == 0
    assert cli_build(EXAMPLE, tmp_path / "cli_out") == 1           # not empty any more
    assert "error:" in capsys.readouterr().err


def test_train_script_runs_a_few_steps(capsys):
    with Submission(EXAMPLE) as sub:
        x, y = sub.train.make_synthetic(64, seed=0)
        params, history = sub.train.train(x, y, x[:32], y[:32], epochs=1, batch_size=16,
                                          max_steps=3, log=lambda line: None)
        assert np.isfinite(history[0]["train_loss"]) and 0 <= history[0]["test_acc"] <= 1
        history = sub.train.main(["--quick", "--synthetic", "--max-steps", "2"])
    assert len(history) == 1 and "epoch 1" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Crafted assignments: a grader must survive anything a submission does
# ----------------------------------------------------------------------------------------------

ROBUST_GRADER = """
import sys
import numpy as np
from minicnn.assignment import Question

SUBMISSION_FILES = ["mod.py"]
q = Question("q", "Robustness", points=6, timeout=0.3)

@q.public
def loops_forever(sub):
    return {"v": sub.mod.loop()}

@q.public
def exits(sub):
    return {"v": sub.mod.leave()}

@q.public
def swallows_everything(sub):
    return {"v": sub.mod.swallow()}

@q.public
def returns_none(sub):
    assert sub.mod.value() is not None, "value() returned None"
    return {"v": sub.mod.value()}

@q.hidden
def bad_output(sub):
    return {"v": sub.mod.value()}

@q.public
def fine(sub):
    assert sub.mod.ok() == 1
    return {"v": sub.mod.ok()}

QUESTIONS = [q]
"""

ROBUST_MOD = """
import sys

def loop():
    while True:
        pass

def leave():
    sys.exit(3)

def swallow():
    while True:
        try:
            while True:
                pass
        except Exception:
            pass

def value():
    return None

def ok():
    return 1
"""


def test_timeouts_exits_and_bad_outputs_score_zero_without_crashing(tmp_path):
    folder = tmp_path / "robust"
    folder.mkdir()
    (folder / "grader.py").write_text(ROBUST_GRADER)
    (folder / "mod.py").write_text(ROBUST_MOD)
    np.savez(folder / "references.npz", **{f"q.{name}.v": np.zeros(3) for name in
                                           ["loops_forever", "exits", "swallows_everything",
                                            "returns_none", "bad_output"]}, **{"q.fine.v": 1})
    report = grade(folder, folder / "references.npz", quiet=True)
    statuses = {c.name: c.status for c in report.questions[0].checks}
    assert statuses == {"loops_forever": "timeout", "exits": "error", "swallows_everything": "timeout",
                        "returns_none": "failed", "bad_output": "error", "fine": "passed"}
    assert report.earned == 1 and report.questions[0].status == "partial"
    messages = {c.name: c.message for c in report.questions[0].checks}
    assert "stopped after 0.3 s" in messages["loops_forever"] and "mod.py:" in messages["loops_forever"]
    assert messages["exits"].startswith("SystemExit: 3")


def test_files_named_like_standard_modules_do_not_unload_them(tmp_path):
    import json as json_module
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "grader.py").write_text(ROBUST_GRADER)
    (folder / "mod.py").write_text("import json\ndef ok():\n    return json.loads('1')\n")
    (folder / "json.py").write_text("raise RuntimeError('the grader must not import this')\n")
    report = grade(folder, quiet=True)
    assert {c.name: c.status for c in report.questions[0].checks}["fine"] == "passed"
    assert sys.modules["json"] is json_module


def test_a_submission_that_does_not_import(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "grader.py").write_text(ROBUST_GRADER)
    (folder / "mod.py").write_text("def ok(:\n")
    report = grade(folder, quiet=True)
    assert report.earned == 0
    assert all("mod.py could not be imported: SyntaxError" in c.message
               for c in report.questions[0].checks if c.kind == "public")


def test_tooling_errors(tmp_path):
    with pytest.raises(GradeError, match="not a folder"):
        grade(tmp_path / "missing")
    with pytest.raises(GradeError, match="no grader.py"):
        grade(tmp_path)
    (tmp_path / "grader.py").write_text("QUESTIONS = 3\n")
    with pytest.raises(GradeError, match="QUESTIONS"):
        grade(tmp_path)
    (tmp_path / "grader.py").write_text("import nonexistent_module_xyz\n")
    with pytest.raises(GradeError, match="could not import the grader"):
        grade(tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(GradeError, match="could not read the references"):
        grade(tmp_path, tmp_path / "bad.npz")


def test_relative_error_of_complex_and_integer_values():
    from minicnn.assignment import relative_error
    assert relative_error(np.array([1 + 1j]), np.array([1 - 1j])) == pytest.approx(2 / np.sqrt(2))
    assert relative_error(np.arange(4), np.arange(4)) == 0.0
    assert relative_error(np.array(3), np.array(4)) == pytest.approx(0.25)


@pytest.mark.parametrize("command", ["grade", "grade-all"])
@pytest.mark.parametrize("option, value, words", [
    ("--time-budget", "0", "positive, finite number of seconds, got '0'"),
    ("--time-budget", "inf", "positive, finite number of seconds, got 'inf'"),
    ("--time-budget", "nan", "positive, finite number of seconds, got 'nan'"),
    ("--memory-mb", "-1", "whole number of MiB >= 0, got '-1'"),
])
def test_command_line_limits_are_checked(capsys, command, option, value, words):
    from minicnn.assignment import main
    extra = ["--references", "kit"] if command == "grade-all" else []
    with pytest.raises(SystemExit):
        main([command, ".", *extra, option, value])
    assert f"argument {option}: expected a {words}" in capsys.readouterr().err


def test_a_check_must_return_arrays(tmp_path):
    from minicnn.assignment import Question, collect_references
    q = Question("q", "Nothing back", points=1)

    @q.public
    def asserts_only(sub):
        assert True

    with pytest.raises(TypeError, match="q.asserts_only must return a dict of arrays"):
        collect_references([q], None)
    with pytest.raises(ValueError, match="named function"):
        q.public(lambda sub: {"y": 1})


def test_the_command_line_without_minicnn_s_gives_one_line_errors(capsys):
    from minicnn.assignment import main
    for argv, line in ([["grde", "x"], "python -m minicnn.assignment: error: argument action: invalid choice: "
                                       "'grde' (choose from build, grade, grade-all); did you mean 'grade'?"],
                       [["grade"], "python -m minicnn.assignment grade: error: the following arguments are "
                                   "required: submission"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
        assert capsys.readouterr().err.splitlines()[0] == line
