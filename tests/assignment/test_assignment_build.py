"""Tests of minicnn.assignment.build: solution markers, hidden files, the leak check, atomic output."""
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.assignment import BuildError, LeakError, MarkerError, build, strip_solutions
from minicnn.assignment.build import find_secrets, is_clutter, is_hidden


def write(folder, files):
    """Create ``files`` ({relative path: str or bytes}) under ``folder``; return ``folder``."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


SOURCE = """\
import numpy as np


def relu_forward(x):
    out = None
    # BEGIN SOLUTION (hint: np.maximum compares elementwise)
    out = np.maximum(0, x)
    # END SOLUTION
    return out, x


class Layer:
\tdef forward(self, x):
\t\t# BEGIN SOLUTION
\t\tresult = self.weight @ x + self.bias
\t\treturn result
\t\t# END SOLUTION
"""


# ----------------------------------------------------------------------------------------------
# strip_solutions
# ----------------------------------------------------------------------------------------------

def test_blocks_become_todo_and_raise_at_the_block_indentation():
    stripped = strip_solutions(SOURCE, "layers.py")
    assert stripped.text == """\
import numpy as np


def relu_forward(x):
    out = None
    # TODO: your code here (hint: np.maximum compares elementwise)
    raise NotImplementedError
    return out, x


