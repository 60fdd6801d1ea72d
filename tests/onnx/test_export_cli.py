"""``minicnn export``: runs/latest (or a weights file with --model) to model.onnx, with the
inputs, outputs, opset and onnxruntime's largest difference printed."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import models
from minicnn.cli import main
from minicnn.train.checkpoint import save_checkpoint

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_default_exports_runs_latest(tmp_path, monkeypatch, capsys):
    mc.manual_seed(0)
    model = models.lenet5(num_classes=5)
    config = {"model": "lenet5", "dataset": "fashion-mnist", "num_classes": 5, "in_channels": 1}
    save_checkpoint(tmp_path / "runs" / "run1" / "checkpoint.npz", model, config=config)
    os.symlink("run1", tmp_path / "runs" / "latest")
    monkeypatch.chdir(tmp_path)
    assert main(["export"]) == 0
    printed = capsys.readouterr().out
    assert "input  image  float32[batch, 1, 28, 28]" in printed
    assert "output logits  float32[batch, 5]" in printed
    assert "opset  17 (IR version 8)" in printed
    difference = float(printed.split("largest difference ")[1].split()[0])
    assert difference < 1e-5
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    weight = next(i for i in graph.initializer if i.name == "features.0.weight")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(weight), model.features[0].weight.data)


def test_a_safetensors_weights_file_with_model(tmp_path, capsys):
    mc.manual_seed(0)
    mc.save(models.fashion_cnn().state_dict(), tmp_path / "w.safetensors")
    out = tmp_path / "f.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "w.safetensors"), "--model", "fashion_cnn",
                 "--out", str(out), "--opset", "18", "--static-batch", "--batch-size", "3"]) == 0
    printed = capsys.readouterr().out
    assert "float32[3, 10]" in printed and "opset  18" in printed
    assert out.exists()


def test_errors_are_one_line(tmp_path, capsys):
    mc.save(models.lenet5().state_dict(), tmp_path / "w.npz")
    assert main(["export", "--checkpoint", str(tmp_path / "w.npz")]) == 1
    assert "holds no run config: give --model NAME" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp_path / "w.npz"), "--model", "resnet20"]) == 1
    assert "missing key(s)" in capsys.readouterr().err
