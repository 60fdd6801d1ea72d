"""The notebooks of all four assignments execute: the solution's from top to bottom, the student
copy's up to the first cell that reaches a TODO (``NotImplementedError``) and no further error
before it. Cells run in order in one namespace, in a copy of the folder (as Jupyter would run
them there); no Jupyter is needed."""
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


def run_cells(folder, notebook):
    """Run the code cells; returns ``(cells run, the exception that stopped them or None)``."""
    namespace = {"__name__": "__main__"}
    with inside(folder), contextlib.redirect_stdout(io.StringIO()):
        for index, source in enumerate(code_cells(notebook)):
            try:
                exec(compile(source, f"{notebook.name}[cell {index}]", "exec"), namespace)
            except Exception as error:          # noqa: BLE001 - what stopped the notebook
                return index, error
    return len(code_cells(notebook)), None


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_solution_notebook_runs_to_the_end(number, tmp_path):
    folder = tmp_path / f"assignment{number}"
    shutil.copytree(ROOT / folder.name, folder)
    ran, error = run_cells(folder, folder / f"{folder.name}.ipynb")
    assert error is None, f"cell {ran}: {type(error).__name__}: {error}"


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_the_student_notebook_stops_at_the_first_todo(number, tmp_path):
    built = build(ROOT / f"assignment{number}", tmp_path / "out")
    notebook = built.student_dir / f"assignment{number}.ipynb"
    ran, error = run_cells(built.student_dir, notebook)
    assert isinstance(error, NotImplementedError), f"cell {ran}: {error!r}"
    assert ran >= 1                           # the setup cell ran before the first TODO
