"""``minicnn explain`` on a tiny run (lenet5, one epoch on a 64-image Fashion-MNIST look-alike),
and the attribution methods on a model wrapped in ``DistributedDataParallel``."""
import argparse
import json
import os
import sys

import numpy as np
import pytest

import minicnn as mc
import minicnn.distributed as dist
from minicnn import explain_cli, interpret, models, nn
from minicnn.cli import main
from minicnn.data.idx import write_idx


def fake_fashion(folder, n_train=64, n_test=32):
    """IDX files shaped like Fashion-MNIST's: random images, labels 0..9 in turn."""
    gen = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", gen.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(data folder, run folder)`` of a one-epoch lenet5 run."""
    root = tmp_path_factory.mktemp("explain")
    data = fake_fashion(root / "data")
    assert main(["train", "--model", "lenet5", "--data-root", str(data), "--batch-size", "16", "--epochs", "1",
                 "--out", str(root / "run"), "--quiet"]) == 0
    return data, root / "run"


def explain(data, *argv):
    return main(["explain", *map(str, argv), "--data-root", str(data)])


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_explain_writes_one_png_per_method_and_touches_nothing_else(run, capsys):
    pytest.importorskip("matplotlib")
    data, folder = run
    before = {p: os.path.getmtime(folder / p) for p in os.listdir(folder)}
    assert explain(data, folder, "--images", 4) == 0
    out = capsys.readouterr().out
    written = sorted(os.listdir(folder / "explain"))
    assert written == sorted([f"{m}.png" for m in explain_cli.METHODS] + ["explain.json"])
    for method in explain_cli.METHODS:
        assert (folder / "explain" / f"{method}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {folder / 'explain' / method}.png" in out
    assert {p: os.path.getmtime(folder / p) for p in before} == before      # the run's files untouched
    facts = json.loads((folder / "explain" / "explain.json").read_text())
    assert facts["layer"] == "features.3" and len(facts["images"]) == 4   # lenet5's last conv layer
    lines = [line for line in out.splitlines() if line.strip().startswith("test image")]
    assert len(lines) == 4
    for line, image in zip(lines, facts["images"]):
        assert f"true {image['true']}" in line and f"predicted {image['predicted']}" in line
        assert f"p {image['p_predicted']:.2f}" in line
        assert ("WRONG" in line) == (image["true"] != image["predicted"])


def test_methods_layer_and_out_are_chosen(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data, folder = run
    out = tmp_path / "pictures"
    assert explain(data, "--checkpoint", folder / "checkpoint.npz", "--methods", "occlusion", "gradcam",
                   "--layer", "features.0", "--images", 2, "--out", out) == 0
    assert sorted(os.listdir(out)) == ["explain.json", "gradcam.png", "occlusion.png"]
    assert json.loads((out / "explain.json").read_text())["layer"] == "features.0"


@pytest.mark.parametrize("layer, message", [
    ("features.9", "--layer features.9: lenet5 has no such layer; its conv layers are features.0, features.3, "
                   "features.6"),
    ("classifier.0", "--layer classifier.0: its output has shape (1, 84), not feature maps (N, C, h, w); "
                     "choose a conv layer: features.0, features.3, features.6"),
])
def test_a_wrong_layer_is_one_line_naming_the_valid_ones(run, tmp_path, capsys, layer, message):
    pytest.importorskip("matplotlib")
    data, folder = run
    assert explain(data, folder, "--layer", layer, "--out", tmp_path / "x") == 1
    assert one_line_error(capsys) == f"error: {message}"


def test_bad_runs_give_the_same_error_as_evaluate(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data, _ = run
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    for bad in (tmp_path / "missing", damaged):
        assert main(["evaluate", "--checkpoint", str(bad), "--data-root", str(data), "--quiet"]) == 1
        expected = one_line_error(capsys)
        assert explain(data, bad) == 1
        assert one_line_error(capsys) == expected
    assert not (damaged / "explain").exists()


def test_an_out_that_is_a_file_is_refused(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data, folder = run
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert explain(data, folder, "--out", target) == 1
    assert one_line_error(capsys) == f"error: --out {target}: this is a file, not a folder"
    assert target.read_text() == "keep me"


def test_without_matplotlib_one_line_says_it_is_needed(run, tmp_path, monkeypatch, capsys):
    data, folder = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)    # find_spec then reports it missing
    assert explain(data, folder, "--out", tmp_path / "x") == 1
    assert one_line_error(capsys) == ("error: minicnn explain draws its pictures with matplotlib, which is "
                                      "not installed: pip install 'minicnn[plot]'")
    assert not (tmp_path / "x").exists()


def test_examples_are_half_wrong_and_correct_ones_of_different_classes():
    true = np.array([0, 0, 1, 2, 3, 1, 4, 5])
    pred = np.array([0, 0, 2, 2, 0, 1, 1, 5])          # wrong at 2, 4, 6
    assert explain_cli.choose_examples(pred, true, 4).tolist() == [0, 2, 3, 4]
    assert explain_cli.choose_examples(pred, true, 1).tolist() == [0]
    assert explain_cli.choose_examples(pred, pred, 3).tolist() == [0, 2, 5]       # none wrong: classes 0, 2, 1
    assert explain_cli.choose_examples(pred, pred + 1, 3).tolist() == [0, 1, 2]   # none right


class OneRank:
    """A process group of one process (no MPI): every collective leaves the data as it is."""
    name, size, rank = "mpi", 1, 0

    def all_reduce(self, array, op):
        pass

    def broadcast(self, array, src):
        pass

    def barrier(self):
        pass


def test_attributions_of_a_ddp_wrapped_model_are_the_inner_models(monkeypatch):
    monkeypatch.setattr(dist, "_group", OneRank())
    mc.manual_seed(0)
    bare = models.get("fashion_cnn").eval()
    ddp = nn.parallel.DistributedDataParallel(bare).eval()
    x = mc.randn(2, 1, 28, 28)
    layer = bare.features[4]                               # a layer of the inner model
    methods = {
        "Saliency": lambda m: interpret.Saliency(m).attribute(x, target=[1, 2]),
        "InputXGradient": lambda m: interpret.InputXGradient(m).attribute(x, target=1),
        "GuidedBackprop": lambda m: interpret.GuidedBackprop(m).attribute(x, target=1),
        "LayerActivation": lambda m: interpret.LayerActivation(m, layer).attribute(x),
        "LayerGradCam": lambda m: interpret.LayerGradCam(m, layer).attribute(x, target=1),
        "Occlusion": lambda m: interpret.Occlusion(m).attribute(x, (1, 7, 7), strides=(1, 7, 7), target=1),
    }
    for name, method in methods.items():
        expected = method(bare).numpy()
        assert np.array_equal(method(ddp).numpy(), expected), name
        assert np.abs(expected).max() > 0, name
    fooled = interpret.make_fooling_image(ddp, x[:1], 3)
    with mc.no_grad():
        assert int(bare(fooled).argmax()) == 3
    assert all(p.grad is None for p in bare.parameters())   # no gradient averaging ran
    with pytest.raises(ValueError, match="layer Linear is not part of the model"):
        interpret.LayerGradCam(ddp, nn.Linear(2, 2))


def test_the_standin_device_explains_the_same_images(run, tmp_path, capsys):
    """The CUDA code path (arrays on a device, moved back for the pictures) on the CPU stand-in."""
    pytest.importorskip("matplotlib")
    import minicnn.testing  # noqa: F401  (registers the stand-in device)
    data, folder = run
    facts = {}
    for device in ("cpu", "standin"):
        args = explain_cli.add_explain_arguments(argparse.ArgumentParser()).parse_args(
            [str(folder), "--data-root", str(data), "--images", "2", "--methods", "saliency", "gradcam",
             "--out", str(tmp_path / device)])
        args.device = device                      # not a choice on the command line: a test device
        assert explain_cli.explain_main(args) == 0
        facts[device] = json.loads((tmp_path / device / "explain.json").read_text())["images"]
    assert [i["test_index"] for i in facts["cpu"]] == [i["test_index"] for i in facts["standin"]]
    assert np.allclose([i["p_predicted"] for i in facts["cpu"]], [i["p_predicted"] for i in facts["standin"]],
                       atol=1e-5)
    assert sorted(os.listdir(tmp_path / "standin")) == ["explain.json", "gradcam.png", "saliency.png"]
