"""``minicnn train`` / ``evaluate`` on bad input: one clear line and the documented exit status
(0 done, 1 bad usage or input, 2 argparse, 3 diverged, 130 interrupted), never a traceback.

Runs on a tiny Fashion-MNIST look-alike written to tmp_path (64 training, 32 test images), so
every run takes a fraction of a second."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn.data.idx import write_idx
from minicnn.train import args as train_args, config as train_config, run as train_run
from minicnn.train import load_checkpoint, save_checkpoint
from minicnn.train import run as run_module
from minicnn.train.progress import ProgressBar
from minicnn.train.trainer import Trainer


def fake_fashion(folder, n_train=64, n_test=32, labels=10):
    """IDX files shaped like Fashion-MNIST's, with random images and labels 0..labels-1."""
    gen = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte",
                  gen.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte",
                  (np.arange(n) % labels).astype(np.uint8))
    return folder


@pytest.fixture
def data(tmp_path):
    return fake_fashion(tmp_path / "data")


def train(data, *args):
    argv = ["--model", "lenet5", "--data-root", str(data), "--batch-size", "16", "--quiet"]
    return train_run.train_main(train_args.parse_train_args(argv + [str(a) for a in args]))


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_the_run_opts_in_to_keeping_freed_memory(data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run_module, "keep_freed_memory", lambda: calls.append(1))
    assert train(data, "--epochs", 1, "--out", tmp_path / "run") == 0
    assert calls == [1]
    assert train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(tmp_path / "run"), "--data-root", str(data), "--quiet"])) == 0
    assert calls == [1, 1]


@pytest.mark.parametrize("argv, flag", [
    (["--warmup-epochs", "nan"], "--warmup-epochs"),
    (["--warmup-epochs", "inf"], "--warmup-epochs"),
    (["--seed", "-5"], "--seed"),
    (["--image-size", "100000"], "--image-size"),
    (["--lr", "-1"], "--lr"),
])
def test_impossible_values_are_argparse_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        train_args.parse_train_args(argv)
    assert info.value.code == train_run.EXIT_ARGPARSE == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_bad_values_from_python_are_usage_errors(data, tmp_path, capsys):
    args = train_args.parse_train_args(["--data-root", str(data), "--out", str(tmp_path / "x")])
    args.warmup_epochs = float("nan")
    assert train_run.train_main(args) == 1 and "--warmup-epochs" in one_line_error(capsys)
    args.warmup_epochs, args.seed = None, -5
    assert train_run.train_main(args) == 1 and "--seed" in one_line_error(capsys)


def test_data_root_must_exist_and_is_never_created(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    for dataset in ("fashion-mnist", "mnist"):
        assert train(missing, "--dataset", dataset, "--out", tmp_path / "o") == 1
        assert f"--data-root {missing}: no such folder" in one_line_error(capsys)
        assert not missing.exists()
    assert train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(tmp_path), "--data-root", str(missing)])) == 1


def test_too_few_classes_and_empty_test_set(tmp_path, data, capsys):
    assert train(data, "--num-classes", 5, "--out", tmp_path / "a") == 1
    assert "--num-classes 5" in (err := one_line_error(capsys)) and "at least 10" in err
    empty = fake_fashion(tmp_path / "empty", n_test=0)
    assert train(empty, "--out", tmp_path / "b") == 1
    assert "test set" in one_line_error(capsys)


def test_alexnet_on_fashion_mnist_suggests_the_image_size(data, tmp_path, capsys):
    assert train(data, "--model", "alexnet", "--out", tmp_path / "a") == 1
    assert "--image-size 227 --in-channels 3" in one_line_error(capsys)


