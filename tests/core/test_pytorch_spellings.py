"""Tensor methods and top-level functions spelled as in PyTorch give PyTorch's results
(docs/from-pytorch.md); NumPy's spellings keep working beside them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import backend, testing


# -- comparisons and one-element tensors as Python numbers -----------------------------------------
def test_comparisons_are_elementwise_boolean_tensors():
    a, b = mc.tensor([1, 2, 3]), mc.tensor([1, 5, 3])
    for result, expected in [(a == b, [True, False, True]), (a != b, [False, True, False]),
                             (a < b, [False, True, False]), (a <= b, [True, True, True]),
                             (a > 2, [False, False, True]), (a >= [2, 2, 2], [False, True, True])]:
        assert isinstance(result, mc.Tensor) and result.dtype == np.bool_
        assert result.tolist() == expected
    assert (a == b).sum().item() == 2 and (a == b).float().mean().item() == pytest.approx(2 / 3)
    assert (np.array([1, 2, 3]) == a).tolist() == [True, True, True]  # numpy defers to Tensor


def test_tensors_hash_by_identity_as_in_pytorch():
    a, b = mc.tensor([1.0]), mc.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[a] == 1 and hash(a) == hash(a)


def test_one_element_tensors_act_as_python_numbers():
    loss = mc.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and float(loss) == pytest.approx(0.123456)
    assert int(mc.tensor([7.9])) == 7 and bool(mc.tensor(1)) and not bool(mc.tensor([0.0]))
    classes = ["cat", "dog", "frog"]
    assert classes[mc.tensor(2)] == "frog" and classes[mc.tensor([1])] == "dog"
    if mc.tensor(3) == 3:
        pass
    else:
        pytest.fail("a one-element comparison should be true")


def test_many_element_tensors_refuse_scalar_conversion():
    t = mc.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    with pytest.raises(ValueError, match="one-element"):
        float(t)
    with pytest.raises(TypeError, match="one-element"):
        f"{t:.2f}"
    with pytest.raises(TypeError, match="integer"):
        [0, 1][mc.tensor(1.0)]
    assert f"{t}" == repr(t)


def test_iteration_size_numel_dim():
    t = mc.arange(6).reshape(2, 3)
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4, 5]
    assert t.size() == (2, 3) and t.size(0) == 2 and t.size(-1) == 3
    assert t.numel() == 6 and t.dim() == 2 == t.ndim
    with pytest.raises(TypeError, match="0-d"):
        list(mc.tensor(1.0))


# -- reductions: dim= and axis= ------------------------------------------------------------------
def test_max_min_with_dim_return_values_and_indices():
    x = mc.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] and indices.dtype == np.int64
    assert x.max(dim=0).values.tolist() == [7.0, 5.0, 3.0]
    assert mc.max(x, 1).indices.tolist() == [1, 0]
    _, pred = x.min(1, keepdim=True)
    assert pred.shape == (2, 1) and pred.tolist() == [[0], [1]]
    # NumPy's spelling and the full reduction keep returning the values alone
    assert isinstance(x.max(axis=1), mc.Tensor) and x.max(axis=1).tolist() == [5.0, 7.0]
    assert x.max().item() == 7.0 and mc.min(x).item() == 0.0
    with pytest.raises(TypeError, match="not both"):
        x.max(1, axis=1)


def test_max_with_dim_is_differentiable():
    x = mc.tensor([[1.0, 5.0], [7.0, 0.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1], [1, 0]])
    y = mc.tensor([[1.0, 5.0], [7.0, 0.0]], requires_grad=True)
    y.min(dim=0).values.sum().backward()
    np.testing.assert_array_equal(y.grad, [[1, 0], [0, 1]])


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_dim_and_axis_spellings_agree_with_numpy(shape, data):
    array = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    t = mc.tensor(array)
    for name in ("sum", "mean"):
        expected = getattr(array, name)(axis=dim, keepdims=keep)
        np.testing.assert_allclose(getattr(t, name)(dim=dim, keepdim=keep).data, expected, rtol=1e-6)
        np.testing.assert_allclose(getattr(t, name)(axis=dim, keepdims=keep).data, expected, rtol=1e-6)
        np.testing.assert_allclose(getattr(mc, name)(t, dim, keep).data, expected, rtol=1e-6)
    for name in ("argmax", "argmin"):
        expected = getattr(array, name)(axis=dim, keepdims=keep)
        np.testing.assert_array_equal(getattr(t, name)(dim=dim, keepdim=keep).data, expected)
        np.testing.assert_array_equal(getattr(t, name)(axis=dim, keepdims=keep).data, expected)
    values, indices = t.max(dim, keep)
    np.testing.assert_array_equal(values.data, array.max(axis=dim, keepdims=keep))
    np.testing.assert_array_equal(indices.data, array.argmax(axis=dim, keepdims=keep))


def test_softmax_and_log_softmax_methods_match_functional_and_gradcheck():
    x = mc.tensor(np.random.default_rng(0).standard_normal((3, 4)) * 30, requires_grad=True)
    np.testing.assert_allclose(x.softmax(dim=1).data, F.softmax(x, dim=1).data, atol=1e-12)
    np.testing.assert_allclose(x.log_softmax(1).data, F.log_softmax(x, axis=1).data, atol=1e-12)
    np.testing.assert_allclose(mc.softmax(x, 0).data, F.softmax(x, 0).data, atol=1e-12)
    assert mc.gradcheck(lambda t: t.softmax(dim=0) * t, [x])
    assert mc.gradcheck(lambda t: t.log_softmax(dim=-1) * t, [x])
    with pytest.raises(TypeError, match="not both"):
        F.softmax(x, dim=1, axis=1)


# -- dtypes, devices, copies --------------------------------------------------------------------
def test_tensor_dtypes_follow_pytorch():
    assert mc.tensor([1, 2, 3]).dtype == mc.int64 == mc.long
    assert mc.tensor([1.5, 2]).dtype == mc.float32 and mc.tensor(2.0).dtype == mc.float
    assert mc.tensor(np.zeros(2)).dtype == mc.float64          # an array keeps its dtype
    assert mc.tensor([1, 2], dtype=mc.float64).dtype == np.float64
    t = mc.tensor([1.7, -2.2])
    assert t.long().tolist() == [1, -2] and t.int().dtype == np.int32
    assert mc.tensor([1, 0]).float().dtype == np.float32 and t.double().dtype == np.float64


def test_to_takes_a_device_a_dtype_or_a_tensor():
    t = mc.tensor([1.0, 2.0], requires_grad=True)
    dev = mc.device("standin")
    assert isinstance(dev, str) and dev.type == "standin" and repr(dev) == "device(type='standin')"
    moved = t.to(dev)
    assert moved.device == "standin" and isinstance(moved.data, testing.StandinArray)
    assert moved.cpu().device == "cpu" and t.to(mc.float64).dtype == np.float64
    both = t.to("standin", mc.float64)
    assert both.device == "standin" and both.dtype == np.float64
    like = t.to(mc.zeros(1, dtype=mc.float64))
    assert like.dtype == np.float64 and like.device == "cpu"
    assert t.to("cpu", non_blocking=True) is t
    (moved * 3.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])
    assert mc.device("cuda:0").type == "cuda" and mc.device("cpu") == "cpu"
    with pytest.raises(ValueError, match="single"):
        mc.device("cuda:1")
    with pytest.raises(TypeError, match="device, a dtype or a tensor"):
        t.to(3)


def test_clone_stays_in_the_graph_detach_leaves_it():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.data is not x.data and c.requires_grad
    (c * c).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    assert x.numpy() is not x.data and x.tolist() == [1.0, 2.0] and mc.tensor(3).item() == 3


def test_shape_helpers():
    t = mc.zeros(2, 3, 4)
    assert t.permute(2, 0, 1).shape == (4, 2, 3) and t.transpose(0, 2).shape == (4, 3, 2)
    assert t.unsqueeze(1).shape == (2, 1, 3, 4) and t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert t.unsqueeze(0).squeeze().shape == (2, 3, 4) and t.unsqueeze(1).squeeze(1).shape == (2, 3, 4)
    assert t.flatten().shape == (24,) and mc.flatten(t, 1).shape == (2, 12)
    assert t.flatten(0, 1).shape == (6, 4) and t.view(-1, 4).shape == (6, 4)
    m = mc.tensor([[1, 2], [3, 4]])
    assert m.transpose(0, 1).tolist() == [[1, 3], [2, 4]] == m.T.tolist()


# -- factories -------------------------------------------------------------------------------
def test_factories_shapes_and_dtypes():
    assert mc.zeros(2, 3).shape == (2, 3) == mc.ones((2, 3)).shape and mc.zeros(2).dtype == np.float32
    assert mc.ones(2, dtype=mc.int64).tolist() == [1, 1]
    assert mc.full((2, 2), 7).dtype == np.int64 and mc.full((2,), 0.5).tolist() == [0.5, 0.5]
    like = mc.tensor(np.ones((2, 2), np.float64))
    assert mc.zeros_like(like).dtype == np.float64 and mc.ones_like(like).tolist() == [[1, 1], [1, 1]]
    assert mc.arange(5).tolist() == [0, 1, 2, 3, 4] and mc.arange(5).dtype == np.int64
    assert mc.arange(1, 2, 0.5).dtype == np.float32 and mc.arange(1, 2, 0.5).tolist() == [1.0, 1.5]
    array = np.arange(3.0)
    shared = mc.from_numpy(array)
    array[0] = 9
    assert shared.tolist() == [9.0, 1.0, 2.0] and shared.dtype == np.float64
    assert mc.zeros(2, requires_grad=True).requires_grad and mc.zeros(2, device="standin").device == "standin"
    assert mc.cat([mc.ones(2, 1), mc.zeros(2, 2)], dim=1).shape == (2, 3)
    assert mc.stack([mc.ones(2), mc.zeros(2)], dim=1).shape == (2, 2)
    assert mc.is_tensor(mc.ones(1)) and not mc.is_tensor(np.ones(1)) and mc.numel(mc.ones(2, 3)) == 6
    with pytest.raises(ValueError, match="zeros"):
        mc.zeros(-1)
    with pytest.raises(TypeError, match="from_numpy"):
        mc.from_numpy([1, 2])


def test_random_factories_follow_manual_seed():
    mc.manual_seed(5)
    first = (mc.rand(3), mc.randn(2, 2), mc.randint(10, (4,)), mc.randint(3, 6, (50,)))
    mc.manual_seed(5)
    again = (mc.rand(3), mc.randn(2, 2), mc.randint(10, (4,)), mc.randint(3, 6, (50,)))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.data, b.data)
    assert first[0].dtype == np.float32 and first[1].dtype == np.float32
    assert first[2].dtype == np.int64 and 3 <= first[3].min().item() and first[3].max().item() <= 5
    assert 0 <= first[0].min().item() and first[0].max().item() < 1
    mc.cuda.manual_seed_all(5)
    np.testing.assert_array_equal(mc.rand(3).data, first[0].data)


def test_inference_mode_builds_no_graph():
    x = mc.ones(2, requires_grad=True)
    with mc.inference_mode():
        assert not (x * 2).requires_grad
    with mc.inference_mode(False):
        assert (x * 2).requires_grad
    assert (x * 2).requires_grad and isinstance(mc.cuda.is_available(), bool)
    assert mc.cuda.device_count() == (1 if mc.cuda.is_available() else 0)


# -- autograd -----------------------------------------------------------------------------------
def test_retain_graph_allows_a_second_backward():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * 3.0).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    y.backward()                                       # the graph was kept: gradients accumulate
    np.testing.assert_array_equal(x.grad, [12.0, 24.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()                                   # ... and freed by the second one


def test_retain_graph_through_a_convolutional_network():
    """Every layer's backward (fast paths included) leaves what it saved usable a second time."""
    mc.manual_seed(0)
    model = mc.nn.Sequential(mc.nn.Conv2d(3, 4, 3, padding=1), mc.nn.BatchNorm2d(4), mc.nn.ReLU(),
                             mc.nn.MaxPool2d(2), mc.nn.LocalResponseNorm(3), mc.nn.AvgPool2d(2),
                             mc.nn.Flatten(), mc.nn.Dropout(0.5), mc.nn.Linear(4 * 4 * 4, 3))
    x, target = mc.randn(8, 3, 16, 16), mc.randint(3, (8,))
    loss = F.cross_entropy(model(x), target)
    loss.backward(retain_graph=True)
    first = [p.grad.data.copy() for p in model.parameters()]
    loss.backward()
    for g, p in zip(first, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-5, atol=1e-7)


