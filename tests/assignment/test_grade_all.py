"""Grading a whole class: one folder per student, one CSV of marks (``grade-all``). The challenge's
leaderboard (``grade-all --leaderboard``) is tested in test_challenge.py."""
import ast
import csv
import json
import shutil
from pathlib import Path

import pytest

from minicnn import cli
from minicnn.assignment import EXIT_INCOMPLETE, build, cli_grade_all

A2 = Path(__file__).resolve().parents[2] / "assignments" / "assignment2"

def _submission_files(grader):
    """The ``SUBMISSION_FILES`` a grader.py lists (read, not imported)."""
    for node in ast.parse(grader.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SUBMISSION_FILES"
                                                for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{grader} lists no SUBMISSION_FILES")


HANDED_IN = _submission_files(A2 / "grader.py") + ("answers.md",)    # functions.py first


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build(A2, tmp_path_factory.mktemp("a2") / "out")


def _hand_in(folder, source, names=HANDED_IN):
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(source / name, folder / name)


def test_a_class_is_graded_into_one_csv(kit, tmp_path, capsys):
    submissions = tmp_path / "submissions"
    _hand_in(submissions / "alice", A2)                       # the instructor's solution
    _hand_in(submissions / "bob", kit.student_dir)            # the untouched handout
    _hand_in(submissions / "carol", A2)
    crash = submissions / "carol" / "topo.py"
    crash.write_text("import os\nos._exit(0)\n" + crash.read_text())   # dies at import
    for name, said in (("alice", "Hours spent: 6.5"), ("carol", "hours spent: 9 h")):
        answers = submissions / name / "answers.md"
        answers.write_text(answers.read_text().replace("Hours spent: ", said, 1))
    marks = tmp_path / "marks.csv"
    status = cli_grade_all(submissions, kit.grader_dir, marks, json_dir=tmp_path / "reports")
    assert status == EXIT_INCOMPLETE                          # carol could not be graded completely
    rows = {row["student"]: row for row in csv.DictReader(marks.open())}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["alice"]["automatic total"] == rows["alice"]["automatic possible"] == "100"
    assert rows["alice"]["complete"] == "yes"
    assert rows["bob"]["automatic total"] == "0" and rows["bob"]["complete"] == "yes"
    assert rows["carol"]["complete"] == "no" and float(rows["carol"]["automatic total"]) < 100
    written = [column for column in rows["alice"] if column.endswith("by hand)")]
    assert written and all(rows["alice"][column] == "" for column in written)   # for the instructor
    # The handout's answers.md, untouched: every written answer is flagged as missing.
    assert rows["bob"]["w1 answer"] == rows["bob"]["w2 answer"] == "MISSING"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["alice.json", "bob.json", "carol.json"]
    # What the assignment took, as the students said (the handout's line, untouched: nothing).
    assert [rows[name]["hours spent"] for name in ("alice", "bob", "carol")] == ["6.5", "", "9"]
    printed = capsys.readouterr().out
    assert "alice" in printed
    assert "hours spent, as 2 of 3 students said: median 7.75 (middle half 7.12 to 8.38)" in printed


def test_the_command_line_and_its_errors(kit, tmp_path, capsys):
    submissions = tmp_path / "class"
    _hand_in(submissions / "alice", A2)
    marks = tmp_path / "m.csv"
    assert cli.main(["assignment", "grade-all", str(submissions), "--references", str(kit.grader_dir),
                     "--csv", str(marks)]) == 0
    assert "alice" in marks.read_text()
    (tmp_path / "empty").mkdir()
    assert cli_grade_all(tmp_path / "empty", kit.grader_dir, tmp_path / "x.csv") == 1
    assert "no submission folders" in capsys.readouterr().err
    assert cli_grade_all(submissions, tmp_path / "nowhere", tmp_path / "x.csv") == 1


def test_written_answers_complete_hand_ins_and_gradescope_results(kit, tmp_path):
    submissions = tmp_path / "class"
    _hand_in(submissions / "dana", A2)
    answers = (kit.student_dir / "answers.md").read_text()
    (submissions / "dana" / "answers.md").write_text(
        answers.replace("(a)\n", "(a) The loss comes first: =SUM(A1) is no formula here.\n", 1))
    _hand_in(submissions / "erin", A2, names=("functions.py",))      # 1 of 4 files
    marks, results = tmp_path / "marks.csv", tmp_path / "gradescope"
    status = cli_grade_all(submissions, kit.grader_dir, marks, json_dir=results,
                           format="gradescope")
    assert status == EXIT_INCOMPLETE                                  # erin's hand-in is not
    rows = {row["student"]: row for row in csv.DictReader(marks.open())}
    assert rows["dana"]["w1 answer"] == "(a) The loss comes first: =SUM(A1) is no formula here."
    assert rows["dana"]["w2 answer"] == "MISSING" and rows["dana"]["complete"] == "yes", rows["dana"]
    assert rows["erin"]["complete"] == "no"
    assert rows["erin"]["not handed in"] == " ".join(HANDED_IN[1:])
    # Gradescope's autograder format, one results.json per student.
    dana = json.loads((results / "dana" / "results.json").read_text())
    assert dana["score"] == dana["max_score"] == 100
    tests = dana["tests"]
    assert sum(t["max_score"] for t in tests) == pytest.approx(100)
    assert {t["visibility"] for t in tests} == {"visible", "after_published"}
    assert all(set(t) >= {"name", "score", "max_score", "output", "visibility"} for t in tests)
    assert "written answers missing: w2" in dana["output"]
    erin = json.loads((results / "erin" / "results.json").read_text())
    assert erin["score"] < erin["max_score"] == 100
    assert f"not handed in: {', '.join(HANDED_IN[1:])}" in erin["output"]
    failed = [t for t in erin["tests"] if t["name"].startswith("q5.")]
    assert failed and all(t["score"] == 0 and "topo.py was not handed in" in t["output"]
                          for t in failed)


def test_gradescope_needs_a_folder(kit, tmp_path, capsys):
    submissions = tmp_path / "class"
    _hand_in(submissions / "alice", A2)
    assert cli.main(["assignment", "grade-all", str(submissions), "--references",
                     str(kit.grader_dir), "--csv", str(tmp_path / "m.csv"),
                     "--format", "gradescope"]) == 1
    assert "--format gradescope writes into --json-dir" in capsys.readouterr().err


@pytest.mark.parametrize("text, hours", [
    ("Hours spent: 7.5", 7.5), ("hours spent:7,5 h", 7.5), ("Name: x\nHours spent: 12 hours\n", 12.0),
    ("Hours spent: ", None), ("Hours spent: about 7", None), ("Hours spent: 0", None),
    ("Hours spent: 9000", None), ("", None)])
def test_hours_spent_is_a_plausible_number_or_nothing(text, hours):
    from minicnn.assignment.grade import hours_spent
    assert hours_spent(text) == hours
