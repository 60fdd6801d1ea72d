"""``minicnn train`` / ``minicnn evaluate`` through train_main/evaluate_main (as minicnn/cli.py
calls them), on a small Fashion-MNIST subset."""
import json
import re

import numpy as np
import pytest

import minicnn as mc
from minicnn.train import args as train_args, config as train_config, run as train_run
from minicnn.train import load_checkpoint
from minicnn.train.trainer import Trainer

from train_helpers import FASHION_DIR, needs_fashion

pytestmark = needs_fashion

QUICK = ["--model", "lenet5", "--data-root", str(FASHION_DIR), "--lr", "0.1", "--batch-size", "32",
         "--quiet"]


def train(*args):
    return train_run.train_main(train_args.parse_train_args(QUICK + [str(a) for a in args]))


def test_end_to_end_learns_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--subset", 2000, "--test-subset", 1000, "--epochs", 1, "--out", out) == 0
    records = json.loads((out / "metrics.json").read_text())
    assert len(records) == 1
    r = records[0]
    for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr",
                "seconds"):
        assert key in r
    assert r["epoch"] == 1 and r["lr"] == 0.1
    assert r["test_acc"] > 0.60, r  # a real classifier after 2000 images (chance: 10%)
    assert r["test_top5"] > 0.9
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "lenet5" and config["num_classes"] == 10 and config["in_channels"] == 1
    assert {"confusion.json", "confusion.csv", "checkpoint.npz"} <= {p.name for p in out.iterdir()}
    final = capsys.readouterr().out
    assert f"{100 * r['test_acc']:.2f}%" in final

    # evaluate rebuilds the model from the checkpoint's config: same subset, same numbers
    status = train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(out), "--data-root", str(FASHION_DIR), "--subset", "1000", "--quiet",
         "--out", str(tmp_path / "eval")]))
    assert status == 0
    text = capsys.readouterr().out
    assert f"top-1 {100 * r['test_acc']:.2f}%" in text
    assert "confusion matrix" not in text  # --quiet: only the result line
    assert "Ankle boot" in (tmp_path / "eval" / "confusion.json").read_text()
    ev = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert ev["test_acc"] == pytest.approx(r["test_acc"]) and ev["n"] == 1000


