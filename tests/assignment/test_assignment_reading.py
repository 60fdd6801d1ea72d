"""The documents a handout links to ship inside it: links leaving the assignment folder are
rewritten to ``reading/``, the copied documents' own links become plain text, and a link students
could not follow (to a hidden, missing or outside non-file target) stops the build."""
import json
from pathlib import Path

import pytest

from minicnn.assignment import BuildError, LeakError, build
from minicnn.assignment.reading import ship_reading

ROOT = Path(__file__).resolve().parents[2]

GRADERLESS = "def square(x):\n    # BEGIN SOLUTION\n    result = x * x\n    # END SOLUTION\n    return result\n"


def course(tmp_path, readme, notebook_markdown=None):
    """``tmp/course/assignments/a1`` with ``square.py`` and ``readme``, beside ``tmp/course/docs``."""
    root = tmp_path / "course"
    src = root / "assignments" / "a1"
    src.mkdir(parents=True)
    (src / "square.py").write_text(GRADERLESS)
    (src / "notes_hidden.md").write_text("model answers\n")
    (src / "README.md").write_text(readme)
    if notebook_markdown is not None:
        cells = [{"cell_type": "markdown", "metadata": {}, "source": [notebook_markdown]},
                 {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": ["layers[0](x)\n"]}]
        (src / "a1.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                  "nbformat_minor": 5}, indent=1))
    docs = root / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\nSee [the engine](../pkg/engine.py), "
                                   "[`pkg/engine.py`](../pkg/engine.py) and [more](other.md#x).\n"
                                   "![a figure](images/fig.png) and [the web](https://example.org).\n")
    (docs / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\1\2")
    return src


def test_linked_documents_ship_in_reading_with_links_rewritten(tmp_path):
    src = course(tmp_path, "Read [the notes](../../docs/notes.md#part-2) and "
                           "![fig](../../docs/fig.png \"Figure 1\").\n"
                           "Inline `[x](nowhere.md)` and\n```\nlayers[0](missing.md)\n```\n"
                           "Again [notes](../../docs/notes.md), [square](square.py), [web](https://a.b/c).\n",
                 notebook_markdown="See [the notes](../../docs/notes.md).")
    result = build(src, tmp_path / "out")
    student = result.student_dir
    readme = (student / "README.md").read_text()
    assert "[the notes](reading/notes.md#part-2)" in readme
    assert '![fig](reading/fig.png "Figure 1")' in readme
    assert "[notes](reading/notes.md)" in readme and "[square](square.py)" in readme
    assert "`[x](nowhere.md)`" in readme and "layers[0](missing.md)" in readme   # code: untouched
    assert "[web](https://a.b/c)" in readme
    notes = (student / "reading" / "notes.md").read_text()
    assert notes == ("# Notes\nSee the engine (`pkg/engine.py`), `pkg/engine.py` and more (`docs/other.md`).\n"
                     "(a figure: `docs/images/fig.png`) and [the web](https://example.org).\n")
    assert (student / "reading" / "fig.png").read_bytes() == (src.parents[1] / "docs" / "fig.png").read_bytes()
    notebook = json.loads((student / "a1.ipynb").read_text())                 # still a notebook
    assert notebook["cells"][0]["source"] == ["See [the notes](reading/notes.md)."]
    assert notebook["cells"][1]["source"] == ["layers[0](x)\n"]
    assert sorted(name for name, _ in result.reading) == ["reading/fig.png", "reading/notes.md"]
    assert (src / "README.md").read_text().count("../../docs/notes.md") == 2    # the source is unchanged


@pytest.mark.parametrize("readme, message", [
    ("See [the answers](notes_hidden.md).\n",
     "README.md:1: the link to notes_hidden.md leads to a file students do not get"),
    ("One\nSee [this](missing.md).\n", "README.md:2: the link to missing.md leads to a file students do not get"),
    ("See [that](../../docs/nothing.md).\n", "README.md:1: the link to ../../docs/nothing.md leads outside"),
    ("See [docs](../../docs).\n", "README.md:1: the link to ../../docs leads outside"),
])
def test_a_link_students_could_not_follow_stops_the_build(tmp_path, readme, message):
    src = course(tmp_path, readme)
    with pytest.raises(BuildError) as caught:
        build(src, tmp_path / "out")
    assert str(caught.value).startswith(message), str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_notebook_link_is_named_by_its_cell(tmp_path):
    src = course(tmp_path, "no links\n", notebook_markdown="See [it](../../docs/gone.md).")
    with pytest.raises(BuildError, match=r"^a1\.ipynb, cell 1: the link to \.\./\.\./docs/gone\.md"):
        build(src, tmp_path / "out")


def test_a_shipped_document_is_searched_for_leaks(tmp_path):
    src = course(tmp_path, "Read [the notes](../../docs/notes.md).\n")
    (src.parents[1] / "docs" / "notes.md").write_text("Example: `result = x * x`\n")
    with pytest.raises(LeakError, match=r"appears in reading/notes\.md"):
        build(src, tmp_path / "out")


def test_assignment2_ships_the_autograd_notes_it_asks_students_to_read():
    src = ROOT / "assignments" / "assignment2"
    texts = {"README.md": (src / "README.md").read_text()}
    new_texts, reading = ship_reading(src, texts, {"README.md"})
    assert "(reading/autograd.md)" in new_texts["README.md"]
    source, data = reading["reading/autograd.md"]
    assert source == ROOT / "docs" / "autograd.md"
    assert b"](" not in data.replace(b"](http", b"")          # no relative link left
