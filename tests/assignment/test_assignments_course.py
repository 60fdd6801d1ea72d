"""Assignments 2-5: each builds, its solution scores full marks, its untouched student copy 0,
every question has hidden checks besides the public ones, and the README lists the hand-in, the
grading, the time and the written questions."""
import ast
import re
from pathlib import Path

import pytest

from minicnn.assignment import build, grade

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = {n: ROOT / "assignments" / f"assignment{n}" for n in (2, 3, 4, 5)}


@pytest.fixture(scope="module", params=sorted(ASSIGNMENTS), ids=lambda n: f"assignment{n}")
def built(request, tmp_path_factory):
    source = ASSIGNMENTS[request.param]
    return source, build(source, tmp_path_factory.mktemp(source.name) / "out")


def test_solution_scores_full_marks_and_student_copy_zero(built):
    source, result = built
    solution = grade(source, result.grader_dir, quiet=True)
    assert solution.possible == 100 and solution.earned == 100
    student = grade(result.student_dir, result.grader_dir, quiet=True)
    assert student.possible == 100 and student.earned == 0
    assert all(q.status == "not implemented" for q in student.questions), \
        [(q.name, q.status, q.message) for q in student.questions]


def test_the_release_holds_no_solution_and_no_instructor_notes(built):
    source, result = built
    released = {p.name for p in result.student_dir.iterdir()}
    assert "notes_hidden.md" not in released and "grader.py" in released
    assert f"{source.name}.ipynb" in released and "answers.md" in released
    for path in result.student_dir.glob("*.py"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        compile(text, str(path), "exec")


def test_every_question_has_public_and_hidden_checks(built):
    source, _ = built
    tree = ast.parse((source / "grader.py").read_text())
    kinds = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr in ("public", "hidden"):
                    kinds.setdefault(decorator.value.id, set()).add(decorator.attr)
    assert kinds and all(found == {"public", "hidden"} for found in kinds.values()), kinds


def test_readme_says_what_to_hand_in_how_it_is_graded_and_how_long(built):
    source, _ = built
    readme = (source / "README.md").read_text()
    for heading in ("## What you hand in", "## How it is graded", "## Questions"):
        assert heading in readme, f"{source.name}/README.md lacks {heading!r}"
    assert re.search(r"\*\*Time:\*\* about \d+ hours", readme)
    written = re.findall(r"\*\*(W\d)\b", readme)
    answers = (source / "answers.md").read_text()
    assert written and all(f"## {w}" in answers for w in written), (written, source.name)
