"""The committed notebooks: tutorials up to date with their percent-script sources, no outputs
committed, a first cell that installs minicnn, and every tutorial executing top to bottom on the
CPU in a real kernel. (The assignments' notebooks are executed by
tests/assignment/test_assignment_notebooks.py: the instructor's to the end, the student's up to
the first ``NotImplementedError``.)"""
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need the 'test' extra")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need the 'test' extra")
jupytext = pytest.importorskip("jupytext", reason="notebook tests need the 'test' extra")
pytest.importorskip("ipykernel", reason="notebook tests need the 'test' extra")

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
ASSIGNMENTS = [ROOT / "assignments" / f"assignment{n}" for n in (1, 2, 3, 4, 5)]
NOTEBOOKS = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb")) + \
    [a / f"{a.name}.ipynb" for a in ASSIGNMENTS]


def execute(path, cwd, timeout=300):
    """Run the notebook at ``path`` in a fresh kernel, in the folder ``cwd``; returns it."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_there_are_notebooks():
    assert len(TUTORIALS) >= 3
    assert all(path.is_file() for path in NOTEBOOKS), [p for p in NOTEBOOKS if not p.is_file()]


@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_notebook_is_generated_from_its_script(source):
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert cells(committed) == cells(jupytext.read(source)), (
        f"{source.with_suffix('.ipynb').name} is out of date with {source.name}: regenerate it "
        f"with  jupytext --to ipynb {source.relative_to(ROOT)}  (the .py file is the source)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    with_outputs = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                    and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not with_outputs, f"{path.name}: cells {with_outputs} have outputs; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_installs_minicnn_and_detects_the_gpu(path):
    first = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    assert "pip" in first.source and "install" in first.source
    assert "cuda.is_available()" in first.source


@pytest.mark.slow
@pytest.mark.parametrize("source", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_notebook_runs(source, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_QUICK", "1")          # the kernel inherits the environment
    execute(source.with_suffix(".ipynb"), tmp_path)
