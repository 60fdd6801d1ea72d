"""nn layers of the normalization / activation / dropout / linear / loss family."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, nn


def host(a):
    return backend.to_numpy(a.data if isinstance(a, mc.Tensor) else a)


# -- batch norm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 4)), (nn.BatchNorm1d, (5, 4, 3)),
                                       (nn.BatchNorm2d, (3, 4, 2, 5))])
def test_batchnorm_train_eval_and_buffers(device, to_device, cls, shape):
    bn = cls(4, momentum=0.2).to(device)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(host(bn.weight), np.ones(4))
    np.testing.assert_array_equal(host(bn.bias), np.zeros(4))
    np.testing.assert_array_equal(host(bn.running_mean), np.zeros(4))
    np.testing.assert_array_equal(host(bn.running_var), np.ones(4))
    assert bn.weight.dtype == bn.running_var.dtype == np.float32

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 2 + 3
    axes = (0,) + tuple(range(2, len(shape)))
    m = x.size // 4
    y = bn(to_device(x, requires_grad=True))
    assert y.dtype == np.float32 and y.device == device
    np.testing.assert_allclose(host(y).mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(host(bn.running_mean), 0.2 * x.mean(axis=axes), rtol=1e-5)
    np.testing.assert_allclose(host(bn.running_var), 0.8 + 0.2 * x.var(axis=axes) * m / (m - 1), rtol=1e-5)
    assert int(host(bn.num_batches_tracked)) == 1
    y.sum().backward()
    assert bn.weight.grad.shape == (4,) and bn.bias.grad.dtype == np.float32

    bn.eval()
    rm, rv = host(bn.running_mean).copy(), host(bn.running_var).copy()
    y = bn(to_device(x))
    s = (1, 4) + (1,) * (len(shape) - 2)
    expected = (x - rm.reshape(s)) / np.sqrt(rv.reshape(s) + 1e-5)
    np.testing.assert_allclose(host(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(host(bn.running_mean), rm)
    assert int(host(bn.num_batches_tracked)) == 1


def test_batchnorm_state_dict_round_trip(device, to_device):
    bn = nn.BatchNorm2d(3).to(device)
    bn(to_device(np.random.default_rng(1).standard_normal((2, 3, 2, 2)).astype(np.float32)))
    other = nn.BatchNorm2d(3)
    other.load_state_dict(bn.state_dict())
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)


@pytest.mark.parametrize("layer,shape,message", [
    (nn.BatchNorm2d(8), (2, 4, 3, 3), r"BatchNorm2d: expected input \(N, 8, H, W\), got \(2, 4, 3, 3\)"),
    (nn.BatchNorm2d(8), (2, 8), r"BatchNorm2d: expected input \(N, 8, H, W\), got \(2, 8\)"),
    (nn.BatchNorm1d(8), (2, 8, 3, 3),
     r"BatchNorm1d: expected input \(N, 8\) or \(N, 8, L\), got \(2, 8, 3, 3\)"),
    (nn.BatchNorm1d(8), (2, 5), r"BatchNorm1d: expected input \(N, 8\) or \(N, 8, L\), got \(2, 5\)"),
    (nn.LocalResponseNorm(5), (2, 8), r"LocalResponseNorm: expected input \(N, C, H, W\).*got \(2, 8\)"),
    (nn.Linear(9216, 10), (4, 4096), r"Linear: expected input \(N, 9216\), got \(4, 4096\)"),
])
def test_layers_name_themselves_in_shape_errors(device, to_device, layer, shape, message):
    layer.to(device)
    with pytest.raises(ValueError, match=message):
        layer(to_device(np.zeros(shape, dtype=np.float32)))


def test_local_response_norm_module(device, to_device):
    import minicnn.functional as F
    lrn = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    assert list(lrn.state_dict()) == []
    x = to_device(np.random.default_rng(2).standard_normal((2, 7, 3, 3)).astype(np.float32))
    np.testing.assert_array_equal(host(lrn(x)), host(F.local_response_norm(x, 5, 5e-4, 0.75, 2.0)))
    assert "LocalResponseNorm(5, alpha=0.0005" in repr(lrn)


# -- linear / flatten / identity -------------------------------------------------------------------------
def test_linear_names_shapes_and_default_init(device, to_device):
    mc.manual_seed(0)
    fc = nn.Linear(400, 300)
    assert [(n, p.shape) for n, p in fc.named_parameters()] == [("weight", (300, 400)), ("bias", (300,))]
    bound = 1 / math.sqrt(400)
    w, b = host(fc.weight), host(fc.bias)
    assert w.dtype == b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound and abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # U(-b, b)
    mc.manual_seed(0)
    np.testing.assert_array_equal(host(nn.Linear(400, 300).weight), w)  # seeded
    fc.to(device)
    x = np.random.default_rng(3).standard_normal((2, 400)).astype(np.float32)
    y = fc(to_device(x))
    assert y.shape == (2, 300) and y.dtype == np.float32 and y.device == device
    np.testing.assert_allclose(host(y), x @ w.T + b, rtol=1e-4, atol=1e-5)


def test_linear_without_bias(device, to_device):
    fc = nn.Linear(3, 2, bias=False).to(device)
    assert fc.bias is None and [n for n, _ in fc.named_parameters()] == ["weight"]
    x = to_device(np.ones((4, 3), np.float32), requires_grad=True)
    fc(x).sum().backward()
    assert fc.weight.grad.shape == (2, 3)


def test_flatten_and_identity(device, to_device):
    x = to_device(np.zeros((2, 256, 6, 6), np.float32))
    assert nn.Flatten()(x).shape == (2, 9216)
    assert nn.Flatten(0)(x).shape == (2 * 9216,)
    assert nn.Identity(54, unused="x")(x) is x


# -- dropout / activations / loss -------------------------------------------------------------------------
def test_dropout_module_follows_training_flag(device, to_device):
    drop = nn.Dropout(0.5)
    x = to_device(np.ones((50, 50), np.float32))
    mc.manual_seed(0)
    y = host(drop(x))
    assert set(np.unique(y)) == {0.0, 2.0}
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.2)


def test_activation_modules(device, to_device):
    x = to_device(np.array([[-2.0, 0.5, 3.0]], np.float32))
    np.testing.assert_allclose(host(nn.ReLU()(x)), [[0, 0.5, 3.0]])
    np.testing.assert_allclose(host(nn.ReLU(inplace=True)(x)), [[0, 0.5, 3.0]])
    np.testing.assert_allclose(host(nn.Tanh()(x)), np.tanh([[-2.0, 0.5, 3.0]]), rtol=1e-6)
    np.testing.assert_allclose(host(nn.Sigmoid()(x)), 1 / (1 + np.exp([[2.0, -0.5, -3.0]])), rtol=1e-6)
    p = host(nn.Softmax(dim=1)(x))
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(host(nn.LogSoftmax(dim=1)(x)), np.log(p), rtol=1e-5)


def test_cross_entropy_loss_module(device, to_device):
    z = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 2, 1])
    logits = to_device(z, requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, to_device(t))
    e = np.exp(z - z.max(1, keepdims=True))
    expected = -np.log(e[np.arange(5), t] / e.sum(1)).mean()
    assert loss.shape == () and loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert logits.grad.dtype == np.float32
    assert nn.NLLLoss()(logits, t).item() == pytest.approx(-z[np.arange(5), t].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="label 3"):
        nn.CrossEntropyLoss()(logits, to_device(np.array([0, 1, 3, 2, 1])))


def test_small_network_gradcheck(device, to_device):
    """Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear -> cross-entropy, in float64."""
    mc.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Dropout(0.25), nn.Linear(4, 3))
    net.to(device).double()
    x = to_device(np.random.default_rng(5).standard_normal((6, 5)), requires_grad=True)
    t = to_device(np.array([0, 1, 2, 0, 1, 2]))

    def fn(x, *params):
        mc.manual_seed(1)
        return nn.CrossEntropyLoss()(net(x), t)
    assert mc.gradcheck(fn, [x] + list(net.parameters()))
