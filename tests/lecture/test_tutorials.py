"""The tutorials in docs/tutorials/ run top to bottom in quick mode (MINICNN_QUICK=1)."""
import runpy
import tempfile
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[2] / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))


def test_tutorials_exist():
    assert [p.name for p in TUTORIALS] == ["01_fashion_mnist_cnn.py", "02_write_your_own_layer.py",
                                           "03_fine_tuning.py"]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_quick(path, monkeypatch, tmp_path):
    monkeypatch.setenv("MINICNN_QUICK", "1")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the tutorials write into tempfile.mkdtemp()
    monkeypatch.chdir(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "# %% [markdown]" in text and 'os.environ.get("MINICNN_QUICK") == "1"' in text
    runpy.run_path(str(path), run_name="__main__")
