"""Every lecture experiment runs in quick mode and writes the numbers it promises.

Each quick run goes through ``run_lecture`` with arguments parsed by ``add_lecture_arguments``
(exactly what ``minicnn lecture NAME --quick --out DIR`` does) into a temporary folder; the tests
then read the JSON it wrote. Fashion-MNIST is used when it is installed, else the quick modes fall
back to synthetic data, so these tests need neither the data set nor matplotlib.
"""
import argparse
import json
import sys
from pathlib import Path

import pytest

from minicnn import lecture
from minicnn.lecture import add_lecture_arguments, run_lecture


def parse(argv):
    return add_lecture_arguments(argparse.ArgumentParser(prog="minicnn lecture")).parse_args(argv)


def run_quick(name, out, *extra):
    status = run_lecture(parse([name, "--quick", "--out", str(out), *extra]))
    assert status == 0
    path = Path(out) / f"{name.replace('-', '_')}.json"
    assert path.is_file(), f"{name} wrote no {path.name}"
    result = json.loads(path.read_text())
    assert result["lecture"] == name and result["quick"] is True
    for figure in result["figures"]:
        assert (Path(out) / figure).is_file()
    return result


# -- arguments ---------------------------------------------------------------------------------------
def test_arguments_and_defaults():
    args = parse(["degradation"])
    assert (args.name, args.quick, args.out, args.epochs, args.device) == ("degradation", False, None, None, "cpu")
    args = parse(["fine-tune", "--quick", "--out", "x", "--epochs", "3", "--device", "standin"])
    assert (args.quick, args.out, args.epochs, args.device) == (True, "x", 3, "standin")
    assert lecture.default_out_dir("filters") == str(Path("runs") / "lecture" / "filters")
    assert set(lecture.names()) == {"alexnet-table", "relu-vs-tanh", "small-filters", "inception",
                                    "degradation", "augmentation", "fine-tune", "filters", "zfnet"}
    with pytest.raises(SystemExit):
        parse(["no-such-lecture"])
    with pytest.raises(SystemExit):
        parse(["filters", "--epochs", "0"])


