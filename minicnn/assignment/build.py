"""Build the student copy of an assignment from the instructor's version.

The instructor writes one folder that holds the complete, working assignment. Solution code is
fenced by two comment lines::

    def relu_forward(x):
        out = None
        # BEGIN SOLUTION (hint: np.maximum compares elementwise)
        out = np.maximum(0, x)
        # END SOLUTION
        return out, x

:func:`build` turns that folder into two folders::

    out_dir/
        student/     the release: hand this folder to the students
        grader/      the private grading kit: grader.py, its helper files and references.npz

In ``student/`` every solution block becomes, at the indentation of its ``# BEGIN SOLUTION`` line,

.. code-block:: python

        # TODO: your code here (hint: np.maximum compares elementwise)
        raise NotImplementedError

and every other byte of every file is copied unchanged (line endings included).

Hidden checks are fenced the same way, by ``# BEGIN HIDDEN`` and ``# END HIDDEN``: such a block is
left out of the student copy entirely (no stub) and kept, as it is, in the grading kit. A grader's
hidden checks, with their inputs and seeds, live in such blocks, so the student copy's
``grader.py`` holds the public checks only.

Conventions
-----------
Markers
    A marker is a whole line: optional indentation, ``#``, then ``BEGIN SOLUTION`` or ``END SOLUTION``
    (``BEGIN HIDDEN``/``END HIDDEN``). ``BEGIN SOLUTION`` may carry a hint in parentheses,
    ``(hint: ...)`` or just ``(...)``; nothing else may follow any marker. Blocks may not nest, and
    a block ends with the END of its own kind. Markers are looked for in every text file (UTF-8
    without NUL bytes); other files are copied as they are.
Hidden files
    A file or folder whose name, up to its first dot, is ``hidden``, ``solution`` or ``solutions`` or
    ends in ``_hidden``, ``_solution`` or ``_solutions`` (``grader_hidden/``, ``layers_solution.py``,
    ``notes_hidden.md``) belongs to the instructor: it is copied neither to ``student/`` nor to
    ``grader/``.
Clutter
    ``__pycache__``, ``.pytest_cache``, ``.ipynb_checkpoints``, ``.git``, ``*.pyc`` and ``.DS_Store``
    are never copied.
The grader
    When the source folder has a ``grader.py`` (see :mod:`minicnn.assignment.questions`), the build
    imports it with the instructor's solution, stores the arrays every check returns (public and
    hidden) in ``grader/references.npz`` (plain arrays, readable with ``allow_pickle=False``),
    copies every released file except the ones students hand in (the grader's ``SUBMISSION_FILES``)
    to ``grader/`` (with the hidden blocks), and finally grades the instructor's solution with that
    kit, which must score full marks. The student copy gets ``expected.npz``
    (:data:`EXPECTED_FILE`): the solution's outputs on the *public* checks and the weight of each
    question's hidden checks, so that a student's own run scores the public checks exactly as the
    real grade does.

The leak check
--------------
A *secret* is a line inside a solution block that has at least :data:`MIN_SECRET_CHARS` characters
other than whitespace and that does not also occur outside the solution blocks of its own file
(lines such as ``return out, cache`` that the scaffold shows anyway are not secrets). Matching
ignores all whitespace, so ``out=x@w`` and ``out = x @ w`` are the same line. The build refuses to
finish (:class:`LeakError`) when any secret occurs anywhere in any file of ``student/``: in a copied
test, a README example, a hint, a file that should have been hidden. Lines of hidden blocks are
secrets in the same way, and so is the name of every hidden check of the kit's grader (as a whole
word): no hidden check's name, inputs or seed reaches the student copy. Everything is built in a
temporary folder next to ``out_dir`` and moved into place only after every check passed, so a failed
build writes nothing.
"""
import dataclasses
import os
import re
import shutil
import tempfile
import traceback
from pathlib import Path

import numpy as np

from .grade import GradeError, grade, load_grader
from .questions import EXPECTED_FILE, collect_references, hidden_weight_key
from .reading import ReadingError, ship_reading
from .submission import Submission

__all__ = [
    "BuildError", "MarkerError", "LeakError", "BuildResult", "Block", "Stripped",
    "build", "strip_solutions", "is_hidden", "is_clutter", "MIN_SECRET_CHARS", "EXPECTED_FILE",
    "hidden_weight_key",
]

