"""Strict gradient shapes: a ``backward`` returns exactly its input's shape, or the walk says so.

The walk used to sum any returned gradient to its input's shape, which hid the classic mistake of
a bias gradient that is not summed over the batch (issue 24). Broadcasting ops now reduce their own
gradients (``ops.unbroadcast``), where a student can read the rule.
"""
import numpy as np
import pytest

import minicnn as mc
from minicnn import cli
from minicnn.ops import unbroadcast


class AddBias(mc.Function):
    """y = x + b for x (N, D) and b (D,); ``summed`` decides whether db is summed over N."""

    summed = True

    def forward(self, x, b):
        return x + b

    def backward(self, g):
        return g, (g.sum(axis=0) if self.summed else g)


class Unsummed(AddBias):
    summed = False


def test_a_correct_bias_gradient_is_accepted():
    x = mc.Tensor(np.ones((4, 3)), requires_grad=True)
    b = mc.Tensor(np.zeros(3), requires_grad=True)
    AddBias()(x, b).sum().backward()
    np.testing.assert_array_equal(b.grad.data if isinstance(b.grad, mc.Tensor) else b.grad,
                                  [4.0, 4.0, 4.0])


def test_an_unsummed_bias_gradient_is_an_error_naming_the_function_input_and_shapes():
    x = mc.Tensor(np.ones((4, 3)), requires_grad=True)
    b = mc.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError) as error:
        Unsummed()(x, b).sum().backward()
    message = str(error.value)
    assert "Unsummed.backward returned shape (4, 3) as the gradient of input 1" in message
    assert "expected its shape (3,)" in message and "broadcast" in message


def test_a_gradient_that_is_not_an_array_is_an_error():
    class ListGrad(mc.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return [1.0, 2.0]

    x = mc.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="ListGrad.backward returned a list as the gradient of "
                                           "input 0, expected its shape"):
        ListGrad()(x).sum().backward()


@pytest.mark.parametrize("g_shape, shape, axes", [
    ((3, 5, 4), (5, 1), (0, 2)), ((2, 3), (3,), (0,)), ((2, 3), (2, 3), ()),
    ((2, 3), (1, 1), (0, 1)), ((4, 1, 6), (4, 1, 6), ()), ((2, 3, 4), (), (0, 1, 2)),
])
def test_unbroadcast_sums_exactly_the_broadcast_axes(g_shape, shape, axes):
    g = np.random.default_rng(0).standard_normal(g_shape)
    out = unbroadcast(g, shape)
    assert out.shape == shape
    np.testing.assert_allclose(out, g.sum(axis=axes).reshape(shape) if axes else g)


@pytest.mark.parametrize("a_shape, b_shape", [((3, 1, 4), (5, 1)), ((2, 3), (3,)), ((4, 1), ()),
                                              ((1, 3, 4), (2, 4, 5))])
def test_broadcasting_ops_return_their_inputs_shapes(a_shape, b_shape):
    rng = np.random.default_rng(1)
    a = mc.Tensor(rng.standard_normal(a_shape) + 3, requires_grad=True)
    b = mc.Tensor(rng.standard_normal(b_shape) + 3, requires_grad=True)
    ops = [lambda: a + b, lambda: a - b, lambda: a * b, lambda: a / b, lambda: a ** b]
    if len(a_shape) == 3 and len(b_shape) == 3:
        ops = [lambda: a @ b]
    for op in ops:
        a.grad = b.grad = None
        op().sum().backward()
        assert a.grad.shape == a_shape and b.grad.shape == b_shape


def test_gradcheck_of_a_student_function_reports_the_shape_error(tmp_path, capsys):
    source = tmp_path / "my_layer.py"
    source.write_text(
        "import numpy as np\nimport minicnn as mc\n\n\n"
        "class BadBias(mc.Function):\n"
        "    @staticmethod\n"
        "    def gradcheck_inputs():\n"
        "        rng = np.random.default_rng(0)\n"
        "        return [rng.standard_normal((4, 3)), rng.standard_normal(3)]\n\n"
        "    def forward(self, x, b):\n"
        "        return x + b\n\n"
        "    def backward(self, g):\n"
        "        return g, g\n")
    assert cli.main(["gradcheck", f"{source}:BadBias"]) == 1
    out = capsys.readouterr().out
    assert "FAIL (RuntimeError: BadBias.backward returned shape (4, 3) as the gradient of input 1" in out
