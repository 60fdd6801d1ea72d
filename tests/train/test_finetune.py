"""Fine-tuning: pretrained weights, a new classifier head, frozen layers."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, models, nn, optim
from minicnn.train import (Trainer, find_head, freeze, load_pretrained, read_state_dict,
                           replace_head, save_checkpoint, train_only_head, trainable_parameters,
                           unfreeze)

from train_helpers import TinyCNN, loaders


@pytest.mark.parametrize("name,head", [("lenet5", "classifier.2"), ("resnet20", "fc"),
                                       ("densenet_bc100", "classifier"),
                                       ("fashion_cnn", "classifier.5")])
def test_replace_head_finds_the_last_linear(name, head):
    mc.manual_seed(0)
    model = models.get(name, num_classes=10)
    before = {k: v for k, v in model.state_dict().items() if not k.startswith(head + ".")}
    assert find_head(model)[0] == head
    new = replace_head(model, 4)
    assert find_head(model) == (head, new)
    state = model.state_dict()
    assert state[f"{head}.weight"].shape[0] == 4 and state[f"{head}.bias"].shape == (4,)
    assert list(state)[-2:] == [f"{head}.weight", f"{head}.bias"] or head != "classifier.2"
    for k, v in before.items():
        np.testing.assert_array_equal(state[k], v)
    channels = 1 if name in ("lenet5", "fashion_cnn") else 3
    size = 28 if channels == 1 else 32
    model.eval()
    with mc.no_grad():
        out = model(mc.Tensor(np.zeros((2, channels, size, size), np.float32)))
    assert out.shape == (2, 4)


def test_replace_head_keeps_sequential_order_and_device(device):
    model = TinyCNN(num_classes=3).to(device)
    replace_head(model, 7)
    assert [type(m).__name__ for m in model.classifier] == ["Flatten", "Dropout", "Linear"]
    assert model.classifier[2].weight.shape == (7, 64) and model.classifier[2].weight.device == device


def test_replace_head_without_linear_raises():
    with pytest.raises(ValueError, match="no Linear"):
        replace_head(nn.Sequential(nn.ReLU()), 3)


def grads_after_step(model, x, y):
    out = model(x)
    loss = F.cross_entropy(out, y)
    loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}


def test_freeze_upto_a_layer(device):
    mc.manual_seed(0)
    model = TinyCNN().to(device)
    frozen = freeze(model, upto="features.1")  # conv and its batch norm
    assert frozen == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.2.weight", "classifier.2.bias"]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)  # given every parameter: skips frozen
    x = mc.Tensor(backend.to_device(np.random.default_rng(0).random((4, 1, 8, 8), np.float32), device))
    y = backend.to_device(np.array([0, 1, 2, 0]), device)
    grads = grads_after_step(model, x, y)
    assert all(grads[n] is None for n in frozen)          # no gradient computed for frozen layers
    assert grads["classifier.2.weight"] is not None
    opt.step()
    after = model.state_dict()
    for n in frozen:
        np.testing.assert_array_equal(after[n], before[n])
    assert not np.array_equal(after["classifier.2.weight"], before["classifier.2.weight"])
    assert len(opt.state) == 2
    with pytest.raises(ValueError, match="no layer 'nope'"):
        freeze(model, upto="nope")
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())


def test_train_only_head_trains_only_the_head(tmp_path):
    mc.manual_seed(0)
    model = TinyCNN()
    assert train_only_head(model) == "classifier.2"
    params = trainable_parameters(model)
    assert len(params) == 2
    before = {k: v.copy() for k, v in model.state_dict().items()}
    train, test = loaders()
    Trainer(model, optim.SGD(params, lr=0.1), train, test, epochs=1, progress=False,
            verbose=False).fit()
    after = model.state_dict()
    changed = sorted(k for k in after if not np.array_equal(after[k], before[k]))
    # the head learns; batch norm's running statistics still follow the data (as in PyTorch)
    assert [k for k in changed if k.startswith("classifier")] == ["classifier.2.bias",
                                                                  "classifier.2.weight"]
    assert all(k.startswith("features.1.") and "running" in k or "num_batches" in k
               for k in changed if not k.startswith("classifier"))


@pytest.mark.parametrize("source", ["state_dict", "checkpoint", "dict"])
def test_load_pretrained_with_a_new_number_of_classes(tmp_path, source):
    mc.manual_seed(0)
    pretrained = models.lenet5(num_classes=10)
    path = tmp_path / "weights.npz"
    if source == "state_dict":
        mc.save(pretrained.state_dict(), path)
    elif source == "checkpoint":
        save_checkpoint(path, pretrained, epoch=3, config={"model": "lenet5"})
    else:
        path = pretrained.state_dict()
    mc.manual_seed(1)
    model = models.lenet5(num_classes=5)
    load_pretrained(model, path, num_classes=5)
    state, ref = model.state_dict(), pretrained.state_dict()
    for k in ref:
        if not k.startswith("classifier.2."):
            np.testing.assert_array_equal(state[k], ref[k])
    assert state["classifier.2.weight"].shape == (5, 84)
    assert set(read_state_dict(path)) == set(ref)


def test_load_pretrained_same_classes_loads_everything(tmp_path):
    mc.manual_seed(0)
    pretrained = models.lenet5()
    mc.save(pretrained.state_dict(), tmp_path / "w.npz")
    model = load_pretrained(models.lenet5(), tmp_path / "w.npz")
    for k, v in pretrained.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    with pytest.raises(ValueError):
        load_pretrained(models.resnet20(), tmp_path / "w.npz")  # another architecture
