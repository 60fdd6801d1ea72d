"""Every model of API.md: its exact parameter count, its torchvision layout, and its output shape.

Each full-size model is built exactly once (a VGG holds ~140 M float32 weights, ~0.5 GB): the count,
the state-dict layout and a forward pass at a reduced input share one build, made with constant
initial values (``fast_init``, see conftest.py) so that no time goes into drawing random numbers.
"""
import gc
import hashlib

import numpy as np
import pytest

import minicnn as mc
from minicnn import models

# API.md's numbers (and torchvision's, for the models in its layout).
EXPECTED_PARAMS = {
    "alexnet": 62_378_344,
    "zfnet": 62_357_608,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
    "googlenet": 6_998_552,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
    "resnet110": 1_727_962,
    "plain20": 269_722, "plain32": 464_154, "plain44": 658_586, "plain56": 853_018, "plain110": 1_727_962,
    "densenet121": 7_978_856, "densenet161": 28_681_000, "densenet169": 14_149_480,
    "densenet201": 20_013_928, "densenet_bc100": 769_162,
    "lenet5": 61_706,
    "fashion_cnn": 207_098,
}

# Variants named in API.md.
EXPECTED_VARIANTS = [
    ("alexnet", {"groups": 2}, 60_965_224),
    ("alexnet", {"groups": (1, 2, 1, 1, 1)}, 62_071_144),   # the lecture's per-layer table
    ("googlenet", {"aux_logits": True}, 13_378_280),
    ("zfnet", {"conv345": (512, 1024, 512)}, 107_627_624),
]

# torchvision's state dict (without num_batches_tracked): number of entries and sha1 of the
# ordered "key:shape" lines, computed from torchvision 0.29 (tools: see _layout_fingerprint).
TORCHVISION_LAYOUT = {
    "vgg11": (22, "ebbbec7b9ff4ddff"),
    "vgg13": (26, "b545a0fa8eeb0eb1"),
    "vgg16": (32, "b1cea435dd254674"),
    "vgg19": (38, "8182a53d5b7ba872"),
    "vgg11_bn": (54, "5c48834ec9c4a409"),
    "vgg13_bn": (66, "97f3ee9111c6312b"),
    "vgg16_bn": (84, "987607fbcd240190"),
    "vgg19_bn": (102, "3a709f0cedab9304"),
    "resnet18": (102, "b466b7a54e5b27c7"),
    "resnet34": (182, "6eaedf5dd426505d"),
    "resnet50": (267, "9b9018f56b30c428"),
    "resnet101": (522, "dad14ef946a13660"),
    "resnet152": (777, "9c3e24f2b3a93f56"),
    "densenet121": (606, "01cc3b09ee9941f0"),
    "densenet161": (806, "924f82b517acc01e"),
    "densenet169": (846, "9c8f6a9f5b74cf1f"),
    "densenet201": (1006, "e433c9eceec8f0ce"),
}

# A cheap forward pass per model: (input shape without batch, expected output shape without batch).
# ImageNet models run at a reduced size where the architecture allows it (adaptive pooling).
FORWARD = {
    "alexnet": None,                       # 227x227 only: covered by the summary tests
    "zfnet": None,                         # 224x224 only: covered by the summary tests
    "googlenet": ((3, 64, 64), (1000,)),
    "lenet5": ((1, 28, 28), (10,)),
    "fashion_cnn": ((1, 28, 28), (10,)),
}
for _n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "densenet121", "densenet161", "densenet169", "densenet201"):
    FORWARD[_n] = ((3, 32, 32), (1000,))
for _n in ("vgg11", "vgg16_bn"):          # the other VGGs' layouts equal torchvision's (fingerprint)
    FORWARD[_n] = ((3, 32, 32), (1000,))
for _n in ("vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg19_bn"):
    FORWARD[_n] = None
for _n in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "plain20", "plain32", "plain44", "plain56", "plain110", "densenet_bc100"):
    FORWARD[_n] = ((3, 32, 32), (10,))

API_NAMES = ["alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
             "vgg16_bn", "vgg19_bn", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101",
             "resnet152", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain20",
             "plain32", "plain44", "plain56", "plain110", "densenet121", "densenet161", "densenet169",
             "densenet201", "densenet_bc100", "lenet5"]

SLOW = {"resnet110", "plain110", "resnet152", "densenet201", "densenet161", "densenet169",
        "vgg13", "vgg13_bn", "vgg19", "vgg19_bn"}


def _layout_fingerprint(state):
    lines = [f"{k}:{tuple(v.shape)}" for k, v in state.items() if not k.endswith("num_batches_tracked")]
    return len(lines), hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]


def test_names_cover_the_api():
    assert set(API_NAMES) <= set(models.names())
    assert models.default_model_name == "fashion_cnn"
    assert models.default_model_name in models.names()
    assert set(models.names()) == set(EXPECTED_PARAMS)


def test_get_builds_by_name_and_rejects_unknown():
    m = models.get("resnet20", num_classes=3, in_channels=1)
    assert isinstance(m, models.CifarResNet)
    assert m.fc.weight.shape == (3, 64) and m.conv1.weight.shape == (16, 1, 3, 3)
    assert type(models.get("ResNet-20")) is models.CifarResNet
    with pytest.raises(ValueError, match="unknown model"):
        models.get("resnet7")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in EXPECTED_PARAMS])
def test_full_model_count_layout_and_forward(name, fast_init):
    model = models.get(name)
    assert model.num_parameters() == EXPECTED_PARAMS[name]
    if name in TORCHVISION_LAYOUT:
        assert _layout_fingerprint(model.state_dict()) == TORCHVISION_LAYOUT[name]
    spec = FORWARD[name]
    if spec is not None:
        in_shape, out_shape = spec
        x = mc.Tensor(np.random.default_rng(0).standard_normal((2,) + in_shape).astype(np.float32))
        model.eval()
        with mc.no_grad():
            y = model(x)
        assert y.shape == (2,) + out_shape
        assert np.isfinite(y.numpy()).all()
    del model
    gc.collect()


@pytest.mark.parametrize("name,kwargs,count", EXPECTED_VARIANTS)
def test_variant_counts(name, kwargs, count, fast_init):
    model = models.get(name, **kwargs)
    assert model.num_parameters() == count
    del model
    gc.collect()


@pytest.mark.parametrize("name", ["resnet20", "plain20", "densenet_bc100", "lenet5", "fashion_cnn"])
def test_small_models_take_fashion_mnist(name):
    """CIFAR/MNIST-size models accept 28x28 single-channel images given ``in_channels=1``."""
    model = models.get(name, in_channels=1, num_classes=10).eval()
    x = mc.Tensor(np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32))
    with mc.no_grad():
        assert model(x).shape == (2, 10)


def test_constructors_take_num_classes_and_in_channels():
    for name in ["lenet5", "fashion_cnn", "resnet20", "plain20", "densenet_bc100"]:
        m = models.get(name, num_classes=7, in_channels=2)
        first = next(iter(m.parameters()))
        assert first.shape[1] == 2, name
        with mc.no_grad():
            out = m.eval()(mc.Tensor(np.zeros((1, 2, 28, 28), np.float32)))
        assert out.shape == (1, 7), name


def test_input_size():
    assert models.input_size("alexnet") == (3, 227, 227)
    assert models.input_size("resnet50") == (3, 224, 224)
    assert models.input_size("resnet20") == (3, 32, 32)
    assert models.input_size("lenet5") == (1, 28, 28)
    assert models.input_size("resnet20", in_channels=1) == (1, 32, 32)