def test_default_out_dir_latest_link_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("--subset", 256, "--test-subset", 128, "--epochs", 1) == 0
    runs = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert len(runs) == 1 and re.fullmatch(r"lenet5-\d{8}-\d{6}", runs[0].name)
    assert (tmp_path / "runs" / "latest").resolve() == runs[0].resolve()
    first = json.loads((runs[0] / "metrics.json").read_text())

    assert train("--resume", "--epochs", 2) == 0  # runs/latest, one more epoch
    records = json.loads((runs[0] / "metrics.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2] and records[0] == first[0]
    assert load_checkpoint(runs[0]).epoch == 2
    assert train("--resume", runs[0] / "checkpoint.npz") == 0  # nothing left to do
    assert "nothing to do" in capsys.readouterr().out


def test_interrupted_run_resumes_bit_identically(tmp_path, monkeypatch):
    common = ("--subset", 256, "--test-subset", 128, "--epochs", 2, "--augment", "flip,crop")
    assert train(*common, "--out", tmp_path / "straight") == 0

    real_run_epoch = Trainer.run_epoch

    def stop_at_two(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_run_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "run_epoch", stop_at_two)
    assert train(*common, "--out", tmp_path / "split") == 130
    assert load_checkpoint(tmp_path / "split").epoch == 1
    monkeypatch.setattr(Trainer, "run_epoch", real_run_epoch)
    mc.manual_seed(777)
    assert train("--resume", tmp_path / "split") == 0

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a.epoch == b.epoch == 2
    for k in a.model:
        np.testing.assert_array_equal(a.model[k], b.model[k], err_msg=k)
    for k in a.optimizer:
        np.testing.assert_array_equal(a.optimizer[k], b.optimizer[k], err_msg=k)
    assert a.rng_state == b.rng_state
    assert [r["test_loss"] for r in a.metrics] == [r["test_loss"] for r in b.metrics]


def test_finetune_from_a_checkpoint(tmp_path):
    assert train("--subset", 256, "--test-subset", 128, "--epochs", 1, "--out", tmp_path / "pre") == 0
    pre = load_checkpoint(tmp_path / "pre").model
    assert train("--subset", 256, "--test-subset", 128, "--epochs", 1, "--out", tmp_path / "head",
                 "--pretrained", tmp_path / "pre" / "checkpoint.npz", "--train-only", "head",
                 "--num-classes", 12) == 0
    tuned = load_checkpoint(tmp_path / "head")
    assert tuned.model["classifier.2.weight"].shape == (12, 84)
    for k, v in pre.items():
        if not k.startswith("classifier.2."):
            np.testing.assert_array_equal(tuned.model[k], v, err_msg=k)
    assert train("--subset", 256, "--test-subset", 128, "--epochs", 1, "--out", tmp_path / "frz",
                 "--pretrained", tmp_path / "pre", "--freeze", "features") == 0
    frz = load_checkpoint(tmp_path / "frz").model
    for k in pre:
        same = np.array_equal(frz[k], pre[k])
        assert same == k.startswith("features."), k


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_exits_with_status_3(tmp_path, capsys):
    status = train("--subset", 256, "--test-subset", 64, "--epochs", 1, "--lr", 1e30,
                   "--out", tmp_path)
    err = capsys.readouterr().err
    assert status == 3 and "diverged at epoch 1, step" in err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_usage_errors(tmp_path, capsys):
    assert train("--model", "nonet", "--out", tmp_path / "a") == 1
    assert "unknown model 'nonet'" in capsys.readouterr().err
    assert train_run.train_main(train_args.parse_train_args(["--dataset", "cifar10", "--quiet"])) == 1
    assert "--data-root" in capsys.readouterr().err
    assert train("--resume", tmp_path / "nowhere") == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert train("--subset", 64, "--freeze", "nolayer", "--out", tmp_path / "c") == 1
    assert "no layer 'nolayer'" in capsys.readouterr().err
    assert train("--augment", "flip,rotate", "--out", tmp_path / "d") == 1
    assert "unknown augmentation(s) rotate" in capsys.readouterr().err
    if not mc.cuda.is_available():
        assert train("--device", "cuda", "--out", tmp_path / "e") == 1
        assert "CuPy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_args.parse_train_args(["--augment"])
    weights = tmp_path / "w.npz"
    from minicnn import models
    mc.save(models.lenet5().state_dict(), weights)
    assert train_run.evaluate_main(train_args.parse_evaluate_args(["--checkpoint", str(weights)])) == 1
    assert "--model" in capsys.readouterr().err


def test_plain_weights_evaluate_with_model_name(tmp_path, capsys):
    from minicnn import models
    mc.manual_seed(0)
    mc.save(models.lenet5().state_dict(), tmp_path / "w.npz")
    status = train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(tmp_path / "w.npz"), "--model", "lenet5", "--subset", "200",
         "--data-root", str(FASHION_DIR), "--quiet"]))
    assert status == 0 and "(200 images)" in capsys.readouterr().out


def test_defaults_are_the_documented_recipe():
    args = train_args.parse_train_args([])
    config, resume, notes, replan = train_config.resolve_config(args)
    from minicnn import models
    assert config["model"] == models.default_model_name and config["dataset"] == "fashion-mnist"
    assert config["epochs"] == train_config.DEFAULT_EPOCHS and config["batch_size"] == 128
    assert config["optimizer"] == "sgd" and config["lr"] == train_config.DEFAULT_LR["sgd"]
    assert config["schedule"] == "cosine" and resume is None and not notes and not replan
