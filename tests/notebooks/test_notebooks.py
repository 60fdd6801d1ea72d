"""The committed notebooks: tutorials up to date with their percent-script sources, no outputs
committed, and every notebook executing top to bottom on the CPU -- the assignments' instructor
versions to the end, their student versions stopping at the first ``NotImplementedError``."""
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need the 'test' extra")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need the 'test' extra")
jupytext = pytest.importorskip("jupytext", reason="notebook tests need the 'test' extra")
pytest.importorskip("ipykernel", reason="notebook tests need the 'test' extra")

from minicnn.assignment import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
ASSIGNMENTS = [ROOT / "assignments" / f"assignment{n}" for n in (1, 2, 3, 4)]
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


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda p: p.name)
def test_instructor_notebook_runs_to_the_end(assignment, tmp_path):
    folder = tmp_path / assignment.name
    shutil.copytree(assignment, folder, ignore=shutil.ignore_patterns("__pycache__", "*.npz"))
    notebook = execute(folder / f"{assignment.name}.ipynb", folder)
    last = notebook.cells[-1]
    text = "".join(output.get("text", "") for output in last.outputs)
    assert "100.0%" in text, f"the public checks of the solution did not all pass:\n{text}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda p: p.name)
def test_student_notebook_stops_at_the_first_todo(assignment, tmp_path):
    student = build(assignment, tmp_path / "out").student_dir
    notebook_path = student / f"{assignment.name}.ipynb"
    with pytest.raises(nbclient.exceptions.CellExecutionError) as caught:
        execute(notebook_path, student)
    error = caught.value
    assert error.ename == "NotImplementedError", f"expected NotImplementedError, got {error.ename}"
    assert "your code here" in str(error), "the traceback should show the TODO to fill in"
    # It stops in a step that calls the student's code, not in the setup or the imports.
    notebook = nbformat.read(notebook_path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(source.strip() in str(error) for source in code[:2] if source.strip())
