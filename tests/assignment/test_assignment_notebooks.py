"""The notebooks of all five assignments execute: the solution's from top to bottom, the student
copy's up to the first cell that reaches a TODO (``NotImplementedError``) and no further error
before it. Cells run in order in one namespace, in a copy of the folder (as Jupyter would run
them there); no Jupyter is needed. Assignment 5's notebook trains its network on Fashion-MNIST
(a few seconds) and draws with matplotlib (on the Agg canvas here); without either it is skipped."""
import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from minicnn.assignment import build

ROOT = Path(__file__).resolve().parents[2] / "assignments"


def code_cells(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


@contextlib.contextmanager
def inside(folder):
    """Run as the notebook's kernel would: in ``folder``, importing its files."""
    old_cwd, old_path, old_modules = os.getcwd(), list(sys.path), set(sys.modules)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
        for name in set(sys.modules) - old_modules:
            module = sys.modules[name]
            if str(folder) in str(getattr(module, "__file__", "") or ""):
                del sys.modules[name]


def needs_what_the_notebook_uses(number):
    """Assignment 5's notebook trains on the local Fashion-MNIST copy and draws with matplotlib."""
    if number != 5:
        return
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from minicnn.data import FashionMNIST
    from minicnn.data.datasets import DatasetNotFoundError
    try:
        FashionMNIST(train=False, download=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed here: {error}")


def run_cells(folder, notebook):
    """Run the code cells; returns ``(cells run, the exception that stopped them or None, what
    the last cell run printed)``."""
    namespace = {"__name__": "__main__"}
    with inside(folder):
        for index, source in enumerate(code_cells(notebook)):
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    exec(compile(source, f"{notebook.name}[cell {index}]", "exec"), namespace)
            except Exception as error:          # noqa: BLE001 - what stopped the notebook
                return index, error, printed.getvalue()
    return len(code_cells(notebook)), None, printed.getvalue()


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5], ids=lambda n: f"assignment{n}")
def test_the_solution_notebook_runs_to_the_end(number, tmp_path):
    needs_what_the_notebook_uses(number)
    folder = tmp_path / f"assignment{number}"
    shutil.copytree(ROOT / folder.name, folder)
    ran, error, printed = run_cells(folder, folder / f"{folder.name}.ipynb")
    assert error is None, f"cell {ran}: {type(error).__name__}: {error}"
    assert "100.0%" in printed, f"the last cell's public checks did not all pass:\n{printed}"


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5], ids=lambda n: f"assignment{n}")
def test_the_student_notebook_stops_at_the_first_todo(number, tmp_path):
    needs_what_the_notebook_uses(number)
    built = build(ROOT / f"assignment{number}", tmp_path / "out")
    notebook = built.student_dir / f"assignment{number}.ipynb"
    ran, error, _ = run_cells(built.student_dir, notebook)
    assert isinstance(error, NotImplementedError), f"cell {ran}: {error!r}"
    assert ran >= 1                           # the setup cell ran before the first TODO