class Layer:
\tdef forward(self, x):
\t\t# TODO: your code here
\t\traise NotImplementedError
"""
    assert [(b.begin, b.end, b.hint) for b in stripped.blocks] == [
        (6, 8, "np.maximum compares elementwise"), (14, 17, "")]
    assert stripped.blocks[1].lines == ["\t\tresult = self.weight @ x + self.bias", "\t\treturn result"]
    compile(stripped.text, "layers.py", "exec")


@pytest.mark.parametrize("begin, todo", [
    ("# BEGIN SOLUTION", "# TODO: your code here"),
    ("#BEGIN SOLUTION   ", "# TODO: your code here"),
    ("# BEGIN SOLUTION (hint: use np.maximum)", "# TODO: your code here (hint: use np.maximum)"),
    ("# BEGIN SOLUTION (use np.maximum)", "# TODO: your code here (hint: use np.maximum)"),
    ("# BEGIN SOLUTION (Hint:  f(x) = max(0, x) )", "# TODO: your code here (hint: f(x) = max(0, x))"),
])
def test_hint_forms(begin, todo):
    text = f"  {begin}\n  x = 1\n  # END SOLUTION\n"
    assert strip_solutions(text).text == f"  {todo}\n  raise NotImplementedError\n"


def test_line_endings_are_preserved():
    text = "a = 1\r\n    # BEGIN SOLUTION\r\n    b = 2\r\n    # END SOLUTION\r\nc = 3\n\nd = 4"
    assert strip_solutions(text).text == (
        "a = 1\r\n    # TODO: your code here\r\n    raise NotImplementedError\r\nc = 3\n\nd = 4")


def test_empty_block_and_marker_at_end_of_file_without_newline():
    assert strip_solutions("# BEGIN SOLUTION\n# END SOLUTION").text == \
        "# TODO: your code here\nraise NotImplementedError\n"


@pytest.mark.parametrize("text, line, words", [
    ("x = 1\n# END SOLUTION\n", 2, "without a matching"),
    ("# BEGIN SOLUTION\nx = 1\n", 1, "never closed"),
    ("x\n# BEGIN SOLUTION\n  # BEGIN SOLUTION\n  # END SOLUTION\n# END SOLUTION\n", 3, "nest"),
    ("# BEGIN SOLUTION\n# END SOLUTION\n# END SOLUTION\n", 3, "without a matching"),
    ("# BEGIN SOLUTION and more\n# END SOLUTION\n", 1, "unexpected text"),
    ("# BEGIN SOLUTION\n# END SOLUTION here\n", 2, "unexpected text"),
    ("# BEGIN SOLUTIONS\n# END SOLUTION\n", 2, "without a matching"),   # a typo is no marker
])
def test_unbalanced_or_malformed_markers_name_file_and_line(text, line, words):
    with pytest.raises(ValueError, match=rf"^pkg/layers\.py:{line}: .*{words}") as info:
        strip_solutions(text, "pkg/layers.py")
    assert isinstance(info.value, MarkerError)


def test_markers_must_be_whole_comment_lines():
    text = 'doc = "# BEGIN SOLUTION"\nx = 1  # END SOLUTION\n'
    stripped = strip_solutions(text)
    assert stripped.text == text and stripped.blocks == []


PLAIN_LINE = st.text(st.characters(blacklist_characters="\n\r#", blacklist_categories=("Cs",)),
                     max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(PLAIN_LINE, st.sampled_from(["\n", "\r\n"])), max_size=12))
def test_text_without_markers_is_unchanged(lines):
    text = "".join(content + eol for content, eol in lines)
    assert strip_solutions(text).text == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("public"), PLAIN_LINE),
    st.tuples(st.just("block"), st.tuples(st.sampled_from(["", "  ", "\t"]),
                                          st.lists(PLAIN_LINE, max_size=3)))), max_size=8))
def test_stripping_keeps_every_public_line_and_stubs_every_block(parts):
    source, expected = [], []
    for kind, value in parts:
        if kind == "public":
            source.append(value + "\n")
            expected.append(value + "\n")
        else:
            indent, body = value
            source += [f"{indent}# BEGIN SOLUTION\n"] + [line + "\n" for line in body] + \
                      [f"{indent}# END SOLUTION\n"]
            expected += [f"{indent}# TODO: your code here\n", f"{indent}raise NotImplementedError\n"]
    stripped = strip_solutions("".join(source))
    assert stripped.text == "".join(expected)
    assert stripped.public_text == "".join(v + "\n" for k, v in parts if k == "public")


# ----------------------------------------------------------------------------------------------
# Which files are released
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, hidden", [
    ("layers.py", False), ("layers_solution.py", True), ("grader_hidden/checks.py", True),
    ("notes_hidden.md", True), ("solution/layers.py", True), ("solutions.txt", True),
    ("hidden", True), ("data/x_solutions.tar.gz", True), ("hiddenness.py", False),
    ("my_solutionary.py", False), ("tests/test_layers.py", False),
])
def test_hidden_convention(path, hidden):
    assert is_hidden(path) == hidden


@pytest.mark.parametrize("path, clutter", [
    ("__pycache__/layers.cpython-311.pyc", True), ("x/.ipynb_checkpoints/a.py", True),
    ("old.pyc", True), (".DS_Store", True), (".pytest_cache/v", True), ("layers.py", False),
])
def test_clutter(path, clutter):
    assert is_clutter(path) == clutter


# ----------------------------------------------------------------------------------------------
# build() on small crafted assignments (no grader)
# ----------------------------------------------------------------------------------------------

def test_release_is_byte_identical_outside_blocks(tmp_path):
    binary = bytes(range(256)) * 4
    src = write(tmp_path / "src", {
        "layers.py": SOURCE,
        "windows.py": "a = 1\r\n# BEGIN SOLUTION\r\nsecret_value = 42 * 2\r\n# END SOLUTION\r\n",
        "README.md": "# Title\n\nNo markers here.\r\nTrailing line without newline",
        "data/image.bin": binary,
        "empty.txt": "",
        "notes_hidden.md": "secret notes",
        "layers_solution.py": SOURCE,
        "grader_hidden/extra.py": "x = 1\n",
        "__pycache__/layers.cpython-311.pyc": b"\0compiled",
    })
    os.chmod(src / "README.md", 0o755)
    result = build(src, tmp_path / "out")
    student = tmp_path / "out" / "student"
    released = sorted(str(p.relative_to(student)) for p in student.rglob("*") if p.is_file())
    assert released == ["README.md", "data/image.bin", "empty.txt", "layers.py", "windows.py"]
    assert result.blocks == 3 and result.references is None
    assert not (tmp_path / "out" / "grader").exists()
    assert sorted(result.hidden) == ["grader_hidden", "layers_solution.py", "notes_hidden.md"]
    for name in ["README.md", "data/image.bin", "empty.txt"]:
        assert (student / name).read_bytes() == (src / name).read_bytes()
    assert (student / "README.md").stat().st_mode & 0o111
    assert (student / "layers.py").read_text() == strip_solutions(SOURCE).text
    assert (student / "windows.py").read_bytes() == \
        b"a = 1\r\n# TODO: your code here\r\nraise NotImplementedError\r\n"


def test_output_folder_may_be_empty_but_not_full(tmp_path):
    src = write(tmp_path / "src", {"a.py": "x = 1\n"})
    (tmp_path / "empty").mkdir()
    build(src, tmp_path / "empty")
    assert (tmp_path / "empty" / "student" / "a.py").exists()
    with pytest.raises(BuildError, match="not an empty folder"):
        build(src, tmp_path / "empty")
    with pytest.raises(BuildError, match="outside"):
        build(src, src / "out")
    build(src, tmp_path / "new" / "nested" / "out")          # missing parents are created
    assert (tmp_path / "new" / "nested" / "out" / "student" / "a.py").exists()


def assert_nothing_written(tmp_path, out):
    """``out`` is absent or empty, and no temporary build folder was left next to it."""
    assert not out.exists() or not any(out.iterdir())
    assert [p.name for p in out.parent.iterdir() if "building" in p.name] == []


@pytest.mark.parametrize("files, leaked_from, found_in", [
    # a public test that re-implements the solution
    ({"tests/test_layers.py": "def test():\n    out = np.maximum(0, x)\n"}, "layers.py:7",
     "tests/test_layers.py"),
    # a README example, written with other spacing
    ({"README.md": "Example: `out=np.maximum( 0,x )`\n"}, "layers.py:7", "README.md"),
    # a solution file that does not follow the hidden-name convention
    ({"layers_full.py": SOURCE.replace("# BEGIN SOLUTION", "#").replace("# END SOLUTION", "#")},
     "layers.py:15", "layers_full.py"),
])
def test_leak_check_refuses_and_writes_nothing(tmp_path, files, leaked_from, found_in):
    src = write(tmp_path / "src", {"layers.py": SOURCE, **files})
    out = tmp_path / "out"
    with pytest.raises(LeakError) as info:
        build(src, out)
    assert leaked_from in str(info.value) and found_in in str(info.value)
    assert_nothing_written(tmp_path, out)
    out.mkdir()                                           # an empty output folder stays empty
    with pytest.raises(LeakError):
        build(src, out)
    assert_nothing_written(tmp_path, out)


def test_leak_through_a_hint(tmp_path):
    src = write(tmp_path / "src", {"a.py": "# BEGIN SOLUTION (hint: total = np.sum(x))\n"
                                           "total = np.sum(x)\n# END SOLUTION\n"})
    with pytest.raises(LeakError, match=re.escape("a.py:2  'total = np.sum(x)'  appears in a.py")):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_short_lines_and_lines_the_scaffold_shows_are_not_secrets(tmp_path):
    text = ("def f(x):\n    # BEGIN SOLUTION\n    y = x\n    return f_result(y)\n    pass\n"
            "    )]\n    # END SOLUTION\n    return f_result(y)\n")
    src = write(tmp_path / "src", {"a.py": text, "b.py": "y = x\npass\n"})
    files = [type("F", (), {"relpath": "a.py", "stripped": strip_solutions(text)})()]
    assert find_secrets(files) == []
    build(src, tmp_path / "out")                          # no false alarm


def test_unbalanced_markers_stop_the_build_before_writing(tmp_path):
    src = write(tmp_path / "src", {"a.py": "x = 1\n", "sub/b.py": "# BEGIN SOLUTION\nx = 2\n"})
    with pytest.raises(MarkerError, match=r"^sub/b\.py:1: "):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_student_python_must_compile(tmp_path):
    src = write(tmp_path / "src", {"a.py": "value = (1 +\n# BEGIN SOLUTION\n2)\n# END SOLUTION\n"})
    with pytest.raises(BuildError, match=r"a\.py:\d+: the student version is not valid Python"):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


GRADER = """
import numpy as np
from minicnn.assignment import Question, collect_references

