"""docs/assignments.md's counts are generated: its table of what each assignment asks is exactly
what ``python -m minicnn.assignment.stats`` prints for the assignments in the checkout, and its
build example reports the files and solution blocks that building Assignment 1 does."""
import re
from pathlib import Path

from minicnn.assignment.stats import count, table

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "assignments.md"
BEGIN, END = "<!-- begin: python -m minicnn.assignment.stats", "<!-- end: generated table -->"


def test_the_course_table_is_what_the_assignments_hold():
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC.name} lost its generated table's markers"
    shown = text.split(BEGIN, 1)[1].split("-->", 1)[1].split(END, 1)[0].strip()
    folders = sorted(p for p in (ROOT / "assignments").glob("assignment*") if p.is_dir())
    assert shown == table(folders), (
        "docs/assignments.md's table is stale; regenerate it with\n"
        "python -m minicnn.assignment.stats " + " ".join(f"assignments/{p.name}" for p in folders))


def test_the_build_example_reports_what_building_assignment1_reports():
    stats = count(ROOT / "assignments" / "assignment1")
    examples = re.findall(r"built (\d+) files, (\d+) solution blocks replaced", DOC.read_text())
    assert examples and all((int(f), int(b)) == (stats.files, stats.blocks) for f, b in examples), \
        (examples, stats)