def test_out_naming_a_file(data, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    assert train(data, "--out", target) == 1
    assert f"--out {target}: this is a file, not a folder" in one_line_error(capsys)


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train(data, "--epochs", 1, "--out", out) == 0
    good = load_checkpoint(out)

    def full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("minicnn.train.trainer.save_checkpoint", full)
    assert train(data, "--resume", out, "--epochs", 2) == 1
    err = one_line_error(capsys)
    assert f"{out / 'checkpoint.npz'}: No space left on device" in err
    assert "checkpoint of epoch 1" in err and "intact" in err
    kept = load_checkpoint(out)
    assert kept.epoch == 1
    for k in good.model:
        np.testing.assert_array_equal(kept.model[k], good.model[k])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_run_exits_3_and_keeps_the_good_checkpoint(data, tmp_path, monkeypatch, capsys):
    real = Trainer.train_epoch

    def poisoned(self, epoch):
        result = real(self, epoch)
        if epoch == 2:  # as --lr 1e6 does with one step per epoch: the loss was still finite
            self.model.classifier[2].weight.data[...] = np.inf
        return result

    monkeypatch.setattr(Trainer, "train_epoch", poisoned)
    out = tmp_path / "run"
    assert train(data, "--epochs", 3, "--out", out) == train_run.EXIT_DIVERGED == 3
    err = capsys.readouterr().err
    assert "diverged at the end of epoch 2" in err and "'classifier.2.weight'" in err
    ck = load_checkpoint(out)
    assert ck.epoch == 1 and all(np.isfinite(v).all() for v in ck.model.values())
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics] == [1]


@pytest.mark.parametrize("config, field", [
    ({"model": "lenet5", "num_classes": "ten"}, "'num_classes' of the run config is 'ten'"),
    ({"model": "lenet5", "num_classes": 10, "dataset": "imagenet"}, "'dataset'"),
    ({"model": "nonet", "num_classes": 10}, "'model'"),
])
def test_bad_config_in_a_checkpoint_names_file_and_field(data, tmp_path, capsys, config, field):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, mc.models.lenet5(), epoch=1, config=config)
    assert train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(path), "--data-root", str(data), "--quiet"])) == 1
    err = one_line_error(capsys)
    assert str(path) in err and field in err
    assert train(data, "--resume", path) == 1
    assert str(path) in one_line_error(capsys)


def test_checkpoint_with_invalid_json_and_bad_epoch(data, tmp_path, capsys):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, mc.models.lenet5(), epoch=1, config={"model": "lenet5"})
    flat = mc.load(path)
    flat["epoch"] = "abc"
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    assert train(data, "--resume", path) == 1
    assert "field 'epoch' is 'abc'" in one_line_error(capsys)
    (tmp_path / "text.npz").write_text("hello")
    assert train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(tmp_path / "text.npz"), "--data-root", str(data)])) == 1
    assert "text.npz" in one_line_error(capsys)


def test_evaluate_refuses_nan_weights(data, tmp_path, capsys):
    state = mc.models.lenet5().state_dict()
    state["features.0.weight"] = np.full_like(state["features.0.weight"], np.nan)
    mc.save(state, tmp_path / "w.npz")
    assert train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(tmp_path / "w.npz"), "--model", "lenet5", "--data-root", str(data)])) == 1
    assert "NaN/inf" in one_line_error(capsys)


# -- the newcomer's path ----------------------------------------------------------------------------
def _interrupt_at(monkeypatch, stop_epoch):
    real = Trainer.run_epoch

    def run_epoch(self, epoch):
        if epoch == stop_epoch:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "run_epoch", run_epoch)


