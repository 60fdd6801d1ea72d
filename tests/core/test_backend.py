"""The backend's device table and the CPU stand-in device of minicnn.testing: strict like CuPy."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, testing
from minicnn.testing import standin


def test_get_array_module():
    assert mc.get_array_module(np.zeros(2)) is np
    assert mc.get_array_module(mc.Tensor([1.0])) is np
    assert backend.get_array_module(standin.zeros(2)) is standin
    assert mc.cuda.is_available() in (True, False)


def test_standin_arithmetic_stays_on_device():
    a = standin.arange(6.0).reshape(2, 3)
    b = standin.ones((2, 3), dtype=np.float32)
    c = a * b + 1.0
    assert isinstance(c, testing.StandinArray)
    assert isinstance(standin.maximum(c, 0.0), testing.StandinArray)
    assert isinstance(c.sum(), testing.StandinArray) and c.sum().ndim == 0  # 0-d, as CuPy
    assert isinstance(standin.lib.stride_tricks.as_strided(a, (2, 2), a.strides), testing.StandinArray)
    out = standin.zeros(3)
    standin.add.at(out, standin.asarray(np.array([0, 0, 2])), 1.0)
    np.testing.assert_array_equal(backend.to_numpy(out), [2.0, 0.0, 1.0])


def test_standin_refuses_mixing_with_numpy():
    a = standin.ones(3)
    with pytest.raises(TypeError):
        a + np.ones(3)
    with pytest.raises(TypeError):
        np.ones(3) * a
    with pytest.raises(TypeError):
        standin.concatenate([a, np.ones(3)])
    with pytest.raises(TypeError):
        a[np.array([0, 1])] = np.ones(2)


def test_standin_refuses_implicit_conversion():
    a = standin.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.zeros(3)[:] = a
    np.testing.assert_array_equal(backend.to_numpy(a), np.ones(3))  # explicit is fine
    assert float(a.sum()) == 3.0


def test_device_moves():
    x = np.arange(4.0)
    s = backend.to_device(x, "standin")
    assert backend.device_of(s) == "standin"
    assert backend.to_device(s, "cpu").__class__ is np.ndarray
    with pytest.raises(ValueError):
        backend.normalize_device("tpu")
    if not mc.cuda.is_available():
        with pytest.raises(RuntimeError, match="CuPy"):
            backend.module_for_device("cuda")


def test_host_code_in_an_op_is_caught_on_the_standin():
    """The kind of bug the stand-in exists for: an op that allocates with numpy."""
    class Bad(mc.Function):
        def forward(self, x):
            return x + np.zeros(x.shape)   # wrong: should be xp.zeros

        def backward(self, g):
            return g

    Bad()(mc.Tensor(np.ones(2)))            # works on the CPU ...
    with pytest.raises(TypeError):
        Bad()(mc.Tensor(np.ones(2)).to("standin"))   # ... and fails like CuPy would


def test_watching_the_standin_classifies_what_a_gpu_would_do():
    seen = []
    xp = testing.standin
    with testing.watch_standin(lambda kind, name: seen.append((kind, name))):
        a = xp.asarray(np.ones((4, 3)))          # host -> device
        a.reshape(3, 4)                          # a view
        b = a * 2                                # a kernel
        s = b.sum()                              # a reduction: a kernel (a 0-d device array)
        float(s)                                 # device -> host: a sync
        a[0] = 1                                 # an in-place write
        xp.empty_like(a)                         # memory only
        xp.add(a, a, out=b)                      # into an existing array: a kernel
        a.T.copy()                               # a view, then a kernel
    assert [kind for kind, _ in seen] == ["upload", "view", "launch", "launch", "download", "launch",
                                          "alloc", "launch", "launch"]
    assert seen[2] == ("launch", "numpy.multiply") and seen[4] == ("download", "__float__")
    before = len(seen)
    a + a  # after the block: not watched
    assert len(seen) == before


# ------------------------------------------------------------------------------------------------
# The device table, and the test devices kept out of the package
# ------------------------------------------------------------------------------------------------
PACKAGE = Path(mc.__file__).parent


def _run(*args, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})


def test_a_program_sees_cpu_and_cuda_only(tmp_path):
    """Without ``minicnn.testing`` the table holds cpu and cuda; asking for the stand-in is an
    error that says where test devices come from."""
    code = ("import sys, minicnn as mc\n"
            "from minicnn import backend\n"
            "assert 'minicnn.testing' not in sys.modules\n"
            "assert tuple(backend._DEVICES) == ('cpu', 'cuda'), backend._DEVICES\n"
            "assert mc.Tensor([1.0]).device == 'cpu'\n"
            "mc.Tensor([1.0]).to('standin')\n")
    out = _run("-c", code, cwd=tmp_path)
    assert out.returncode == 1 and "ValueError: unknown device 'standin'" in out.stderr, out.stderr
    assert "minicnn.testing" in out.stderr


def test_nothing_in_the_package_imports_the_testing_package():
    """Layering: ``minicnn.testing`` may import minicnn, never the reverse (imports inside
    functions included)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [(node.module or "")] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "testing" or n.startswith("minicnn.testing") or n.startswith("testing.") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_a_registered_device_is_a_row_of_the_table():
    row = backend._DEVICES["standin"]
    assert row.array_type is testing.StandinArray and row.module is testing.standin
    assert backend.normalize_device("STANDIN") == "standin" and backend.normalize_device("cuda:0") == "cuda"
    with pytest.raises(ValueError, match=r"unknown device 'cudax'; expected one of \('cpu', 'cuda', 'standin'\)"):
        backend.normalize_device("cudax")


def test_python_m_minicnn_testing_runs_a_command_with_the_test_devices(tmp_path):
    (tmp_path / "my_op.py").write_text("import minicnn as mc\n"
                                       "class Cube(mc.Function):\n"
                                       "    def forward(self, x):\n"
                                       "        self.x = x\n"
                                       "        return x ** 3\n"
                                       "    def backward(self, g):\n"
                                       "        return 3 * self.x ** 2 * g\n")
    with_testing = _run("-m", "minicnn.testing", "gradcheck", "my_op.py:Cube", "--device", "standin", cwd=tmp_path)
    assert with_testing.returncode == 0 and "PASS" in with_testing.stdout, with_testing.stdout + with_testing.stderr
    plain = _run("-m", "minicnn", "gradcheck", "my_op.py:Cube", "--device", "standin", cwd=tmp_path)
    assert plain.returncode == 2 and "invalid choice: 'standin' (choose from cpu, cuda)" in plain.stderr
