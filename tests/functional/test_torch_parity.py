"""Conv and pooling against torch.nn.functional, forward and backward (skipped without torch)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.functional as F
from minicnn import backend

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mc.Tensor) else t)


def _compare(ours, theirs, arrays, to_device, rtol=1e-10, atol=1e-12):
    """Run both on float64 copies of ``arrays``; compare the outputs and every input gradient."""
    mine = [to_device(a, requires_grad=True) if a is not None else None for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) if a is not None else None for a in arrays]
    y, yt = ours(*mine), theirs(*ref)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(host(y), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(7).standard_normal(y.shape)
    y.backward(to_device(g))
    yt.backward(torch.tensor(g))
    for a, b in zip(mine, ref):
        if a is not None:
            np.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=rtol, atol=atol)


@given(groups=st.integers(1, 3), cg=st.integers(1, 3), og=st.integers(1, 2), k=st.tuples(st.integers(1, 4),
       st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       bias=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_conv2d_matches_torch(device, to_device, groups, cg, og, k, stride, padding, extra, bias, seed):
    h, w = (max(1, k[i] - 2 * padding[i]) + extra[i] for i in range(2))
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2, cg * groups, h, w)), rng.standard_normal((og * groups, cg) + k),
              rng.standard_normal(og * groups) if bias else None]
    _compare(lambda x, wt, b: F.conv2d(x, wt, b, stride, padding, groups),
             lambda x, wt, b: TF.conv2d(x, wt, b, stride, padding, 1, groups), arrays, to_device)


@pytest.mark.parametrize("pool", ["max", "avg"])
@given(k=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.one_of(st.none(), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       ceil_mode=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_pools_match_torch(device, to_device, pool, k, stride, pad, extra, ceil_mode, seed):
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    h, w = (max(1, k[i] - 2 * pad[i]) + extra[i] for i in range(2))
    x = np.random.default_rng(seed).permutation(2 * 3 * h * w).reshape(2, 3, h, w) * 0.1
    ours = F.max_pool2d if pool == "max" else F.avg_pool2d
    theirs = TF.max_pool2d if pool == "max" else TF.avg_pool2d
    _compare(lambda t: ours(t, k, stride, pad, ceil_mode), lambda t: theirs(t, k, stride, pad, ceil_mode=ceil_mode),
             [x], to_device)


@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.one_of(st.none(), st.integers(1, 8)),
       ow=st.integers(1, 8), seed=st.integers(0, 2 ** 31))
def test_adaptive_avg_pool_matches_torch(device, to_device, h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    _compare(lambda t: F.adaptive_avg_pool2d(t, (oh, ow)), lambda t: TF.adaptive_avg_pool2d(t, (oh, ow)),
             [x], to_device)


def test_float32_conv_matches_torch_at_alexnet_conv2_scale(device, to_device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 96, 27, 27)).astype(np.float32)
    w = (rng.standard_normal((256, 48, 5, 5)) * 0.05).astype(np.float32)
    y = F.conv2d(to_device(x), to_device(w), None, 1, 2, 2)
    yt = TF.conv2d(torch.tensor(x), torch.tensor(w), None, 1, 2, 1, 2)
    np.testing.assert_allclose(host(y), yt.numpy(), rtol=1e-4, atol=1e-4)
