"""A run never leaves a bad checkpoint, writes strict JSON, cleans up after killed saves, and
refuses damaged checkpoints and weights with a message naming the file and the field."""
import json
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn, optim
from minicnn.train import (Trainer, TrainingDiverged, load_checkpoint, load_pretrained,
                           save_checkpoint)
from minicnn.train.checkpoint import CheckpointError, remove_stale_parts
from minicnn.train.finetune import check_weights
from minicnn.train.metrics import strict_json, write_json

from train_helpers import TinyCNN, loaders


def make_trainer(out_dir, epochs=3):
    mc.manual_seed(0)
    model = TinyCNN()
    train, test = loaders()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return Trainer(model, opt, train, test, epochs=epochs, out_dir=out_dir, progress=False,
                   verbose=False, plots=False, config={"model": "tiny"})


def poison_at(trainer, epoch, name, monkeypatch):
    """After the training pass of ``epoch``, set the parameter or buffer ``name`` to inf (what a
    huge learning rate does to batch norm's running variance while the loss stays finite)."""
    real = trainer.train_epoch

    def train_epoch(e):
        result = real(e)
        if e == epoch:
            module_name, _, attr = name.rpartition(".")
            module = dict(trainer.model.named_modules())[module_name]
            value = getattr(module, attr)
            (value.data if isinstance(value, mc.Tensor) else value)[...] = np.inf
        return result

    monkeypatch.setattr(trainer, "train_epoch", train_epoch)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["features.1.running_var", "classifier.2.weight"])
def test_non_finite_state_never_replaces_the_last_good_checkpoint(tmp_path, monkeypatch, name):
    trainer = make_trainer(tmp_path)
    poison_at(trainer, 2, name, monkeypatch)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    message = str(info.value)
    assert "end of epoch 2" in message and repr(name) in message and "NaN or inf" in message
    assert "after epoch 1" in message and info.value.checkpoint == str(tmp_path / "checkpoint.npz")
    ck = load_checkpoint(tmp_path)
    assert ck.epoch == 1 and all(np.isfinite(v).all() for v in ck.model.values())
    assert len(json.loads((tmp_path / "metrics.json").read_text())) == 1


def test_non_finite_test_loss_stops_before_saving(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=1)
    import minicnn.train.trainer as trainer_module
    real = trainer_module.evaluate
    monkeypatch.setattr(trainer_module, "evaluate",
                        lambda *a, **k: dict(real(*a, **k), loss=float("nan")))
    with pytest.raises(TrainingDiverged, match="the test loss is nan"):
        trainer.fit()
    assert not (tmp_path / "checkpoint.npz").exists()


def test_metrics_json_is_strict_json_with_a_flag(tmp_path):
    records = [{"epoch": 1, "train_loss": float("nan"), "images_per_second": float("inf"),
                "test_loss": None, "lr": np.float32(0.5)}]
    path = write_json(records, tmp_path / "m.json")
    text = open(path).read()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    (record,) = json.loads(text, parse_constant=refuse)
    assert record["train_loss"] is None and record["images_per_second"] is None
    assert record["non_finite"] == ["train_loss", "images_per_second"]
    assert record["test_loss"] is None and record["lr"] == 0.5
    assert strict_json({"a": 1.0}) == {"a": 1.0}  # no flag when everything is finite


def test_stale_part_files_are_removed_on_the_next_save(tmp_path):
    stale = tmp_path / ".tmp-killed.part"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (1_000_000, 1_000_000))  # written long before this process started
    fresh = tmp_path / ".tmp-in-progress.part"
    fresh.write_bytes(b"y")  # written now: could be a save in progress
    other = tmp_path / "notes.part"
    other.write_bytes(b"z")
    os.utime(other, (1_000_000, 1_000_000))
    save_checkpoint(tmp_path / "checkpoint.npz", TinyCNN(), epoch=1)
    assert not stale.exists() and fresh.exists() and other.exists()
    assert remove_stale_parts(tmp_path, before=0) == []


def _damaged_checkpoint(path, **fields):
    """A valid checkpoint with some metadata fields replaced (values stored as given)."""
    save_checkpoint(path, TinyCNN(), epoch=1, config={"model": "lenet5", "num_classes": 10})
    flat = mc.load(path)
    flat.update(fields)
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    return path


@pytest.mark.parametrize("fields, fragment", [
    ({"epoch": "abc"}, "field 'epoch' is 'abc'; expected a non-negative integer"),
    ({"epoch": -3}, "field 'epoch'"),
    ({"config": "{not json"}, "field 'config' is not valid JSON"),
    ({"config": "[1, 2]"}, "field 'config' holds a list; expected a JSON object"),
    ({"metrics": "{}"}, "field 'metrics' holds a dict"),
    ({"rng": "3"}, "field 'rng' holds a int"),
    ({"version": "2.5"}, "field 'version'"),
])
def test_damaged_checkpoint_metadata_names_the_file_and_field(tmp_path, fields, fragment):
    path = _damaged_checkpoint(tmp_path / "ck.npz", **fields)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


# -- loading weights ------------------------------------------------------------------------------
def test_load_pretrained_leaves_the_model_unchanged_when_it_fails(tmp_path):
    mc.manual_seed(0)
    donor = TinyCNN(num_classes=5)
    state = donor.state_dict()
    del state["features.0.bias"]  # a strict load must fail, after the head was resized
    mc.save(state, tmp_path / "w.npz")
    model = TinyCNN(num_classes=3)
    head = model.classifier[2]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="missing key"):
        load_pretrained(model, tmp_path / "w.npz", num_classes=7)
    assert model.classifier[2] is head and head.weight.shape == (3, 64)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("value, fragment", [
    (np.full((4,), np.nan, np.float32), "NaN/inf"),
    (np.full((4,), np.inf, np.float32), "NaN/inf"),
    (np.ones((4,), np.complex64), "complex"),
    (np.ones((4,), np.int64), "int64 values; expected float32"),
])
def test_weights_with_wrong_values_are_refused(tmp_path, value, fragment):
    mc.manual_seed(0)
    state = TinyCNN().state_dict()
    state["features.1.running_var"] = value
    mc.save(state, tmp_path / "w.npz")
    model = TinyCNN()
    before = model.features[1].running_var.copy()
    with pytest.raises(ValueError, match=fragment) as info:
        load_pretrained(model, tmp_path / "w.npz")
    assert "'features.1.running_var'" in str(info.value) and "w.npz" in str(info.value)
    np.testing.assert_array_equal(model.features[1].running_var, before)


def test_check_weights_ignores_integer_buffers_and_unknown_keys():
    model = nn.BatchNorm2d(2)
    state = {"num_batches_tracked": np.array(3), "unknown": np.array([np.nan])}
    assert check_weights(model, state) is state
