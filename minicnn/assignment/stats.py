"""What an assignment asks of students, counted from its instructor folder.

``python -m minicnn.assignment.stats assignments/assignment*`` prints one Markdown row per
assignment: the files students get, the solution blocks they fill in and the lines of code in
them, the questions, public and hidden checks, and the points graded automatically and by hand.
``docs/assignments.md`` holds this table as printed (a test compares them), so the counts there
are generated, never typed.
"""
import dataclasses
import sys
from pathlib import Path

from .build import _read_sources
from .grade import load_grader
from .submission import Submission

HEADER = ("| assignment | files | solution blocks | lines to write | questions | public checks "
          "| hidden checks | automatic points | written points |\n"
          "|---|---|---|---|---|---|---|---|---|")


@dataclasses.dataclass
class AssignmentStats:
    name: str
    files: int              # files in the student copy (without expected.npz and reading/)
    blocks: int             # solution blocks, each a TODO in the student copy
    lines: int              # lines of code in them (not blank, not a comment)
    questions: int
    public: int
    hidden: int
    automatic: float        # points of the questions
    written: float          # points of the written questions (grader.py's WRITTEN)

    def row(self):
        return (f"| {self.name} | {self.files} | {self.blocks} | {self.lines} | {self.questions} "
                f"| {self.public} | {self.hidden} | {self.automatic:g} | {self.written:g} |")


def _code_lines(block):
    return sum(1 for line in block.lines if line.strip() and not line.strip().startswith("#"))


def count(src):
    """The :class:`AssignmentStats` of the instructor folder ``src``."""
    src = Path(src).resolve()
    files, _, _ = _read_sources(src)
    blocks = [b for f in files if f.stripped for b in f.stripped.solution_blocks]
    with Submission(src) as solution:
        grader = load_grader(solution, src / "grader.py")
    checks = [c for q in grader.QUESTIONS for c in q.checks]
    written = getattr(grader, "WRITTEN", {})
    return AssignmentStats(
        name=src.name, files=len(files), blocks=len(blocks),
        lines=sum(_code_lines(b) for b in blocks), questions=len(grader.QUESTIONS),
        public=sum(c.kind == "public" for c in checks), hidden=sum(c.kind == "hidden" for c in checks),
        automatic=sum(q.points for q in grader.QUESTIONS),
        written=sum(points for _, points in written.values()))


def table(folders):
    """The Markdown table of the assignments in ``folders``."""
    return "\n".join([HEADER] + [count(folder).row() for folder in folders])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m minicnn.assignment.stats ASSIGNMENT_FOLDER ...")
    print(table(sys.argv[1:]))