def test_ctrl_c_in_the_first_epoch_leaves_nothing_behind(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train(data, "--epochs", 1) == 0
    (first,) = [p.name for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    _interrupt_at(monkeypatch, 1)
    capsys.readouterr()
    assert train(data, "--epochs", 2, "--seed", 1) == train_run.EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "--resume" not in err
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name != "latest"] == [first]
    assert os.readlink(tmp_path / "runs" / "latest") == first  # still the finished run


def test_ctrl_c_later_names_the_folder_to_resume(data, tmp_path, monkeypatch, capsys):
    _interrupt_at(monkeypatch, 2)
    out = tmp_path / "runs" / "a"
    assert train(data, "--epochs", 2, "--out", out) == 130
    err = capsys.readouterr().err
    assert f"minicnn train --resume {out}'" in err and "epoch 1" in err
    assert load_checkpoint(out).epoch == 1


def test_evaluate_defaults_to_runs_latest_and_quiet_is_quiet(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train_run.evaluate_main(train_args.parse_evaluate_args(["--data-root", str(data)])) == 1
    assert "runs/latest" in one_line_error(capsys)
    assert train(data, "--epochs", 1) == 0
    capsys.readouterr()
    assert train_run.evaluate_main(train_args.parse_evaluate_args(["--data-root", str(data), "--quiet"])) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "confusion matrix" not in out and len(out.strip().splitlines()) == 1
    assert train_run.evaluate_main(train_args.parse_evaluate_args(["--data-root", str(data)])) == 0
    assert "confusion matrix" in capsys.readouterr().out


class _LogFile:
    """A stream that is not a terminal (like stderr redirected to a file)."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return False


def test_progress_bar_writes_one_line_per_epoch_to_a_log_file():
    log = _LogFile()
    bar = ProgressBar(50, "epoch 1/1", file=log)  # tqdm installed or not: no redraws in a log
    for _ in range(50):
        bar.update(1, loss="0.1")
    bar.close()
    assert log.text.count("\n") == 1 and "\r" not in log.text and "50/50" in log.text
    assert bar._tqdm is None


def test_the_names_of_train_cli_keep_working_after_the_split():
    from minicnn.train import args, config, run
    assert train_run.train_main is run.train_main and train_run.evaluate_main is run.evaluate_main
    assert train_config.resolve_config is config.resolve_config and train_config.DEFAULTS is config.DEFAULTS
    assert train_args.positive_int is args.positive_int and train_config.UsageError is config.UsageError
    assert train_config.build_model is config.build_model and train_config.DEFAULT_EPOCHS == 8


def test_gradcheck_with_a_missing_file_says_only_that(tmp_path, capsys):
    from minicnn.cli import main
    assert main(["gradcheck", f"{tmp_path}/my_layer.py:MyOp"]) == 1
    err = capsys.readouterr().err
    assert f"file not found: {tmp_path}/my_layer.py" in err and "not of the form" not in err


def test_running_from_the_folder_that_holds_the_clone_is_explained(tmp_path):
    import subprocess
    import sys
    repo = Path(__file__).resolve().parents[2]      # the clone (not where minicnn is installed)
    os.symlink(repo, tmp_path / "minicnn")  # tmp_path now "holds the clone"
    done = subprocess.run([sys.executable, "-m", "minicnn", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        pytest.skip("this installation imports the real package even from here")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "holds the clone" in done.stderr and "cd minicnn" in done.stderr


def test_empty_or_unreadable_data_root_never_falls_back(tmp_path, monkeypatch, capsys):
    import minicnn.data.datasets as datasets
    fake_fashion(tmp_path / "sys" / "fashion-mnist")  # a system copy that must not be used
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [tmp_path / "sys"])
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "sys"))

    def offline(url, dest, **kwargs):
        raise OSError(f"no network for {url}")

    monkeypatch.setattr(datasets, "download_file", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train(empty, "--epochs", 1, "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --data-root {empty}: FashionMNIST: could not find") and "Traceback" not in err
    assert str(tmp_path / "sys") not in err.split("Looked in:")[1].split("To get")[0]
    assert not (tmp_path / "o" / "checkpoint.npz").exists()
    assert train("", "--epochs", 1, "--out", tmp_path / "o") == 1
    assert "--data-root is empty; expected the folder" in one_line_error(capsys)
    if os.geteuid() != 0:  # root may read anything
        locked = tmp_path / "locked"
        locked.mkdir(mode=0)
        assert train(locked, "--epochs", 1, "--out", tmp_path / "o") == 1
        assert f"--data-root {locked}: the folder is not readable" in one_line_error(capsys)
