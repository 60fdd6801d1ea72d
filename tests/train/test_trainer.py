"""The training loop: metrics.json, checkpoints, bit-identical resume, divergence, evaluation."""
import io
import json
import math
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import checks as device_checks
from minicnn import backend, nn, optim, rng, testing
from minicnn.data.transforms import parse_augment
from minicnn.train import (ProgressBar, Trainer, TrainingDiverged, confusion_matrix, evaluate,
                           format_confusion, load_checkpoint, save_checkpoint, topk_correct)

from train_helpers import TinyCNN, loaders, synthetic

RECORD_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr",
               "seconds"}


def make_run(out_dir, epochs=2, seed=0, optimizer="sgd", device="cpu", augment=True):
    """A complete run with every kind of state: BN buffers, dropout, shuffling, augmentation,
    momentum/Adam state and a per-step schedule."""
    mc.manual_seed(seed)
    model = TinyCNN()
    model.to(device)
    train, test = loaders(transform=parse_augment("flip", 8) if augment else None)  # flips keep the bands
    if optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    else:
        opt = optim.AdamW(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train))
    return Trainer(model, opt, train, test, scheduler=sched, scheduler_interval="step",
                   epochs=epochs, out_dir=out_dir, device=device, progress=False, verbose=False,
                   config={"model": "tiny", "num_classes": 3})


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_fit_writes_metrics_checkpoint_and_confusion(tmp_path):
    trainer = make_run(tmp_path, epochs=3)
    history = trainer.fit()
    records = json.loads((tmp_path / "metrics.json").read_text())
    assert records == json.loads(json.dumps(history))
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for r in records:
        assert RECORD_KEYS <= set(r)
        for key in ("train_acc", "test_acc", "test_top5"):
            assert 0.0 <= r[key] <= 1.0
        assert r["test_top5"] >= r["test_acc"]
        assert r["seconds"] > 0 and math.isfinite(r["train_loss"])
    assert records[0]["lr"] == 0.1 and records[2]["lr"] < records[1]["lr"] < 0.1
    assert records[-1]["test_acc"] > 0.8  # the bands are easy: learnt, not guessed (1/3)
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ck.epoch == 3 and ck.metrics == records and ck.config["model"] == "tiny"
    confusion = json.loads((tmp_path / "confusion.json").read_text())
    matrix = np.array(confusion["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 48
    assert np.trace(matrix) / 48 == pytest.approx(records[-1]["test_acc"])
    assert (tmp_path / "confusion.csv").read_text().count("\n") == 4
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_checkpoint_round_trip(tmp_path):
    trainer = make_run(tmp_path / "a", epochs=1, optimizer="adamw")
    trainer.fit()
    path = tmp_path / "copy.npz"
    state_rng = rng.get_state()
    save_checkpoint(path, trainer.model, trainer.optimizer, trainer.scheduler, epoch=7,
                    metrics=trainer.history, config={"model": "tiny", "note": "é"})
    ck = load_checkpoint(path)
    assert ck.epoch == 7 and ck.config == {"model": "tiny", "note": "é"}
    assert ck.rng_state == state_rng  # 128-bit integers survive (as JSON)
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(ck.model[k], v)
    other = TinyCNN()
    other.load_state_dict(ck.model)
    opt = optim.AdamW(other.parameters(), lr=0.01)
    opt.load_state_dict(ck.optimizer)
    for p, q in zip(trainer.model.parameters(), other.parameters()):
        for name in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(backend.to_numpy(opt.state[q][name]),
                                          backend.to_numpy(trainer.optimizer.state[p][name]))
        assert opt.state[q]["step"] == trainer.optimizer.state[p]["step"]
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=99)
    sched.load_state_dict(ck.scheduler)
    assert sched.last_epoch == trainer.scheduler.last_epoch and sched.T_max == trainer.scheduler.T_max
    with pytest.raises(ValueError, match="not a minicnn training checkpoint"):
        mc.save(trainer.model.state_dict(), tmp_path / "weights.npz")
        load_checkpoint(tmp_path / "weights.npz")


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resume_is_bit_identical(tmp_path, optimizer):
    straight = make_run(tmp_path / "straight", epochs=2, optimizer=optimizer)
    straight.fit()
    straight_rng = rng.get_state()

    first = make_run(tmp_path / "split", epochs=1, optimizer=optimizer)
    # same plan as the straight run: 2 epochs, stopped after the first
    first.scheduler = optim.lr_scheduler.CosineAnnealingLR(first.optimizer, T_max=2 * len(first.train_loader))
    first.epochs = 2
    first.fit(epochs=1)
    rng.manual_seed(12345)  # a fresh process: nothing but the checkpoint carries the state

    resumed = make_run(tmp_path / "split", epochs=2, seed=999, optimizer=optimizer)
    assert resumed.resume() == 1
    resumed.fit()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    drop = {"seconds", "train_seconds", "test_seconds", "images_per_second"}
    clean = [{k: v for k, v in r.items() if k not in drop} for r in straight.history]
    assert clean == [{k: v for k, v in r.items() if k not in drop} for r in resumed.history]
    assert rng.get_state() == straight_rng


class NaNAt(nn.Module):
    """Wraps a model; from forward call ``k`` on (counting training calls only) returns NaNs."""

    def __init__(self, inner, k):
        super().__init__()
        self.inner, self.k, self.calls = inner, k, 0

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.k:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = make_run(tmp_path, epochs=3)
    steps = len(trainer.train_loader)
    trainer.model = NaNAt(trainer.model, k=steps + 3)  # the 3rd step of epoch 2
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    err = info.value
    assert err.epoch == 2 and err.step == 3 and math.isnan(err.loss)
    assert "epoch 2, step 3/" in str(err) and "checkpoint" in str(err)
    assert err.checkpoint == str(tmp_path / "checkpoint.npz")
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ck.epoch == 1
    assert all(np.isfinite(v).all() for v in ck.model.values())
    assert len(json.loads((tmp_path / "metrics.json").read_text())) == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_before_any_checkpoint(tmp_path):
    mc.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    train, test = loaders()
    opt = optim.SGD(model.parameters(), lr=1e30)
    trainer = Trainer(model, opt, train, test, out_dir=tmp_path, progress=False, verbose=False)
    with pytest.raises(TrainingDiverged, match="epoch 1, step") as info:
        trainer.fit()
    assert info.value.checkpoint is None and "No checkpoint" in str(info.value)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_trainer_on_every_device(device, tmp_path):
    trainer = make_run(tmp_path, epochs=1, device=device, augment=False)
    trainer.fit()
    assert all(p.device == device for p in trainer.model.parameters())
    assert 0.0 <= trainer.history[0]["test_acc"] <= 1.0
    assert load_checkpoint(tmp_path).epoch == 1


class FixedLogits(nn.Module):
    """Returns row ``i`` of a fixed table for the ``i``-th image (the image holds ``i``)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, x):
        xp = backend.get_array_module(x.data)
        idx = backend.to_numpy(x.data)[:, 0, 0, 0].round().astype(int)
        return mc.Tensor(xp.asarray(self.table[idx]))


def test_evaluate_by_hand(device):
    table = np.array([[5, 4, 3, 2, 1, 0],    # true 0: top-1 hit
                      [0, 1, 2, 3, 4, 5],    # true 0: rank 6: miss even in top-5
                      [1, 0, 3, 2, 5, 4],    # true 2: rank 3: top-5 hit
                      [0, 9, 0, 0, 0, 0]],   # true 1: top-1 hit
                     dtype=np.float64)
    targets = np.array([0, 0, 2, 1])
    images = np.arange(4, dtype=np.float64)[:, None, None, None] * np.ones((4, 1, 2, 2))
    from minicnn.data import ArrayDataset, DataLoader
    loader = DataLoader(ArrayDataset(images, targets), batch_size=3)
    model = FixedLogits(table)
    out = evaluate(model, loader, device=device)
    assert out["n"] == 4 and out["top1"] == 0.5 and out["top5"] == 0.75
    logp = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    assert out["loss"] == pytest.approx(-logp[np.arange(4), targets].mean())
    expected = np.zeros((6, 6), int)
    for t, p in zip(targets, table.argmax(axis=1)):
        expected[t, p] += 1
    np.testing.assert_array_equal(out["confusion"], expected)


def test_topk_and_confusion_matrix(xp):
    logits = xp.asarray(np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]]))
    y = xp.asarray(np.array([2, 0, 0]))
    assert topk_correct(logits, y, (1, 2, 5)) == {1: 1, 2: 2, 5: 3}
    m = confusion_matrix(np.array([2, 0, 0]), np.array([1, 0, 2]), 3)
    np.testing.assert_array_equal(m, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    text = format_confusion(m, ["a", "b", "c"])
    assert "rows: true class" in text and "50.00%" in text


def test_progress_bar_text_fallback():
    buf = io.StringIO()  # not a terminal: one line, written at the end
    with ProgressBar(3, "epoch 1/1", file=buf, use_tqdm=False) as bar:
        for _ in range(3):
            bar.update(1, loss="0.5")
            assert buf.getvalue() == ""
    assert buf.getvalue().count("\n") == 1 and "3/3" in buf.getvalue() and "loss 0.5" in buf.getvalue()
    quiet = io.StringIO()
    with ProgressBar(3, "x", enabled=False, file=quiet) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""


def test_googlenet_style_aux_outputs_add_to_the_loss():
    from minicnn.train.trainer import AUX_LOSS_WEIGHT, _forward
    import minicnn.functional as F

    class Aux(nn.Module):
        def forward(self, x):
            return x, x * 2.0

    x = mc.Tensor(np.array([[1.0, 2.0], [0.5, -1.0]]))
    y = np.array([0, 1])
    logits, loss = _forward(Aux(), x, y, F.cross_entropy)
    expected = F.cross_entropy(x, y).item() + AUX_LOSS_WEIGHT * F.cross_entropy(x * 2.0, y).item()
    assert logits is x and loss.item() == pytest.approx(expected)


def test_synthetic_data_is_what_the_tests_think():
    ds = synthetic(12, seed=3)
    assert ds.data.shape == (12, 1, 8, 8) and ds.data.dtype == np.uint8


def test_pictures_are_optional(tmp_path, monkeypatch):
    import sys
    from minicnn.train import plots
    history = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 0.9, "test_acc": 0.6}]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert plots.plot_curves(history, tmp_path / "c.png") is None
    assert plots.plot_confusion(np.eye(3, dtype=int), None, tmp_path / "m.png") is None
    assert not list(tmp_path.iterdir())


def test_pictures_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    from minicnn.train import plots
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "test_loss": 0.9 / e,
                "test_acc": 0.6} for e in (1, 2)]
    assert plots.plot_curves(history, tmp_path / "c.png") == tmp_path / "c.png"
    assert plots.plot_confusion(np.eye(3, dtype=int), ["a", "b", "c"], tmp_path / "m.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("device", ["cpu", "standin"])
def test_a_bad_label_is_a_clear_error_naming_its_step_without_a_sync_per_step(tmp_path, device):
    """On a device the labels are checked at the loop's read-backs (not with a sync per step),
    and the error still names the label, its index and the step it came in."""
    from minicnn.data import ArrayDataset
    from minicnn.data.loader import DataLoader
    good = synthetic(96, seed=0)
    labels = good.targets.copy()
    labels[37] = 7  # TinyCNN has 3 classes; batch 16 without shuffling: the third step, index 5
    bad = ArrayDataset(good.data, labels)
    model = TinyCNN().to(device)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), DataLoader(bad, batch_size=16, device=device),
                      None, epochs=1, out_dir=tmp_path, device=device, progress=False, verbose=False)
    downloads = []
    with testing.watch_standin(lambda kind, name: downloads.append(name) if kind == "download" else None):
        with pytest.raises(ValueError, match=r"target label 7 at index 5 is outside the valid range \[0, 3\).*"
                                             r"\(epoch 1, step 3\)" if device != "cpu" else
                                             r"target label 7 at index 5 is outside the valid range \[0, 3\)"):
            trainer.train_epoch(1)
    if device == "standin":
        assert len(downloads) <= 3  # the read-back at the end of the epoch (6 steps), not one per step


def test_require_checks_now_on_the_host_and_at_check_on_a_device():
    with pytest.raises(ValueError, match="bad now"):
        device_checks.require(np.array(True), lambda: "bad now")
    flag = backend.to_device(np.array(True), "standin")
    with device_checks.deferred_checks() as checks:
        checks.where = "step 4"
        device_checks.require(flag, lambda: "bad later")   # kept
        device_checks.require(backend.to_device(np.array(False), "standin"), lambda: "fine")
        assert len(checks.pending) == 2
        with pytest.raises(ValueError, match=r"^bad later \(step 4\)$"):
            checks.check()
        assert checks.pending == []
    with pytest.raises(ValueError, match="left for the end"):
        with device_checks.deferred_checks():
            device_checks.require(flag, lambda: "left for the end")
