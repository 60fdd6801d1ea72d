"""Resuming and evaluating are never silently wrong: a checkpoint missing entries (a damaged zip
directory hides them), or holding values out of range (a CRC-valid ``scheduler.last_epoch =
-100``, NaN optimizer state, negative batch-norm variances), is refused with one line naming the
file and the entry; nothing is half-restored into a run that then exits 0."""
import struct

import numpy as np
import pytest

import minicnn as mc
from minicnn.train import args as train_args, run as train_run
from minicnn.train.checkpoint import CheckpointError

from test_cli_errors import data, fake_fashion, one_line_error, train  # data: a fixture
from test_trainer import make_run


def evaluate(data, checkpoint, *args):
    argv = ["--checkpoint", str(checkpoint), "--data-root", str(data), "--quiet"]
    return train_run.evaluate_main(train_args.parse_evaluate_args(argv + [str(a) for a in args]))


def rewrite(path, **changes):
    """Rewrite the checkpoint at ``path`` (valid zip, valid CRCs) with entries changed; an
    entry given as ``None`` is dropped, with every entry under it (``optimizer=None``)."""
    flat = dict(mc.load(path))
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            flat = {k: v for k, v in flat.items() if k != key and not k.startswith(key + ".")}
        else:
            flat[key] = value
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    return path


def hide_entries_after(path, name):
    """One corrupted byte in the zip's central directory: the comment length of ``name``'s
    record becomes huge, so the records after it read as its comment and zipfile lists none of
    them (raising no error)."""
    data = bytearray(path.read_bytes())
    record = data.index(b"PK\x01\x02")
    while data[record + 46:record + 46 + len(name)] != name.encode():
        record = data.index(b"PK\x01\x02", record + 4)
    data[record + 33] = 0xFF  # high byte of the file comment's length
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def run(data, tmp_path):
    out = tmp_path / "run"
    assert train(data, "--epochs", 1, "--out", out) == 0
    return out


def test_damaged_zip_directory_hiding_optimizer_and_scheduler_is_refused(data, run, capsys):
    hide_entries_after(run / "checkpoint.npz", "config.npy")
    flat = mc.load(run / "checkpoint.npz")
    assert "model" in flat and "optimizer" not in flat and "scheduler" not in flat
    assert train(data, "--resume", run, "--epochs", 2) == 1
    err = one_line_error(capsys)
    assert str(run / "checkpoint.npz") in err and "no optimizer, scheduler entries" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("changes, fragment", [
    ({"scheduler__last_epoch": -100}, "last_epoch is -100"),
    ({"scheduler__last_epoch": 3}, "the schedule is at step 3, but 1 epoch(s) of 4 steps make 4"),
    ({"scheduler__T_max": 0}, "no learning rate"),
    ({"scheduler__base_lrs": np.array([np.inf])}, "learning rate"),
    ({"optimizer__param_groups__0__lr": np.inf}, "non-finite"),
    ({"optimizer__param_groups__0__momentum": -1.0}, "invalid momentum"),
    ({"optimizer__param_groups__0__momentum": None}, "lacks the option(s) ['momentum']"),
    ({"rng": '{"bit_generator": "nonsense"}'}, "cannot resume"),
    ({"metrics": "[]"}, "field 'metrics' holds 0 epoch records; expected 1"),
    ({"rng": None}, "no rng entries"),
    ({"scheduler": None}, "no scheduler entries"),
])
def test_out_of_range_or_missing_entries_are_refused(data, run, capsys, changes, fragment):
    rewrite(run / "checkpoint.npz", **changes)
    assert train(data, "--resume", run, "--epochs", 2) == 1
    err = one_line_error(capsys)
    assert fragment in err and str(run / "checkpoint.npz") in err


def test_nan_optimizer_state_and_negative_running_var_are_refused(tmp_path):
    trainer = make_run(tmp_path / "a", epochs=1)
    trainer.fit()
    path = tmp_path / "a" / "checkpoint.npz"
    buffer = mc.load(path)["optimizer.state.0.momentum_buffer"]
    rewrite(path, optimizer__state__0__momentum_buffer=np.full_like(buffer, np.nan))
    with pytest.raises(CheckpointError, match="state 'momentum_buffer' of parameter 0 holds NaN"):
        make_run(tmp_path / "a", epochs=2).resume()
    trainer.save()
    var = mc.load(path)["model.features.1.running_var"]
    rewrite(path, model__features__1__running_var=-np.abs(var) - 1)
    resumed = make_run(tmp_path / "a", epochs=2)
    before = {k: v.copy() for k, v in resumed.model.state_dict().items()}
    with pytest.raises(CheckpointError, match="'features.1.running_var' holds 4 negative"):
        resumed.resume()
    for k, v in resumed.model.state_dict().items():  # nothing was half-restored
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert resumed.epoch == 0


def test_a_checkpoint_with_a_schedule_into_a_run_without_one(tmp_path):
    make_run(tmp_path / "a", epochs=1).fit()
    resumed = make_run(tmp_path / "a", epochs=2)
    resumed.scheduler = None
    with pytest.raises(CheckpointError, match="holds a learning-rate schedule, but this run has none"):
        resumed.resume()


def test_evaluate_refuses_negative_running_var_of_a_batch_norm_model(data, tmp_path, capsys):
    out = tmp_path / "bn"
    assert train(data, "--model", "fashion_cnn", "--epochs", 1, "--out", out) == 0
    path = out / "checkpoint.npz"
    flat = mc.load(path)
    key = next(k for k in flat if k.endswith("running_var"))
    rewrite(path, **{key.replace(".", "__"): -np.abs(flat[key]) - 0.5})
    assert evaluate(data, path) == 1
    err = one_line_error(capsys)
    assert str(path) in err and repr(key[len("model."):]) in err and "a variance is >= 0" in err
    assert train_run.train_main(train_args.parse_train_args(["--resume", str(out), "--epochs", "2"])) == 1
    err = one_line_error(capsys)
    assert err.count(str(path)) == 1 and "a variance is >= 0" in err