#: A solution line needs at least this many non-whitespace characters to count as a secret.
MIN_SECRET_CHARS = 8

#: What a solution block becomes when its BEGIN line gives no hint.
TODO_TEXT = "your code here"

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#[ \t]*BEGIN (?P<kind>SOLUTION|HIDDEN)\b(?P<rest>.*)$")
_END = re.compile(r"^[ \t]*#[ \t]*END (?P<kind>SOLUTION|HIDDEN)\b(?P<rest>.*)$")
_HINT = re.compile(r"^\((?:\s*hint\s*:)?\s*(?P<hint>.*?)\s*\)$", re.IGNORECASE)
_HIDDEN_NAME = re.compile(r"(^|_)(hidden|solutions?)$")
_CLUTTER_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".mypy_cache", ".git"}
_CLUTTER_FILES = {".DS_Store"}
_CLUTTER_SUFFIXES = (".pyc", ".pyo")
_WHITESPACE = re.compile(r"\s+")


class BuildError(Exception):
    """The assignment could not be built; nothing was written."""


class MarkerError(BuildError, ValueError):
    """Solution markers that do not pair up (or are malformed). The message names file and line."""


class LeakError(BuildError):
    """Solution code would have reached the student copy. The message lists every leak found."""


# ----------------------------------------------------------------------------------------------
# One file: find the solution blocks and replace them
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Block:
    """One ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block (line numbers count from 1), or a
    ``# BEGIN HIDDEN`` ... ``# END HIDDEN`` one (``kind`` ``"hidden"``)."""
    begin: int
    end: int
    indent: str
    hint: str
    lines: list
    kind: str = "solution"


@dataclasses.dataclass
class Stripped:
    """The result of :func:`strip_solutions` for one file.

    ``text`` is the student version, ``kit_text`` the grading kit's (solution blocks stubbed,
    hidden blocks kept), ``public_text`` everything outside the blocks (without the generated TODO
    stubs), ``blocks`` the solution and hidden blocks in order.
    """
    text: str
    public_text: str
    blocks: list
    kit_text: str = ""

    @property
    def solution_blocks(self):
        return [b for b in self.blocks if b.kind == "solution"]


def _split_lines(text):
    """Split ``text`` into ``(content, line_ending)`` pairs; the endings re-join to ``text``."""
    pieces = re.findall(r"[^\n]*\n|[^\n]+$", text)
    result = []
    for piece in pieces:
        content = piece.rstrip("\r\n")
        result.append((content, piece[len(content):]))
    return result


def _stub(indent, hint, eol):
    """The two lines that replace a solution block."""
    todo = TODO_TEXT + (f" (hint: {hint})" if hint else "")
    eol = eol or "\n"
    return f"{indent}# TODO: {todo}{eol}{indent}raise NotImplementedError{eol}"


