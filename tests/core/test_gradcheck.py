"""mc.gradcheck: passes correct gradients, reports wrong ones precisely."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.cli import main as cli_main


class WrongSquare(mc.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return g * self.x          # should be 2 x g


def test_correct_gradients_pass(to_device):
    x = to_device(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    assert mc.gradcheck(lambda t: (t * t).sum(axis=0), [x]) is True


def test_wrong_gradient_is_reported_with_input_element_and_values():
    x = mc.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    with pytest.raises(mc.GradcheckError) as info:
        mc.gradcheck(lambda t: WrongSquare()(t), [x])
    msg = str(info.value)
    assert "input 0" in msg and "element" in msg and "analytic" in msg and "numeric" in msg
    assert mc.gradcheck(lambda t: WrongSquare()(t), [x], raise_exception=False) is False


def test_float32_inputs_are_checked_in_float64():
    x = mc.Tensor(np.random.default_rng(1).standard_normal(5).astype(np.float32), requires_grad=True)
    assert mc.gradcheck(lambda t: (t ** 3).sum(), [x])
    assert x.dtype == np.float32 and x.grad is None


def test_directional_mode(to_device):
    x = to_device(np.random.default_rng(2).standard_normal((4, 3)), requires_grad=True)
    w = to_device(np.random.default_rng(3).standard_normal((3, 2)), requires_grad=True)
    assert mc.gradcheck(lambda a, b: (a @ b).exp(), [x, w], directional=True)
    assert not mc.gradcheck(lambda a: WrongSquare()(a), [x], directional=True, raise_exception=False)


def test_cli_gradcheck_runs_all_registered_ops(capsys):
    assert cli_main(["gradcheck", "add", "matmul", "getitem"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" not in out


def test_cli_gradcheck_student_file(tmp_path, capsys):
    good = tmp_path / "my_op.py"
    good.write_text(
        "import minicnn as mc\n"
        "class Cube(mc.Function):\n"
        "    def forward(self, x):\n"
        "        self.x = x\n"
        "        return x ** 3\n"
        "    def backward(self, g):\n"
        "        return 3 * self.x ** 2 * g\n"
        "class Bad(Cube):\n"
        "    def backward(self, g):\n"
        "        return self.x ** 2 * g\n")
    assert cli_main(["gradcheck", f"{good}:Cube"]) == 0
    assert cli_main(["gradcheck", f"{good}:Bad", "--device", "standin"]) == 1
    assert "FAIL" in capsys.readouterr().out
