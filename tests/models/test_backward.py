"""Forward + backward of every model family on each device, at a cost a test can afford
(the paper's architecture with fewer filters or a smaller input), and gradient checks through a
tiny ResNet and a tiny DenseNet in float64."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, models
from minicnn.models.vgg import VGG, make_layers

# name -> (builder, input shape without batch, classes)
FAMILIES = {
    "lenet5": (lambda: models.lenet5(), (1, 28, 28), 10),
    "fashion_cnn": (lambda: models.fashion_cnn(), (1, 28, 28), 10),
    "alexnet": (lambda: models.AlexNet(num_classes=5, widths=(8, 16, 16, 16, 16), hidden=16), (3, 227, 227), 5),
    "alexnet_groups2": (lambda: models.AlexNet(num_classes=5, groups=2, widths=(8, 16, 16, 16, 16),
                                               hidden=16), (3, 227, 227), 5),
    "zfnet": (lambda: models.ZFNet(num_classes=5, conv12=(8, 16), conv345=(16, 16, 16), hidden=16),
              (3, 224, 224), 5),
    "vgg_bn": (lambda: VGG(make_layers([8, "M", 16, "M", 16, "M"], batch_norm=True), num_classes=5,
                           hidden=16), (3, 32, 32), 5),
    "vgg": (lambda: VGG(make_layers([8, "M", 16, "M"], in_channels=1), num_classes=5, hidden=16),
            (1, 16, 16), 5),
    "googlenet": (lambda: models.googlenet(num_classes=5, width=0.0625, dropout=0.0), (3, 64, 64), 5),
    "resnet18": (lambda: models.resnet18(num_classes=5), (3, 32, 32), 5),
    "resnet_bottleneck": (lambda: models.ResNet(models.Bottleneck, [1, 1, 1, 1], num_classes=5,
                                                width_per_group=16), (3, 32, 32), 5),
    "resnet20": (lambda: models.resnet20(in_channels=1), (1, 28, 28), 10),
    "plain20": (lambda: models.plain20(), (3, 32, 32), 10),
    "densenet": (lambda: models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                                         bn_size=2, num_classes=5), (3, 32, 32), 5),
    "densenet_bc": (lambda: models.densenet_cifar(depth=16, growth_rate=4, in_channels=1), (1, 28, 28), 10),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_forward_backward(family, device):
    build, in_shape, classes = FAMILIES[family]
    mc.manual_seed(0)
    model = build().to(device).train()
    rng = np.random.default_rng(0)
    x = mc.Tensor(backend.to_device(rng.standard_normal((2,) + in_shape).astype(np.float32), device))
    target = backend.to_device(np.array([0, classes - 1]), device)
    out = model(x)
    assert out.shape == (2, classes) and out.device == device
    loss = F.cross_entropy(out, target)
    loss.backward()
    assert np.isfinite(loss.item())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.shape == p.data.shape and p.grad.device == device, name
        assert np.isfinite(backend.to_numpy(p.grad)).all(), name
    # something reaches the first layer: the gradient flows through the whole network
    first = next(iter(model.parameters()))
    assert np.abs(backend.to_numpy(first.grad)).sum() > 0


def _check_model_gradients(model, x, eps=1e-6):
    """One directional derivative w.r.t. the input and every parameter. The step is ``eps`` times a
    standard-normal direction over all of them, so a model with millions of parameters needs a
    smaller ``eps`` to stay clear of ReLU/max-pool kinks."""
    model.double().train()
    params = list(model.parameters())
    assert mc.gradcheck(lambda x, *ps: model(x), [x] + params, directional=True, eps=eps,
                        atol=1e-6, rtol=1e-4)


def test_gradcheck_tiny_cifar_resnet():
    mc.manual_seed(1)
    model = models.CifarResNet(depth=8, num_classes=3, in_channels=2, widths=(2, 4, 4))
    x = mc.Tensor(np.random.default_rng(2).standard_normal((2, 2, 8, 8)), requires_grad=True)
    _check_model_gradients(model, x)


def test_gradcheck_tiny_bottleneck_resnet():
    mc.manual_seed(2)
    model = models.ResNet(models.Bottleneck, [1, 1, 1, 1], num_classes=3, width_per_group=2)
    x = mc.Tensor(np.random.default_rng(3).standard_normal((2, 3, 16, 16)), requires_grad=True)
    _check_model_gradients(model, x, eps=1e-8)      # 2.9 M parameters


def test_gradcheck_tiny_densenet():
    mc.manual_seed(3)
    model = models.densenet_cifar(depth=10, growth_rate=2, num_classes=3, in_channels=2)
    x = mc.Tensor(np.random.default_rng(4).standard_normal((2, 2, 8, 8)), requires_grad=True)
    _check_model_gradients(model, x)


def test_plain_and_residual_twins_differ_only_in_shortcuts():
    mc.manual_seed(0)
    res = models.resnet20()
    mc.manual_seed(0)
    plain = models.plain20()
    assert list(res.state_dict()) == list(plain.state_dict())
    for (k, a), b in zip(res.state_dict().items(), plain.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    x = mc.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    with mc.no_grad():
        assert not np.allclose(res.eval()(x).numpy(), plain.eval()(x).numpy())


def test_option_a_shortcut_is_parameter_free_subsample_and_zero_pad():
    from minicnn.models.resnet import _identity_shortcut_a
    x = mc.Tensor(np.arange(2 * 4 * 4 * 4, dtype=np.float64).reshape(2, 4, 4, 4))
    y = _identity_shortcut_a(x, 8).numpy()
    assert y.shape == (2, 8, 2, 2)
    np.testing.assert_array_equal(y[:, 2:6], x.numpy()[:, :, ::2, ::2])
    assert (y[:, :2] == 0).all() and (y[:, 6:] == 0).all()


def test_initialisation_follows_the_papers():
    mc.manual_seed(0)
    r = models.resnet18()
    w = r.layer1[0].conv1.weight.numpy()
    assert abs(w.std() - np.sqrt(2.0 / (64 * 9)) ) < 0.01               # kaiming_normal, fan_out
    assert (r.bn1.weight.numpy() == 1).all() and (r.bn1.bias.numpy() == 0).all()
    z = models.resnet18(zero_init_residual=True)
    assert (z.layer1[0].bn2.weight.numpy() == 0).all()
    a = models.AlexNet(widths=(96, 256, 384, 384, 256), hidden=16)
    convs = [m for m in a.features if type(m).__name__ == "Conv2d"]
    assert abs(convs[0].weight.numpy().std() - 0.01) < 1e-3
    assert [float(c.bias.numpy()[0]) for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