SUBMISSION_FILES = ["mod.py"]
q1 = Question("q1", "Doubling", points=2)

@q1.public
def doubles_one(sub):
    y = sub.mod.double(1.0)
    assert y == 2.0, "double(1) should be 2"
    return {"y": y}

# BEGIN HIDDEN
@q1.hidden
def doubles_many(sub):
    return {"y": sub.mod.double(np.arange(5.0))}
# END HIDDEN

QUESTIONS = [q1]

def make_references(sub):
    return collect_references(QUESTIONS, sub)
"""


def test_build_refuses_a_solution_that_fails_its_own_grader(tmp_path):
    # The public check's assertion fails on the solution: making the references stops.
    src = write(tmp_path / "src", {"grader.py": GRADER,
                                   "mod.py": "def double(x):\n    # BEGIN SOLUTION\n"
                                             "    return x + x + 1\n    # END SOLUTION\n"})
    with pytest.raises(BuildError, match="(?s)make_references.*double\\(1\\) should be 2"):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_build_refuses_a_solution_that_differs_from_its_own_references(tmp_path):
    # A solution whose outputs change from run to run cannot match the references it made.
    src = write(tmp_path / "src", {"grader.py": GRADER,
                                   "mod.py": "import os\n"
                                             "def double(x):\n    # BEGIN SOLUTION\n"
                                             "    return 2 * x\n"
                                             "    # END SOLUTION\n"
                                             "def noise():\n    return os.getpid()\n"})
    (src / "grader.py").write_text(GRADER.replace('return {"y": sub.mod.double(np.arange(5.0))}',
                                                  'return {"y": sub.mod.noise()}'))
    with pytest.raises(BuildError, match="does not get full marks"):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_build_refuses_when_make_references_fails(tmp_path):
    src = write(tmp_path / "src", {"grader.py": GRADER,
                                   "mod.py": "def double(x):\n    # BEGIN SOLUTION\n"
                                             "    return x.missing_attribute\n    # END SOLUTION\n"})
    with pytest.raises(BuildError, match="(?s)make_references.*missing_attribute"):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_references_are_plain_arrays(tmp_path):
    src = write(tmp_path / "src", {"grader.py": GRADER,
                                   "mod.py": "def double(x):\n    # BEGIN SOLUTION\n"
                                             "    return 2 * x\n    # END SOLUTION\n"})
    result = build(src, tmp_path / "out")
    with np.load(result.references, allow_pickle=False) as data:
        assert sorted(data.files) == ["q1.doubles_many.y", "q1.doubles_one.y"]
        np.testing.assert_array_equal(data["q1.doubles_many.y"], 2 * np.arange(5.0))
        assert data["q1.doubles_one.y"] == 2.0
    kit = sorted(p.name for p in result.grader_dir.iterdir())
    assert kit == ["grader.py", "references.npz"]             # mod.py is the student's to give


def test_hidden_checks_reach_the_kit_only(tmp_path):
    src = write(tmp_path / "src", {"grader.py": GRADER,
                                   "mod.py": "def double(x):\n    # BEGIN SOLUTION\n"
                                             "    return 2 * x\n    # END SOLUTION\n"})
    result = build(src, tmp_path / "out")
    student = (result.student_dir / "grader.py").read_text()
    kit = (result.grader_dir / "grader.py").read_text()
    assert "doubles_many" not in student and "np.arange(5.0)" not in student
    assert "HIDDEN" not in student and "@q1.public" in student
    assert "def doubles_many(sub):" in kit
    # The student copy ships the public check's expected value and the hidden weight, no more.
    with np.load(result.student_dir / "expected.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["hidden_weight:q1", "q1.doubles_one.y"]
        assert data["hidden_weight:q1"] == 1.0 and data["q1.doubles_one.y"] == 2.0
    for path in result.student_dir.rglob("*"):
        assert b"doubles_many" not in path.read_bytes(), path


@pytest.mark.parametrize("where, leaked, words", [
    # a hidden check outside the markers: its name would reach the student copy
    ("grader.py", GRADER.replace("# BEGIN HIDDEN\n", "").replace("# END HIDDEN\n", ""),
     "hidden check 'doubles_many' appears in grader.py"),
    # the hidden check's input copied into a README
    ("README.md", "Try it: return {\"y\": sub.mod.double(np.arange(5.0))}\n",
     "appears in README.md"),
    # its name mentioned in the notes handed out
    ("NOTES.md", "The check doubles_many runs in the final grade.\n",
     "hidden check 'doubles_many' appears in NOTES.md"),
])
def test_the_leak_check_covers_hidden_checks(tmp_path, where, leaked, words):
    files = {"grader.py": GRADER, "mod.py": "def double(x):\n    # BEGIN SOLUTION\n"
                                            "    return 2 * x\n    # END SOLUTION\n"}
    files[where] = leaked
    src = write(tmp_path / "src", files)
    with pytest.raises(LeakError, match=re.escape(words)):
        build(src, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("text, words", [
    ("# BEGIN HIDDEN\nx = 1\n# END SOLUTION\n", "'# END SOLUTION' without a matching"),
    ("# BEGIN HIDDEN (hint: no)\nx = 1\n# END HIDDEN\n", "unexpected text after '# BEGIN HIDDEN'"),
    ("# BEGIN HIDDEN\nx = 1\n", "'# BEGIN HIDDEN' is never closed"),
])
def test_hidden_markers_must_pair_up(text, words):
    with pytest.raises(MarkerError, match=re.escape(words)):
        strip_solutions(text, "grader.py")
