"""Leaf gradients after the walk (``function._accumulate_leaves``): never an array someone else
holds, whatever the graph handed out; kept uncopied only when that is safe."""
import numpy as np

import minicnn as mc


def _grad(t):
    return t.grad.data if isinstance(t.grad, mc.Tensor) else t.grad


def test_two_leaves_given_the_same_array_get_arrays_of_their_own():
    a = mc.Tensor(np.ones(3), requires_grad=True)
    b = mc.Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()                      # Add hands the same g to both inputs
    assert not np.shares_memory(_grad(a), _grad(b))
    _grad(a)[...] = 7
    np.testing.assert_array_equal(_grad(b), [1, 1, 1])


def test_a_leaf_sharing_its_gradient_with_an_intermediate_is_not_changed_by_it():
    a = mc.Tensor(np.ones(3), requires_grad=True)
    c = mc.Tensor(np.full(3, 2.0), requires_grad=True)
    h = c * 3                                     # an intermediate
    (a + h).sum().backward()                      # a and h get the same g; h passes it on
    np.testing.assert_array_equal(_grad(a), [1, 1, 1])
    np.testing.assert_array_equal(_grad(c), [3, 3, 3])


def test_a_leaf_used_twice_sums_and_a_view_is_copied():
    x = mc.Tensor(np.arange(4.0), requires_grad=True)
    (x * x + x[::-1].reshape(4)).sum().backward()
    np.testing.assert_array_equal(_grad(x), 2 * np.arange(4.0) + 1)
    y = mc.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y.reshape(6).sum().backward()                 # Reshape.backward returns a view of g
    assert _grad(y).base is None or not np.shares_memory(_grad(y), _grad(y).base)


def test_gradients_accumulate_across_backward_calls_in_place():
    x = mc.Tensor(np.ones(2), requires_grad=True)
    (x * 2).sum().backward()
    first = _grad(x)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(_grad(x), [5, 5])
    assert _grad(x) is first