def test_var_and_std_are_unbiased_by_default_as_pytorch():
    array = np.random.default_rng(3).standard_normal((4, 5))
    t = mc.tensor(array, requires_grad=True)
    np.testing.assert_allclose(t.var().data, array.var(ddof=1))
    np.testing.assert_allclose(t.std(dim=1).data, array.std(axis=1, ddof=1))
    np.testing.assert_allclose(t.std(axis=0, keepdims=True, unbiased=False).data,
                               array.std(axis=0, keepdims=True))
    assert mc.gradcheck(lambda x: x.std(dim=0), [t])


def test_same_results_as_pytorch_when_it_is_installed():
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(7).standard_normal((4, 5)).astype(np.float32)
    ours, theirs = mc.tensor(array), torch.tensor(array)
    for dim in (0, 1, -1):
        v, i = ours.max(dim)
        tv, ti = theirs.max(dim)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(ours.min(dim, keepdim=True).indices.numpy(),
                                      theirs.min(dim, keepdim=True).indices.numpy())
        np.testing.assert_allclose(ours.softmax(dim=dim).numpy(), theirs.softmax(dim=dim).numpy(), rtol=1e-5)
        np.testing.assert_allclose(ours.log_softmax(dim).numpy(), theirs.log_softmax(dim).numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.std(dim=dim).numpy(), theirs.std(dim=dim).numpy(), rtol=1e-5)
        np.testing.assert_array_equal(ours.argmax(dim=dim, keepdim=True).numpy(),
                                      theirs.argmax(dim=dim, keepdim=True).numpy())
    assert mc.tensor([1, 2]).dtype.name == str(torch.tensor([1, 2]).dtype).split(".")[1]
    assert mc.tensor([1.0]).dtype.name == str(torch.tensor([1.0]).dtype).split(".")[1]
    assert mc.arange(5).tolist() == torch.arange(5).tolist() and mc.arange(0, 1, 0.25).tolist() == \
        torch.arange(0, 1, 0.25).tolist()
    assert mc.zeros(2, 3).transpose(0, 1).shape == tuple(torch.zeros(2, 3).transpose(0, 1).shape)
    assert mc.zeros(2, 3, 4).flatten(1).shape == tuple(torch.zeros(2, 3, 4).flatten(1).shape)
