"""The engine: graph walk, accumulation, no_grad, dtypes, memory, Function contract."""
import gc
import weakref

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, testing


def test_simple_chain_rule(to_device):
    x = to_device([2.0, -3.0], requires_grad=True)
    y = (x * x * 3.0 + x).sum()           # dy/dx = 6x + 1
    y.backward()
    np.testing.assert_allclose(backend.to_numpy(x.grad), [13.0, -17.0])


def test_gradients_accumulate_until_cleared(to_device):
    x = to_device([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * 2.0).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(x.grad), [6.0, 6.0])
    x.zero_grad()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(x.grad), [2.0, 2.0])


def test_diamond_graph_runs_each_node_once(to_device):
    """a feeds b and c, both feed d: a's gradient is the sum of both paths, computed once."""
    calls = []

    class Count(mc.Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, g):
            calls.append(1)
            return g

    a = to_device([1.5], requires_grad=True)
    h = Count()(a)
    b, c = h * 2.0, h * h
    d = (b + c).sum()                       # dd/da = 2 + 2a
    d.backward()
    assert len(calls) == 1
    np.testing.assert_allclose(backend.to_numpy(a.grad), [5.0])


def test_deep_chain_is_iterative_not_recursive():
    x = mc.Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_graph_is_freed_after_backward():
    x = mc.Tensor(np.ones(1000), requires_grad=True)

    class Big(mc.Function):
        def forward(self, x):
            self.saved = np.ones((1000, 1000))
            return x * 2

        def backward(self, g):
            return g * 2

    op = Big()
    y = op(x).sum()
    ref = weakref.ref(op)
    del op
    y.backward()
    gc.collect()
    assert ref() is None or not hasattr(ref(), "saved")
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()


def test_no_grad_builds_no_graph(to_device):
    x = to_device([1.0, 2.0], requires_grad=True)
    with mc.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._creator is None

    @mc.no_grad()
    def f(t):
        return t * 3.0
    assert not f(x).requires_grad
    assert mc.is_grad_enabled()


def test_requires_grad_propagation_and_constant_inputs_get_no_work(to_device):
    seen = {}

    class Probe(mc.Function):
        def forward(self, a, b):
            seen["needs"] = self.needs_input_grad
            return a * b

        def backward(self, g):
            return (g if self.needs_input_grad[0] else None,
                    g if self.needs_input_grad[1] else None)

    a = to_device([1.0], requires_grad=True)
    b = to_device([2.0])
    y = Probe()(a, b)
    assert y.requires_grad and seen["needs"] == (True, False)
    y.sum().backward()
    assert b.grad is None and a.grad is not None
    z = Probe()(b, b)
    assert not z.requires_grad and seen["needs"] == (False, False)


