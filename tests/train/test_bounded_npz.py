"""Memory is bounded by what a well-formed file holds: an ``.npz`` whose member is a long run of
compressed zeros (a small file declaring a huge array) is refused from its header, before the
array is allocated, when it is read as a checkpoint or weights for a model (evaluate, --resume,
--pretrained); and a plain ``mc.load`` fills each array once, in 1 MB steps, never a second copy."""
import tracemalloc
import zipfile

import numpy as np
import pytest

import minicnn as mc
from minicnn.train import args as train_args, run as train_run
from minicnn.train import load_checkpoint
from minicnn.train.checkpoint import max_checkpoint_bytes, state_bytes

from test_cli_errors import fake_fashion, one_line_error

BIG = 100 << 20  # the declared size of the hostile member: 100 MB of zeros, ~100 KB compressed


def write_bomb(path, entries, key, nbytes=BIG):
    """An .npz of ``entries`` in which ``key`` declares ``nbytes`` of float32 zeros, compressed as
    they are written (so building it never holds them in memory)."""
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, value in entries.items():
            if name == key:
                with archive.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": "<f4", "fortran_order": False, "shape": (nbytes // 4,)})
                    for _ in range(nbytes >> 20):
                        f.write(zeros)
            else:
                with archive.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, np.asarray(value))
    return path


def traced(fn):
    """``(result or exception, peak traced bytes)`` of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except (ValueError, SystemExit) as err:
            result = err
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch lenet5 run and its data."""
    root = tmp_path_factory.mktemp("bounded")
    data = fake_fashion(root / "data")
    out = root / "run"
    argv = ["--model", "lenet5", "--data-root", str(data), "--batch-size", "16", "--quiet",
            "--epochs", "1", "--out", str(out)]
    assert train_run.train_main(train_args.parse_train_args(argv)) == 0
    return data, out


def test_checkpoint_bomb_is_refused_by_evaluate_and_resume(run, tmp_path, capsys):
    data, out = run
    flat = dict(mc.load(out / "checkpoint.npz"))
    bomb = write_bomb(tmp_path / "checkpoint.npz", flat, "model.features.0.weight")
    assert bomb.stat().st_size < 1_000_000
    model = mc.models.lenet5()
    assert max_checkpoint_bytes(model) < BIG  # what a lenet5 checkpoint can hold
    status, peak = traced(lambda: train_run.evaluate_main(train_args.parse_evaluate_args(
        ["--checkpoint", str(bomb), "--data-root", str(data), "--quiet"])))
    assert status == 1 and peak < BIG // 4, peak
    err = one_line_error(capsys)
    assert str(bomb) in err and "'model.features.0.weight'" in err and "damaged or forged" in err
    status, peak = traced(lambda: train_run.train_main(train_args.parse_train_args(
        ["--resume", str(bomb), "--out", str(tmp_path / "more"), "--epochs", "2", "--quiet"])))
    assert status == 1 and peak < BIG // 4, peak
    assert "'model.features.0.weight'" in one_line_error(capsys)
    with pytest.raises(ValueError, match="of what a well-formed file of this kind holds"):
        load_checkpoint(bomb, model=model)


def test_weights_bomb_is_refused_as_pretrained_weights(run, tmp_path, capsys):
    data, _ = run
    state = mc.models.lenet5().state_dict()
    bomb = write_bomb(tmp_path / "w.npz", state, "classifier.0.weight" if "classifier.0.weight" in state
                      else next(iter(state)))
    argv = ["--model", "lenet5", "--data-root", str(data), "--quiet", "--epochs", "1",
            "--pretrained", str(bomb), "--out", str(tmp_path / "ft")]
    status, peak = traced(lambda: train_run.train_main(train_args.parse_train_args(argv)))
    assert status == 1 and peak < BIG // 4, peak
    err = one_line_error(capsys)
    assert "--pretrained" in err and str(bomb) in err and "damaged or forged" in err


def test_plain_load_costs_the_arrays_once(tmp_path):
    bomb = write_bomb(tmp_path / "z.npz", {"a": np.ones(3), "big": None}, "big", nbytes=20 << 20)
    flat, peak = traced(lambda: mc.load(bomb))
    assert flat["big"].shape == (5 << 20,) and not flat["big"].any()
    assert peak < (20 << 20) + (4 << 20), peak  # the array and a few MB, not two or three copies
    with pytest.raises(ValueError, match=r"entry 'big' declares shape \(5242880,\)"):
        mc.load(bomb, max_bytes=1 << 20)
    assert list(mc.load(bomb, keys=("a",))) == ["a"]  # only what is asked for is read


def test_state_bytes_counts_parameters_and_buffers():
    model = mc.nn.BatchNorm2d(4)
    assert state_bytes(model) == 4 * 4 * 4 + 8  # weight, bias, mean, var (float32), count (int64)
