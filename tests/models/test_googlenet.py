"""GoogLeNet: auxiliary heads (train vs eval), the 0.3-weighted loss, Inception naive vs bottleneck."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import models
from minicnn.models.googlenet import Inception


@pytest.fixture(scope="module")
def small_googlenet():
    mc.manual_seed(0)
    return models.googlenet(aux_logits=True, num_classes=6, width=0.0625)


def _x(n=2, size=224):
    return mc.Tensor(np.random.default_rng(0).standard_normal((n, 3, size, size)).astype(np.float32))


def test_aux_heads_in_training_mode(small_googlenet):
    model = small_googlenet.train()
    out = model(_x())
    assert isinstance(out, tuple) and len(out) == 3
    assert [o.shape for o in out] == [(2, 6)] * 3
    loss = models.googlenet_loss(out, np.array([1, 5]))
    loss.backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.conv.conv.weight.grad is not None
    model.zero_grad()


def test_eval_returns_logits_alone(small_googlenet):
    model = small_googlenet.eval()
    with mc.no_grad():
        out = model(_x())
    assert isinstance(out, mc.Tensor) and out.shape == (2, 6)
    model.train()


def test_without_aux_training_returns_logits():
    model = models.googlenet(num_classes=4, width=0.0625).train()
    assert model.aux1 is None and model.aux2 is None
    assert isinstance(model(_x(1, 64)), mc.Tensor)


def test_googlenet_loss_weights():
    rng = np.random.default_rng(0)
    logits, a1, a2 = (mc.Tensor(rng.standard_normal((3, 4))) for _ in range(3))
    target = np.array([0, 3, 1])
    ce = [F.cross_entropy(t, target).item() for t in (logits, a1, a2)]
    assert models.googlenet_loss((logits, a1, a2), target).item() == pytest.approx(
        ce[0] + 0.3 * (ce[1] + ce[2]), rel=1e-6)
    assert models.googlenet_loss(logits, target).item() == pytest.approx(ce[0], rel=1e-6)


def test_feature_map_sizes_at_224():
    model = models.googlenet(width=0.0625)
    from minicnn.summary import summary
    rows = summary(model, (3, 224, 224), print_fn=None)
    shape = {r["name"]: r["output_shape"] for r in rows}
    assert shape["maxpool1"][1:] == (56, 56)
    assert shape["maxpool2"][1:] == (28, 28)
    assert shape["maxpool3"][1:] == (14, 14)
    assert shape["maxpool4"][1:] == (7, 7)
    assert shape["avgpool"][1:] == (1, 1)


def test_inception_naive_vs_bottleneck():
    result = models.inception_comparison()
    naive, bottleneck = result["naive"], result["bottleneck"]
    assert naive["params"] == 256 * 128 + 9 * 256 * 192 + 25 * 256 * 96 + (128 + 192 + 96) == 1_089_952
    assert bottleneck["params"] == 330_272
    assert naive["macs"] == 28 * 28 * (256 * 128 + 9 * 256 * 192 + 25 * 256 * 96) == 854_196_224
    assert bottleneck["macs"] == 28 * 28 * 329_728
    assert naive["output_shape"] == bottleneck["output_shape"] == (672, 28, 28)


def test_inception_module_shapes_and_pool_projection():
    m = Inception(192, 64, 96, 128, 16, 32, 32)                # GoogLeNet's 3a
    assert m.out_channels == 256
    assert m.num_parameters() == 163_696
    x = mc.Tensor(np.zeros((1, 192, 7, 7), np.float32))
    assert m(x).shape == (1, 256, 7, 7)
    naive = Inception(192, 64, None, 128, None, 32, None, naive=True)
    assert naive(x).shape == (1, 64 + 128 + 32 + 192, 7, 7)
    with_proj = Inception(256, 128, 64, 192, 64, 96, 64)
    assert with_proj.num_parameters() == 346_720 and with_proj.out_channels == 480