def strip_solutions(text, filename="<text>"):
    """Replace every solution block of ``text`` by a TODO stub and drop every hidden block.

    Returns a :class:`Stripped`. Raises :class:`MarkerError` (a ``ValueError``) naming
    ``filename`` and the line on an END without BEGIN (or of the other kind), a BEGIN inside a
    block, a block left open at the end of the text, or a marker followed by something other than
    a hint (hints only after ``BEGIN SOLUTION``).
    """
    student, kit, public, blocks = [], [], [], []
    block = None
    for number, (content, eol) in enumerate(_split_lines(text), start=1):
        begin, end = _BEGIN.match(content), _END.match(content)
        if begin:
            kind = begin.group("kind")
            if block is not None:
                raise MarkerError(f"{filename}:{number}: '# BEGIN {kind}' inside the "
                                  f"{block.kind} block opened at line {block.begin} "
                                  f"(blocks cannot nest)")
            rest = begin.group("rest").strip()
            hint = ""
            if rest:
                parsed = _HINT.match(rest) if kind == "SOLUTION" else None
                if parsed is None:
                    raise MarkerError(f"{filename}:{number}: unexpected text after '# BEGIN {kind}': "
                                      f"{rest!r}" + (" (write a hint as '(hint: ...)')"
                                                     if kind == "SOLUTION" else ""))
                hint = parsed.group("hint")
            block = Block(begin=number, end=0, indent=begin.group("indent"), hint=hint, lines=[],
                          kind=kind.lower())
            if block.kind == "solution":
                student.append(_stub(block.indent, hint, eol))
                kit.append(_stub(block.indent, hint, eol))
            else:
                kit.append(content + eol)
        elif end:
            kind = end.group("kind")
            if block is None or block.kind != kind.lower():
                raise MarkerError(f"{filename}:{number}: '# END {kind}' without a matching "
                                  f"'# BEGIN {kind}'")
            if end.group("rest").strip():
                raise MarkerError(f"{filename}:{number}: unexpected text after '# END {kind}': "
                                  f"{end.group('rest').strip()!r}")
            if block.kind == "hidden":
                kit.append(content + eol)
            block.end = number
            blocks.append(block)
            block = None
        elif block is not None:
            block.lines.append(content)
            if block.kind == "hidden":
                kit.append(content + eol)
        else:
            student.append(content + eol)
            kit.append(content + eol)
            public.append(content + eol)
    if block is not None:
        raise MarkerError(f"{filename}:{block.begin}: '# BEGIN {block.kind.upper()}' is never "
                          f"closed by '# END {block.kind.upper()}'")
    return Stripped(text="".join(student), public_text="".join(public), blocks=blocks,
                    kit_text="".join(kit))


# ----------------------------------------------------------------------------------------------
# Which files go where
# ----------------------------------------------------------------------------------------------

def _stem(name):
    return name.split(".", 1)[0] if not name.startswith(".") else name


def is_hidden(relpath):
    """True when a path (relative to the assignment folder) is instructor-only.

    That is when any of its parts, up to the first dot, is ``hidden``/``solution(s)`` or ends in
    ``_hidden``/``_solution(s)``.
    """
    return any(_HIDDEN_NAME.search(_stem(part)) for part in Path(relpath).parts)


def is_clutter(relpath):
    """True for caches and editor droppings that are never copied anywhere."""
    parts = Path(relpath).parts
    return (any(part in _CLUTTER_DIRS for part in parts)
            or parts[-1] in _CLUTTER_FILES or parts[-1].endswith(_CLUTTER_SUFFIXES))


