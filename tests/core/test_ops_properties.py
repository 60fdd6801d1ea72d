"""Hypothesis gradient checks of every Tensor op over generated shapes, axes and broadcasting."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def tensors(draw, shape, positive=False, device="cpu", seed=None):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)) if seed is None else seed)
    data = rng.standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return mc.Tensor(mc.backend.to_device(data, device), requires_grad=True)


@st.composite
def broadcast_pair(draw):
    shape = draw(shapes)
    other = list(shape)
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    drop = draw(st.integers(0, len(other) - 1))
    return shape, tuple(other[drop:])


@given(data=st.data(), pair=broadcast_pair(), op=st.sampled_from(["add", "sub", "mul", "div", "pow"]))
def test_binary_ops_with_broadcasting(device, data, pair, op):
    a_shape, b_shape = pair
    if data.draw(st.booleans()):
        a_shape, b_shape = b_shape, a_shape
    positive = op in ("div", "pow")
    a = tensors(data.draw, a_shape, positive=op == "pow", device=device)
    b = tensors(data.draw, b_shape, positive=positive, device=device)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "div": lambda x, y: x / y, "pow": lambda x, y: x ** y}[op]
    assert mc.gradcheck(fn, [a, b])


@given(data=st.data(), shape=shapes, reduction=st.sampled_from(["sum", "mean", "max"]),
       keepdims=st.booleans())
def test_reductions_over_axes(device, data, shape, reduction, keepdims):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                               st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
                               .map(tuple)))
    x = tensors(data.draw, shape, device=device)
    assert mc.gradcheck(lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims), [x])


@given(data=st.data(), shape=shapes)
def test_unary_and_shape_ops(device, data, shape):
    x = tensors(data.draw, shape, device=device)
    p = tensors(data.draw, shape, positive=True, device=device)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    assert mc.gradcheck(lambda t: (-t).exp() * 0.5, [x])
    assert mc.gradcheck(lambda t: t.log() + t ** 1.5, [p])
    assert mc.gradcheck(lambda t: t.reshape(-1)[::-1].reshape(*shape[::-1]), [x])
    assert mc.gradcheck(lambda t: t.transpose(*perm), [x])


@given(data=st.data(), m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4),
       batch=st.sampled_from([(), (2,), (1, 3)]))
def test_matmul(device, data, m, k, n, batch):
    a = tensors(data.draw, batch + (m, k), device=device)
    b = tensors(data.draw, (k, n), device=device)
    assert mc.gradcheck(lambda x, y: x @ y, [a, b])


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_indexing(device, data, shape):
    x = tensors(data.draw, shape, device=device)
    ints = np.array(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5)))
    start = data.draw(st.integers(0, shape[0] - 1))
    assert mc.gradcheck(lambda t: t[ints], [x])
    assert mc.gradcheck(lambda t: t[start::2], [x])
    assert mc.gradcheck(lambda t: t[t.data > 0] * 3.0, [x])


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       count=st.integers(1, 3))
def test_concat_and_stack(device, data, shape, count):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    xs = [tensors(data.draw, shape, device=device) for _ in range(count)]
    assert mc.gradcheck(lambda *ts: mc.concat(ts, axis=axis), xs)
    assert mc.gradcheck(lambda *ts: mc.stack(ts, axis=axis), xs)
