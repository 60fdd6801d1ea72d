"""Assignment 3's solution agrees with the framework it teaches: the dense block with
``minicnn.models.densenet``'s on the same weights, ``densenet_params`` with counting a real
``minicnn.models.DenseNet`` (the public DenseNet-121 and the hidden grader's configurations),
``batchnorm`` with ``nn.BatchNorm1d``/``nn.BatchNorm2d`` switched from ``train()`` to ``eval()``;
bad input is named; ``experiment.py --seed`` changes the run and repeats it exactly."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DenseNet
from minicnn.models.densenet import _DenseBlock

FOLDER = Path(__file__).resolve().parents[2] / "assignments" / "assignment3"


def load(name):
    spec = importlib.util.spec_from_file_location(f"assignment3_{name}", FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


blocks, counting = load("blocks"), load("counting")


def test_the_dense_block_equals_minicnns_on_the_same_weights():
    mc.manual_seed(5)
    mine = blocks.DenseBlock(3, 4, growth_rate=3, bn_size=2).double()
    mc.manual_seed(6)
    theirs = _DenseBlock(3, 4, bn_size=2, growth_rate=3).double()
    # The same layers under other names: denselayer1.norm1.weight -> layers.0.norm1.weight.
    renamed = {}
    for key, value in theirs.state_dict().items():
        layer, rest = key.split(".", 1)
        renamed[f"layers.{int(layer[len('denselayer'):]) - 1}.{rest}"] = value
    mine.load_state_dict(renamed)
    x = np.random.default_rng(7).standard_normal((2, 4, 5, 6))
    dout = np.random.default_rng(8).standard_normal((2, 13, 5, 6))
    results = []
    for block in (mine, theirs):
        inputs = mc.Tensor(x.copy(), requires_grad=True)
        out = block(inputs)
        out.backward(dout)
        results.append((out.numpy(), inputs.grad, block.state_dict()))
    (out, dx, state), (ref_out, ref_dx, ref_state) = results
    assert out.shape == (2, 4 + 3 * 3, 5, 6) and mine.out_channels == 13
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[:, :4], x)                 # the input, unchanged, in front
    running = [v for k, v in state.items() if k.endswith("running_var")]
    ref_running = [v for k, v in ref_state.items() if k.endswith("running_var")]
    for a, b in zip(running, ref_running):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("args, kwargs", [
    ((32, (6, 12, 24, 16), 64), {}),                            # DenseNet-121: the public check
    ((48, (6, 12, 36, 24), 96), {}),                            # two of the hidden check's (169 and
    ((12, (3, 4, 5), 16), dict(bn_size=2, compression=0.7, num_classes=10, in_channels=1)),   # 201 differ
], ids=["densenet121", "densenet161", "small"])                 # from 121 only in block_config)
def test_densenet_params_counts_the_real_model(args, kwargs):
    model = DenseNet(*args, **kwargs)
    counted = sum(int(p.numpy().size) for p in model.parameters())
    assert counting.densenet_params(*args, **kwargs) == counted
    if args == (32, (6, 12, 24, 16), 64):
        assert counted == 7978856                               # torchvision's DenseNet-121


def test_densenet_params_names_a_bad_configuration():
    with pytest.raises(ValueError, match=r"expected 0 < compression <= 1, got 0"):
        counting.densenet_params(32, (6, 12), 64, compression=0)
    with pytest.raises(ValueError, match=r"at least one block of at least one layer"):
        counting.densenet_params(32, (), 64)


@pytest.mark.parametrize("layer_class, shape, momentum, eps", [
    (nn.BatchNorm1d, (7, 3), 0.1, 1e-5),
    (nn.BatchNorm1d, (5, 4), 0.3, 1e-3),
    (nn.BatchNorm2d, (2, 3, 4, 5), 0.1, 1e-5),
])
def test_batchnorm_equals_minicnns_in_train_then_eval_mode(layer_class, shape, momentum, eps):
    rng = np.random.default_rng(9)
    channels = shape[1]
    layer = layer_class(channels, momentum=momentum, eps=eps).double()
    gamma, beta = rng.standard_normal(channels), rng.standard_normal(channels)
    layer.weight.data[...], layer.bias.data[...] = gamma, beta

    def flat(x):        # (N, C, H, W) -> (N * H * W, C), as the docstring of batchnorm_forward says
        return x if x.ndim == 2 else x.transpose(0, 2, 3, 1).reshape(-1, channels)

    running_mean, running_var = np.zeros(channels), np.ones(channels)
    for _ in range(4):
        x = 1.5 + 2 * rng.standard_normal(shape)
        out, running_mean, running_var = blocks.batchnorm(flat(x), gamma, beta, running_mean, running_var,
                                                          True, momentum=momentum, eps=eps)
        np.testing.assert_allclose(out, flat(layer(mc.Tensor(x)).numpy()), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(running_mean, layer.running_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(running_var, layer.running_var, rtol=1e-12)
    layer.eval()
    x = rng.standard_normal((1,) + shape[1:])                    # test mode: even one example
    before = running_mean.copy(), running_var.copy()
    out, after_mean, after_var = blocks.batchnorm(flat(x), gamma, beta, running_mean, running_var, False,
                                                  momentum=momentum, eps=eps)
    np.testing.assert_allclose(out, flat(layer(mc.Tensor(x)).numpy()), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(after_mean, before[0])
    np.testing.assert_array_equal(after_var, before[1])


def test_batchnorm_names_bad_input():
    gamma, beta, mean, var = np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"training mode needs at least 2 examples .* shape \(1, 3\)"):
        blocks.batchnorm(np.ones((1, 3)), gamma, beta, mean, var, True)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, D\), got shape \(2, 3, 4\)"):
        blocks.batchnorm(np.ones((2, 3, 4)), gamma, beta, mean, var, False)


def test_the_experiments_seed_changes_the_run_and_repeats_it_and_the_refresh_changes_no_weight(
        tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "blocks", blocks)          # experiment.py: from blocks import ...
    experiment = load("experiment")
    runs = {}
    for name, flags in (("a", ["--seed", "1"]), ("b", ["--seed", "1"]), ("c", ["--seed", "2"]),
                        ("d", ["--seed", "1", "--no-refresh"])):
        out = tmp_path / name
        out.mkdir()
        experiment.main(["--quick", "--synthetic", "--steps", "2", "--out", str(out)] + flags)
        runs[name] = json.loads((out / "degradation.json").read_text())

    def curves(name):
        return [r["curve"] for r in runs[name].values()]
    for name in ("a", "b"):
        for results in runs[name].values():
            del results["seconds"]                              # wall time: the only difference
    assert runs["a"] == runs["b"]                               # the same seed: the same run
    assert curves("a") != curves("c")                           # another seed: another run
    assert curves("a") == curves("d")                           # the refresh trains nothing
    assert {r["refreshed_batch_norm"] for r in runs["a"].values()} == {True}
    assert {r["refreshed_batch_norm"] for r in runs["d"].values()} == {False}