def _decode_text(data):
    """The file's text when it is a UTF-8 text file, else None (binary: copied as is)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclasses.dataclass
class _SourceFile:
    relpath: Path
    source: Path                # the instructor's file
    data: bytes                 # the instructor's bytes
    student_data: bytes         # what goes to the student copy
    stripped: Stripped = None   # None for binary files and text without blocks
    kit_data: bytes = None      # what goes to the grading kit (None: student_data)


def _read_sources(src):
    """Read every file of the assignment: returns (released files, hidden relpaths, folders)."""
    released, hidden, folders = [], [], []
    for root, dirnames, filenames in os.walk(src):
        root = Path(root)
        dirnames.sort()
        for name in list(dirnames):
            rel = (root / name).relative_to(src)
            if is_clutter(rel):
                dirnames.remove(name)
            elif is_hidden(rel):
                hidden.append(rel)
                dirnames.remove(name)
            else:
                folders.append(rel)
        for name in sorted(filenames):
            rel = (root / name).relative_to(src)
            if is_clutter(rel):
                continue
            if is_hidden(rel):
                hidden.append(rel)
                continue
            data = (src / rel).read_bytes()
            text = _decode_text(data)
            stripped = strip_solutions(text, str(rel)) if text is not None else None
            if stripped is not None and stripped.blocks:
                released.append(_SourceFile(rel, src / rel, data, stripped.text.encode("utf-8"),
                                            stripped, stripped.kit_text.encode("utf-8")))
            else:
                released.append(_SourceFile(rel, src / rel, data, data))
    return released, hidden, folders


# ----------------------------------------------------------------------------------------------
# The leak check
# ----------------------------------------------------------------------------------------------

def _squash(text):
    return _WHITESPACE.sub("", text)


def find_secrets(files):
    """Every secret line: ``(relpath, line number, line)`` (see the module docstring)."""
    secrets = []
    for f in files:
        if f.stripped is None:
            continue
        public = _squash(f.stripped.public_text)
        for block in f.stripped.blocks:
            for offset, line in enumerate(block.lines, start=1):
                squashed = _squash(line)
                if len(squashed) >= MIN_SECRET_CHARS and squashed not in public:
                    secrets.append((f.relpath, block.begin + offset, line.strip()))
    return secrets


def find_leaks(secrets, folder):
    """Every ``(secret, file)`` pair where a secret occurs in a file under ``folder``."""
    leaks = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        content = _squash(path.read_bytes().decode("utf-8", errors="replace"))
        for secret in secrets:
            if _squash(secret[2]) in content:
                leaks.append((secret, path.relative_to(folder)))
    return leaks


def _leak_message(leaks):
    lines = ["solution code or hidden checks would reach the student copy; nothing was written:"]
    for (source, number, line), found_in in leaks[:20]:
        lines.append(f"  {source}:{number}  {line!r}  appears in {found_in}")
    if len(leaks) > 20:
        lines.append(f"  ... and {len(leaks) - 20} more")
    lines.append("Mark the copy as solution (or hidden) too, move its file to a hidden name (e.g. "
                 "*_hidden, *_solution), or reword one of the two lines.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# build()
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class BuildResult:
    """What :func:`build` made. ``grader_dir``/``references`` are None without a ``grader.py``."""
    out_dir: Path
    student_dir: Path
    grader_dir: Path
    references: Path
    files: int
    blocks: int
    hidden: list
    reading: list = dataclasses.field(default_factory=list)   # documents shipped in reading/


def _with_reading(src, files):
    """Ship the documents the handout links to (see :mod:`minicnn.assignment.reading`): returns
    the files with their links rewritten plus the documents, and ``[(shipped as, source)]``."""
    texts = {f.relpath.as_posix(): f.student_data.decode("utf-8") for f in files
             if f.relpath.suffix in (".md", ".ipynb") and _decode_text(f.student_data) is not None}
    try:
        new_texts, reading = ship_reading(src, texts, {f.relpath.as_posix() for f in files})
    except ReadingError as error:
        raise BuildError(str(error)) from None
    files = [dataclasses.replace(f, student_data=new_texts[f.relpath.as_posix()].encode("utf-8"))
             if f.relpath.as_posix() in new_texts else f for f in files]
    files += [_SourceFile(Path(name), source, data, data) for name, (source, data) in reading.items()]
    return files, [(name, str(source)) for name, (source, _) in reading.items()]


def _check_python(folder, files):
    """The student copy's Python files must still compile: a block must not cut a statement."""
    for f in files:
        if f.relpath.suffix == ".py" and f.stripped is not None:
            try:
                compile(f.student_data, str(f.relpath), "exec", dont_inherit=True)
                if f.kit_data is not None:
                    compile(f.kit_data, str(f.relpath), "exec", dont_inherit=True)
            except SyntaxError as error:
                raise BuildError(f"{f.relpath}:{error.lineno}: the student version is not valid "
                                 f"Python ({error.msg}); does a solution block cut a statement "
                                 f"in two?") from None


def _write_tree(folder, files, folders, kit=False):
    for rel in folders:
        (folder / rel).mkdir(parents=True, exist_ok=True)
    for f in files:
        target = folder / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.kit_data if kit and f.kit_data is not None else f.student_data)
        shutil.copymode(f.source, target)          # keep an executable script executable


def _numeric(refs, where):
    arrays = {}
    for key, value in dict(refs).items():
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise BuildError(f"{where}: {key!r} is not a numeric array (dtype {array.dtype})")
        arrays[str(key)] = array
    return arrays