def test_detach_cuts_the_graph(to_device):
    x = to_device([3.0], requires_grad=True)
    y = (x * x).detach() * x
    y.sum().backward()
    np.testing.assert_allclose(backend.to_numpy(x.grad), [9.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_end_to_end(to_device, dtype):
    x = to_device(np.arange(6, dtype=dtype).reshape(2, 3) + 1, requires_grad=True)
    w = to_device(np.ones((3, 2), dtype=dtype), requires_grad=True)
    y = ((x @ w) ** 2 / 3.0 - 1.0).exp().log().mean() * 2.5 + np.float64(1.0)
    assert y.dtype == dtype
    y.backward()
    assert x.grad.dtype == dtype and w.grad.dtype == dtype


def test_python_floats_become_float32_ints_int64_and_arrays_keep_dtype():
    assert mc.tensor([1, 2, 3]).dtype == np.int64        # as torch.tensor([1, 2, 3])
    assert mc.Tensor([1, 2, 3]).dtype == np.float32      # as torch.Tensor([1, 2, 3])
    assert mc.tensor([1.0, 2]).dtype == np.float32
    assert mc.tensor(2.5).dtype == np.float32
    assert mc.tensor(7).dtype == np.int64
    assert mc.tensor([True, False]).dtype == np.bool_
    assert mc.Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert mc.Tensor(np.zeros(2, np.int64)).dtype == np.int64
    with pytest.raises(ValueError):
        mc.Tensor(np.zeros(2, np.int64), requires_grad=True)


def test_mixed_devices_raise_type_error_naming_op_and_types():
    a = mc.Tensor(np.ones(3), requires_grad=True)
    b = mc.Tensor(np.ones(3)).to("standin")
    with pytest.raises(TypeError, match=r"Add.*numpy.ndarray.*StandinArray|Add.*StandinArray.*numpy.ndarray"):
        a + b


def test_backward_default_grad_only_for_scalars(to_device):
    x = to_device(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="non-scalar"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(backend.to_numpy(x.grad), np.ones((2, 2)))


def test_multi_output_function(to_device):
    class Split(mc.Function):
        def forward(self, x):
            return x * 2.0, x * 3.0

        def backward(self, ga, gb):
            return ga * 2.0 + gb * 3.0

    x = to_device([1.0, 2.0], requires_grad=True)
    a, b = Split()(x)
    (a.sum() + (b * b).sum()).backward()    # 2 + 18 x
    np.testing.assert_allclose(backend.to_numpy(x.grad), [20.0, 38.0])
    x.grad = None
    a, b = Split()(x)
    a.sum().backward()                       # b unused: its gradient is zero
    np.testing.assert_allclose(backend.to_numpy(x.grad), [2.0, 2.0])


def test_student_function_checked_by_one_gradcheck_call():
    class Cube(mc.Function):                 # a 10-line student op
        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, g):
            return 3 * self.x ** 2 * g

    x = mc.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert mc.gradcheck(lambda t: Cube()(t), [x])


def test_indexing_variants(to_device):
    x = to_device(np.arange(12.0).reshape(3, 4), requires_grad=True)
    idx = np.array([0, 0, 2])
    y = x[1:, ::2].sum() + x[idx].sum() * 2.0 + x[x.data > 9].sum() * 10.0 + x[-1, 0]
    y.backward()
    expect = np.zeros((3, 4))
    expect[1:, ::2] += 1
    expect[0] += 4
    expect[2] += 2
    expect[2, 2:] += 10
    expect[2, 0] += 1
    np.testing.assert_allclose(backend.to_numpy(x.grad), expect)


def test_tensor_to_device_and_back():
    x = mc.Tensor(np.arange(3.0), requires_grad=True)
    y = x.to("standin")
    assert y.device == "standin" and isinstance(y.data, testing.StandinArray)
    (y * 2.0).sum().backward()
    assert isinstance(x.grad, mc.Tensor) and x.grad.data.__class__ is np.ndarray
    np.testing.assert_allclose(x.grad, [2.0, 2.0, 2.0])
    assert y.cpu().device == "cpu"
    assert isinstance(x.numpy(), np.ndarray) and x.numel() == 3


def test_item_numpy_and_repr(to_device):
    x = to_device([[1.5]])
    assert x.item() == 1.5
    assert isinstance(x.numpy(), np.ndarray)
    assert "tensor(" in repr(x)


# -- leaves keep fresh gradients without a copy, and never share one ------------------------------
def test_a_leaf_keeps_a_fresh_gradient_and_two_leaves_never_share_one(to_device):
    a = to_device([1.0, 2.0], requires_grad=True)
    b = to_device([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add's backward hands the same array to both leaves
    assert a.grad is not b.grad
    a.grad *= 10  # an in-place change (clip_grad_norm_ does this) must not reach b
    np.testing.assert_array_equal(backend.to_numpy(b.grad), [1.0, 1.0])
    np.testing.assert_array_equal(backend.to_numpy(a.grad), [10.0, 10.0])


def test_a_borrowed_gradient_is_never_written_while_the_walk_may_read_it(to_device):
    # y = a + h + k with h = 2a and k = 3a: the walk hands a's first gradient while the same array
    # is still the pending gradient of h; a's later gradients must not be added into it in place.
    a = to_device([1.0, -2.0], requires_grad=True)
    h, k = a * 2.0, a * 3.0
    ((a + h) + k).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(a.grad), [6.0, 6.0])
    ((a + a * 2.0) * a).sum().backward()  # accumulates: d/da 3a^2 = 6a on top
    np.testing.assert_allclose(backend.to_numpy(a.grad), [12.0, -6.0])


def test_the_callers_gradient_array_is_never_kept(to_device):
    a = to_device([1.0, 2.0], requires_grad=True)
    g = to_device([5.0, 7.0])
    (a + 0.0).backward(g)
    g.data[...] = 0
    np.testing.assert_array_equal(backend.to_numpy(a.grad), [5.0, 7.0])
