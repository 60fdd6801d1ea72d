"""Parity with PyTorch (skipped when torch is not installed): values and gradients in float64."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def host(a):
    return backend.to_numpy(a.data if isinstance(a, mc.Tensor) else a)


def compare(ours, theirs, inputs, torch_inputs, rtol=1e-10, atol=1e-12):
    """Forward values and the gradients of sum(v * out) for a random v, against torch."""
    v = np.random.default_rng(99).standard_normal(theirs.shape)
    np.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=rtol, atol=atol)
    ours.backward(backend.to_device(v, ours.device))
    theirs.backward(torch.from_numpy(v))
    for a, b in zip(inputs, torch_inputs):
        np.testing.assert_allclose(backend.to_numpy(a.grad), b.grad.numpy(), rtol=rtol, atol=atol)


def pair(to_device, array):
    return to_device(array, requires_grad=True), torch.tensor(array, requires_grad=True)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("shape", [(2, 7, 3, 4), (2, 6, 5)])
def test_local_response_norm(device, to_device, size, shape):
    x = np.random.default_rng(size).standard_normal(shape) * 3
    a, b = pair(to_device, x)
    compare(F.local_response_norm(a, size, alpha=0.3, beta=0.75, k=1.5),
            TF.local_response_norm(b, size, alpha=0.3, beta=0.75, k=1.5), [a], [b])


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3), (3, 5, 4, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(device, to_device, xp, shape, training):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(5), rng.standard_normal(5)
    rm, rv = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    (xa, xb), (wa, wb), (ba, bb) = pair(to_device, x), pair(to_device, w), pair(to_device, b)
    rma, rva = xp.asarray(rm.copy()), xp.asarray(rv.copy())
    rmb, rvb = torch.tensor(rm), torch.tensor(rv)
    compare(F.batch_norm(xa, rma, rva, wa, ba, training=training, momentum=0.3, eps=1e-3),
            TF.batch_norm(xb, rmb, rvb, wb, bb, training=training, momentum=0.3, eps=1e-3),
            [xa, wa, ba], [xb, wb, bb])
    np.testing.assert_allclose(host(rma), rmb.numpy(), rtol=1e-12)
    np.testing.assert_allclose(host(rva), rvb.numpy(), rtol=1e-12)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmaxes(device, to_device, op, axis):
    x = np.random.default_rng(1).standard_normal((3, 4, 5)) * 10
    a, b = pair(to_device, x)
    compare(getattr(F, op)(a, axis), getattr(TF, op)(b, dim=axis), [a], [b])


def test_cross_entropy_nll_linear_activations(device, to_device):
    rng = np.random.default_rng(2)
    z, t = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6)
    a, b = pair(to_device, z)
    compare(F.cross_entropy(a, to_device(t)), TF.cross_entropy(b, torch.tensor(t)), [a], [b])
    a, b = pair(to_device, z)
    compare(F.nll_loss(a, t), TF.nll_loss(b, torch.tensor(t)), [a], [b])
    x, w, bias = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    (xa, xb), (wa, wb), (ba, bb) = pair(to_device, x), pair(to_device, w), pair(to_device, bias)
    compare(F.linear(xa, wa, ba), TF.linear(xb, wb, bb), [xa, wa, ba], [xb, wb, bb])
    for ours, theirs in [(F.relu, torch.relu), (F.tanh, torch.tanh), (F.sigmoid, torch.sigmoid)]:
        a, b = pair(to_device, rng.standard_normal((3, 4)) * 20)
        compare(ours(a), theirs(b), [a], [b])


def test_module_names_shapes_and_buffers_match_torch():
    for ours, theirs in [(nn.BatchNorm2d(16), torch.nn.BatchNorm2d(16)),
                         (nn.BatchNorm1d(7), torch.nn.BatchNorm1d(7)),
                         (nn.Linear(9, 4), torch.nn.Linear(9, 4)),
                         (nn.Linear(9, 4, bias=False), torch.nn.Linear(9, 4, bias=False)),
                         (nn.LocalResponseNorm(5), torch.nn.LocalResponseNorm(5))]:
        mine, ref = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(ref)
        random_init = isinstance(ours, nn.Linear)
        for k in ref:
            assert mine[k].shape == tuple(ref[k].shape)
            if not random_init:
                np.testing.assert_array_equal(mine[k], ref[k].numpy())


def test_batchnorm_module_sequence_matches_torch():
    """Several training steps then eval: running buffers and outputs agree with torch's module."""
    ours, theirs = nn.BatchNorm2d(3, momentum=0.1).double(), torch.nn.BatchNorm2d(3).double()
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = rng.standard_normal((4, 3, 2, 2)) * 3 + 2
        np.testing.assert_allclose(host(ours(mc.Tensor(x))), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(host(ours(mc.Tensor(x))), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