def test_all_runs_every_lecture_in_its_own_folder(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(lecture, "run", lambda name, **kw: calls.append((name, kw["out"], kw["quick"])))
    assert run_lecture(parse(["all", "--quick", "--out", str(tmp_path)])) == 0
    assert [c[0] for c in calls] == lecture.names()
    assert all(out == str(tmp_path / name) and quick for name, out, quick in calls)


def test_cli_wires_the_lecture_command(monkeypatch, tmp_path):
    from minicnn import cli
    seen = {}
    monkeypatch.setattr(lecture, "run", lambda name, **kw: seen.update(name=name, **kw))
    assert cli.main(["lecture", "small-filters", "--quick", "--out", str(tmp_path)]) == 0
    assert seen["name"] == "small-filters" and seen["out"] == str(tmp_path) and seen["quick"]


# -- the experiments, quick ----------------------------------------------------------------------------
def test_alexnet_table(tmp_path):
    r = run_quick("alexnet-table", tmp_path)
    assert r["total_params"] == 62_378_344
    assert r["conv"]["params"] + r["fc"]["params"] == 62_378_344
    assert 93.5 < r["fc"]["params_pct"] < 94.5          # "FC layers hold ~94% of the parameters"
    assert r["conv"]["macs_pct"] > 90                     # conv layers do the compute
    convs = [row for row in r["layers"] if row["type"] == "Conv2d"]
    assert [row["output_shape"] for row in convs][0] == [96, 55, 55]
    assert [row["layer"] for row in r["layers"] if row["layer"]] == ["conv1", "conv2", "conv3", "conv4", "conv5",
                                                              "fc6", "fc7", "fc8"]


def test_small_filters(tmp_path):
    r = run_quick("small-filters", tmp_path)
    c = r["channels"]
    stacked, single = r["stacked_3x3"], r["single_7x7"]
    assert stacked["params"] == 27 * c * c and single["params"] == 49 * c * c
    assert r["params_per_c2"] == {"stacked_3x3": 27, "single_7x7": 49}
    assert stacked["receptive_field"] == single["receptive_field"] == 7
    assert (stacked["nonlinearities"], single["nonlinearities"]) == (3, 1)
    assert stacked["output_shape"] == single["output_shape"]
    assert stacked["macs"] * 49 == single["macs"] * 27


def test_inception(tmp_path):
    r = run_quick("inception", tmp_path)
    naive, bottleneck = r["naive"], r["bottleneck"]
    assert naive["params"] > bottleneck["params"] and naive["macs"] > bottleneck["macs"]
    assert naive["params"] == 1_089_952 and bottleneck["params"] == 330_272   # the lecture's ~1090k vs ~330k
    assert naive["output_shape"] == bottleneck["output_shape"] == [672, 28, 28]
    assert r["params_ratio"] == pytest.approx(3.3, abs=0.05)


def test_relu_vs_tanh(tmp_path):
    r = run_quick("relu-vs-tanh", tmp_path)
    assert set(r["runs"]) == {"relu", "tanh"}
    for run in r["runs"].values():
        assert len(run["train_error"]) == len(run["steps"]) > 0
        assert all(0 <= e <= 1 for e in run["train_error"])
        assert set(run["steps_to_target"]) == {"0.25", "0.2", "0.15"}
    assert set(r["speedup_tanh_over_relu"]) == {"0.25", "0.2", "0.15"}


def test_degradation(tmp_path, capsys):
    r = run_quick("degradation", tmp_path)
    rounds = r["config"]["epochs"] * r["config"]["rounds_per_epoch"]
    out = capsys.readouterr().out
    assert f"{rounds} rounds per net" in out and f"round {rounds}/{rounds}" in out
    assert f"epoch 1/{rounds}" not in out  # the header's epochs and the progress lines agree
    nets = r["nets"]
    shallow, deep = r["config"]["depths"]
    assert set(nets) == {f"plain{shallow}", f"plain{deep}", f"resnet{shallow}", f"resnet{deep}"}
    for name, net in nets.items():
        assert net["residual"] == name.startswith("resnet")
        assert len(net["grad_norms"]) == net["depth"] - 1        # every conv layer (the fc is the last)
        assert all(g > 0 for g in net["grad_norms"])
        assert net["grad_ratio_first_last"] == pytest.approx(net["grad_norms"][0] / net["grad_norms"][-1])
        assert len(net["curve"]) == r["config"]["epochs"] * r["config"]["rounds_per_epoch"]
        for point in net["curve"]:
            assert 0 <= point["train_error"] <= 1 and 0 <= point["test_error"] <= 1
    assert nets[f"plain{deep}"]["params"] == nets[f"resnet{deep}"]["params"]   # same layers, no shortcuts
    assert set(r["checks"]) == {"plain_deeper_trains_worse", "residual_deeper_not_worse",
                                "plain_gradient_spread_larger"}


def test_augmentation(tmp_path):
    r = run_quick("augmentation", tmp_path)
    assert r["grid_rows"][0] == "original" and len(r["grid_rows"]) == 5
    assert "augmentation.png" in r["figures"]              # a bare PNG grid even without matplotlib
    assert (tmp_path / "augmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(r["runs"]) == {"none", "augmented"}
    for run in r["runs"].values():
        assert 0 <= run["test_acc"] <= 1


def test_fine_tune(tmp_path):
    r = run_quick("fine-tune", tmp_path)
    res = r["results"]
    assert set(res) == {"head_only", "scratch", "fine_tune_all"}
    assert res["head_only"]["trainable_params"] < res["scratch"]["trainable_params"]
    assert res["scratch"]["trainable_params"] == res["fine_tune_all"]["trainable_params"]
    assert all(0 <= a <= 1 for m in res.values() for a in m["accuracies"])
    assert r["labelled_images"] == 5 * r["config"]["per_class"]
    assert r["new_classes"] == [5, 6, 7, 8, 9]
    assert r["by_budget"][str(r["config"]["per_class"])] == res
    assert r["head_only_minus_scratch"] == pytest.approx(res["head_only"]["mean"] - res["scratch"]["mean"])


def test_filters(tmp_path):
    r = run_quick("filters", tmp_path)
    n, c, k, _ = r["filter_shape"]
    assert (c, k) == (1, 5) and len(r["filters"]) == n
    assert all(0 <= f["coherence"] <= 1 + 1e-9 for f in r["filters"])
    assert "filters.png" in r["figures"]


# -- fallbacks ------------------------------------------------------------------------------------------
class _Missing:
    classes = None

    def __init__(self, *args, **kwargs):
        from minicnn.data import DatasetNotFoundError
        raise DatasetNotFoundError("FashionMNIST: could not find the files (test)")


def test_quick_mode_falls_back_to_synthetic_data_without_matplotlib(monkeypatch, tmp_path, capsys):
    import minicnn.data
    monkeypatch.setattr(minicnn.data, "FashionMNIST", _Missing)
    for name in ["matplotlib"] + [m for m in sys.modules if m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)           # as if matplotlib were not installed
    r = run_quick("filters", tmp_path)
    assert r["data"] == "synthetic"
    assert "synthetic" in capsys.readouterr().out
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG"   # the bare grid


def test_full_mode_without_data_fails_cleanly(monkeypatch, tmp_path, capsys):
    import minicnn.data
    monkeypatch.setattr(minicnn.data, "FashionMNIST", _Missing)
    assert run_lecture(parse(["relu-vs-tanh", "--out", str(tmp_path)])) == 1
    assert "could not find" in capsys.readouterr().err


def test_synthetic_data_is_learnable():
    import numpy as np
    from minicnn.lecture.common import synthetic_images
    x, y = synthetic_images(200, seed=0)
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.uint8 and set(np.unique(y)) <= set(range(10))
    # a nearest-class-mean classifier on the raw pixels already does far better than chance
    means = np.stack([x[y == c].reshape((y == c).sum(), -1).mean(0) for c in range(10)])
    xt, yt = synthetic_images(200, seed=1)
    pred = ((xt.reshape(200, 1, -1) - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == yt).mean() > 0.5


# -- the newcomer's path: time warning, quick caveat, Ctrl-C ------------------------------------------
class _FakeExperiment:
    """Stands in for a lecture module: ``run(ctx)`` returns ``result`` or raises ``error``."""

    def __init__(self, result=None, error=None):
        self.result, self.error = result, error

    def run(self, ctx):
        if self.error is not None:
            raise self.error
        return dict(self.result or {})


def test_full_run_header_warns_how_long_it_takes(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lecture, "_module", lambda name: _FakeExperiment({"x": 1}))
    assert run_lecture(parse(["degradation", "--out", str(tmp_path / "d")])) == 0
    out = capsys.readouterr().out
    assert f"takes {lecture.FULL_RUN_TIME['degradation']} on a two-core CPU" in out
    assert "--quick" in out and "not meaningful" not in out


def test_quick_run_says_its_conclusions_are_not_meaningful(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lecture, "_module", lambda name: _FakeExperiment({"x": 1}))
    assert run_lecture(parse(["degradation", "--quick", "--out", str(tmp_path / "d")])) == 0
    assert "not meaningful at this size" in capsys.readouterr().out
    result = json.loads((tmp_path / "d" / "degradation.json").read_text())
    assert result["note"] == lecture.QUICK_NOTE


def test_ctrl_c_leaves_no_empty_folder_and_no_traceback(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lecture, "_module", lambda name: _FakeExperiment(error=KeyboardInterrupt()))
    out = tmp_path / "never"
    assert run_lecture(parse(["degradation", "--out", str(out)])) == 130
    assert not out.exists()
    err = capsys.readouterr().err
    assert "interrupted; nothing was written" in err and "Traceback" not in err
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user gave that already existed stays
    assert run_lecture(parse(["degradation", "--out", str(kept)])) == 130
    assert kept.is_dir()