def _make_grader_kit(src, kit, files, folders):
    """Store the references and the grader's own files in ``kit``.

    Returns ``(references path, expected values for the student copy, hidden check names)``.
    """
    with Submission(src) as solution:
        try:
            grader = load_grader(solution, src / "grader.py")
        except GradeError as error:
            raise BuildError(str(error)) from None
        make = getattr(grader, "make_references",
                       lambda sub: collect_references(grader.QUESTIONS, sub))
        try:
            refs = make(solution)
        except Exception as error:
            where = "".join(traceback.format_exception(error)[-3:]).rstrip()
            raise BuildError(f"make_references() failed on the instructor's solution:\n{where}") \
                from None
        submission_files = set(getattr(grader, "SUBMISSION_FILES", ()))
        public_prefixes = tuple(f"{q.name}.{c.name}." for q in grader.QUESTIONS
                                for c in q.checks if c.kind == "public")
        hidden_weights = {q.name: sum(c.weight for c in q.checks if c.kind == "hidden")
                          for q in grader.QUESTIONS}
        hidden_names = sorted({c.name for q in grader.QUESTIONS for c in q.checks
                               if c.kind == "hidden"})
    arrays = _numeric(refs, "make_references()")
    _write_tree(kit, [f for f in files if str(f.relpath.as_posix()) not in submission_files],
                folders, kit=True)
    references = kit / "references.npz"
    with open(references, "wb") as handle:
        np.savez(handle, **arrays)
    expected = {key: value for key, value in arrays.items() if key.startswith(public_prefixes)}
    expected.update({hidden_weight_key(name): np.float64(weight)
                     for name, weight in hidden_weights.items()})

    try:
        report = grade(src, kit, quiet=True)
    except GradeError as error:
        raise BuildError(f"the new grading kit does not work: {error}") from None
    if report.earned != report.possible:
        raise BuildError("the instructor's solution does not get full marks from the grader:\n"
                         + report.format())
    return references, expected, hidden_names


def find_hidden_names(names, folder):
    """Every ``(name, file)`` where a hidden check's name occurs, as a word, under ``folder``."""
    found = []
    patterns = {name: re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
                for name in names}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        content = path.read_bytes().decode("utf-8", errors="replace")
        found += [(name, path.relative_to(folder)) for name, pattern in patterns.items()
                  if pattern.search(content)]
    return found


def _prepare_out_dir(out_dir):
    """Check ``out_dir``; create missing parents. Returns the parents created (to undo)."""
    if out_dir.exists():
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise BuildError(f"{out_dir} already exists and is not an empty folder")
    created = []
    parent = out_dir.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    for folder in reversed(created):
        folder.mkdir()
    return created


def build(src_dir, out_dir):
    """Build ``out_dir/student`` (the release) and ``out_dir/grader`` (the kit) from ``src_dir``.

    ``out_dir`` must not exist or be empty, and must not lie inside ``src_dir``. Raises
    :class:`MarkerError` for unbalanced markers, :class:`LeakError` when a secret would be
    released, :class:`BuildError` for any other problem; in every such case nothing is written.
    Returns a :class:`BuildResult`.
    """
    src = Path(src_dir).resolve()
    out = Path(out_dir).resolve()
    if not src.is_dir():
        raise BuildError(f"{src_dir} is not a folder")
    if out == src or src in out.parents:
        raise BuildError(f"the output folder {out_dir} must lie outside the assignment {src_dir}")

    files, hidden, folders = _read_sources(src)          # raises MarkerError before any write
    files, reading = _with_reading(src, files)
    secrets = find_secrets(files)
    created = _prepare_out_dir(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-building-", dir=out.parent))
    try:
        student = tmp / "student"
        _write_tree(student, files, folders)
        _check_python(student, files)
        leaks = find_leaks(secrets, student)
        if leaks:
            raise LeakError(_leak_message(leaks))
        references = None
        if (src / "grader.py").is_file():
            references, expected, hidden_names = _make_grader_kit(src, tmp / "grader", files,
                                                                  folders)
            named = find_hidden_names(hidden_names, student)
            if named:
                raise LeakError("hidden checks would be named in the student copy; nothing was "
                                "written:\n" + "\n".join(
                                    f"  hidden check {name!r} appears in {where}"
                                    for name, where in named[:20])
                                + "\nPut every hidden check (and its helpers) between "
                                  "'# BEGIN HIDDEN' and '# END HIDDEN' lines.")
            with open(student / EXPECTED_FILE, "wb") as handle:
                np.savez(handle, **expected)
        if out.exists():
            out.rmdir()                                   # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    return BuildResult(
        out_dir=out, student_dir=out / "student",
        grader_dir=out / "grader" if references else None,
        references=out / "grader" / "references.npz" if references else None,
        files=len(files), blocks=sum(len(f.stripped.solution_blocks) for f in files if f.stripped),
        hidden=[str(p) for p in hidden], reading=reading)
