"""``summary``: the lecture's tables (AlexNet, ZFNet), row keys, MACs, and that nothing is left changed."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import models, nn
from minicnn.summary import module_params, summary, totals

# The lecture's AlexNet table: (output shape, params) of the conv and FC layers. Its conv2 row counts
# the two-GPU split (48 input channels per filter) while conv4/conv5 count full connectivity; the
# per-conv ``groups=(1, 2, 1, 1, 1)`` reproduces it exactly.
LECTURE_ALEXNET = [
    ((96, 55, 55), 34_944),
    ((256, 27, 27), 307_456),
    ((384, 13, 13), 885_120),
    ((384, 13, 13), 1_327_488),
    ((256, 13, 13), 884_992),
    ((4096,), 37_752_832),
    ((4096,), 16_781_312),
    ((1000,), 4_097_000),
]


@pytest.fixture(scope="module")
def alexnet_rows(constant_init):
    with constant_init():
        model = models.alexnet(groups=(1, 2, 1, 1, 1))
    lines = []
    rows = summary(model, (3, 227, 227), print_fn=lines.append)
    return model, rows, lines


def test_alexnet_reproduces_the_lecture_table(alexnet_rows):
    model, rows, lines = alexnet_rows
    weighted = [(r["output_shape"], r["params"]) for r in rows if r["type"] in ("Conv2d", "Linear")]
    assert weighted == LECTURE_ALEXNET
    pools = [r["output_shape"] for r in rows if r["type"] == "MaxPool2d"]
    assert pools == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert [r["type"] for r in rows[:4]] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert rows[0]["name"] == "features.0" and rows[-1]["name"] == "classifier.6"
    text = "\n".join(lines)
    assert "Total params:      62,071,144" in text
    assert "96x55x55" in text and "Activation memory" in text and "Parameter memory" in text


def test_alexnet_macs(alexnet_rows):
    _, rows, _ = alexnet_rows
    conv1 = rows[0]
    assert conv1["macs"] == 96 * 55 * 55 * 3 * 11 * 11              # 105,415,200
    fc6 = [r for r in rows if r["type"] == "Linear"][0]
    assert fc6["macs"] == 9216 * 4096
    assert all(r["macs"] == 0 for r in rows if r["type"] not in ("Conv2d", "Linear"))
    grouped = [r for r in rows if r["type"] == "Conv2d"][1]
    assert grouped["macs"] == 256 * 27 * 27 * 48 * 5 * 5


def test_alexnet_groups_1_and_2_conv_rows():
    for groups, expected in [(1, [34_944, 614_656, 885_120, 1_327_488, 884_992]),
                             (2, [34_944, 307_456, 885_120, 663_936, 442_624])]:
        # widths keep the paper's; a small classifier keeps the build cheap
        model = models.AlexNet(groups=groups, hidden=8, num_classes=4)
        rows = summary(model, (3, 227, 227), print_fn=None)
        assert [r["params"] for r in rows if r["type"] == "Conv2d"] == expected


def test_zfnet_feature_map_sizes():
    model = models.zfnet(hidden=8)   # the conv stack of Fig. 3 with a small classifier
    rows = summary(model, (3, 224, 224), print_fn=None)
    convs = [r["output_shape"] for r in rows if r["type"] == "Conv2d"]
    pools = [r["output_shape"] for r in rows if r["type"] == "MaxPool2d"]
    assert convs == [(96, 110, 110), (256, 26, 26), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert pools == [(96, 55, 55), (256, 13, 13), (256, 6, 6)]
    assert [r["params"] for r in rows if r["type"] == "Conv2d"] == [14_208, 614_656, 885_120,
                                                                    1_327_488, 884_992]


def test_rows_keys_types_and_mode_restored():
    model = models.resnet20(in_channels=1)
    model.train()
    rows = summary(model, (1, 28, 28), print_fn=None)
    for r in rows:
        assert {"name", "type", "output_shape", "params", "macs"} <= set(r)
        assert isinstance(r["output_shape"], tuple)
    assert rows[0] == {**rows[0], "name": "conv1", "type": "Conv2d", "output_shape": (16, 28, 28),
                       "params": 16 * 9}
    assert rows[-1]["name"] == "fc" and rows[-1]["output_shape"] == (10,)
    assert all(m.training for m in model.modules())                      # mode restored
    assert all("forward" not in m.__dict__ for m in model.modules())     # wrappers removed
    # a leaf that runs twice (the shared ReLU of a block) is listed twice
    assert sum(r["name"] == "layer1.0.relu" for r in rows) == 2
    t = totals(model, rows)
    assert t["params"] == 269_722 - 2 * 16 * 9       # one input channel instead of three
    assert t["macs"] == sum(r["macs"] for r in rows) > 0


def test_summary_of_a_single_layer_and_model_in_float64():
    conv = nn.Conv2d(3, 4, 3, groups=1).double()
    rows = summary(conv, (3, 5, 5), print_fn=None)
    assert rows == [{**rows[0], "name": "Conv2d", "type": "Conv2d", "output_shape": (4, 3, 3),
                     "params": 4 * 27 + 4, "macs": 4 * 3 * 3 * 27}]
    assert rows[0]["activation_bytes"] == 4 * 9 * 8


def test_summary_on_standin_device():
    model = models.lenet5().to("standin")
    rows = summary(model, (1, 28, 28), device="standin", print_fn=None)
    assert rows[-1]["output_shape"] == (10,)
    assert sum(r["params"] for r in rows) == 61_706


def test_googlenet_eval_summary_skips_aux_but_counts_them():
    model = models.googlenet(aux_logits=True, width=0.125, num_classes=10)
    lines = []
    rows = summary(model, (3, 224, 224), print_fn=lines.append)
    assert not any(r["name"].startswith("aux") for r in rows)
    assert rows[-1]["name"] == "fc" and rows[-1]["output_shape"] == (10,)
    assert any("did not run" in line for line in lines)


def test_module_params_per_block():
    model = models.resnet20()
    top = dict((n, p) for n, _, p in module_params(model, max_depth=1))
    assert set(top) == {"conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool", "fc"}
    assert sum(top.values()) == 269_722
    assert top["layer1"] == 3 * (2 * 16 * 16 * 9 + 2 * 32)
    blocks = [(n, t) for n, t, _ in module_params(model, max_depth=2) if n.startswith("layer2.")]
    assert blocks[0] == ("layer2.0", "CifarBasicBlock")
