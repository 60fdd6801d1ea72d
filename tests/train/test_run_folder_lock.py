"""Two runs never write into one folder: a run holds its ``--out`` folder locked (``flock`` on
``.lock``, released by the kernel however the process ends), a second run into it is refused with
a message naming the folder, and a new run never overwrites another run's checkpoint."""
import subprocess
import sys

import numpy as np
import pytest

from minicnn.train import args as train_args, run as train_run
from minicnn.train import load_checkpoint
from minicnn.train.checkpoint import FolderInUse, lock_run_folder

from test_cli_errors import data, fake_fashion, one_line_error, train  # data: a fixture


def test_a_second_run_into_a_locked_folder_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with lock_run_folder(out):  # as a run in progress holds it
        assert train(data, "--epochs", 1, "--out", out) == 1
        err = one_line_error(capsys)
        assert f"--out {out} is in use" in err and "another run" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
        with pytest.raises(FolderInUse, match=str(out)):
            lock_run_folder(out)
    assert train(data, "--epochs", 1, "--out", out) == 0  # released: the run goes ahead
    assert lock_run_folder(out)  # and the finished run released it too


def test_the_lock_of_a_killed_run_is_released(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from minicnn.train.checkpoint import "
         "lock_run_folder; lock = lock_run_folder(sys.argv[1]); print('locked', flush=True); "
         "time.sleep(120)", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train(data, "--epochs", 1, "--out", out) == 1
        assert f"process {holder.pid}" in one_line_error(capsys)
    finally:
        holder.kill()  # kill -9: no clean-up runs in the holder
        holder.wait()
    assert train(data, "--epochs", 1, "--out", out) == 0


def test_a_new_run_never_overwrites_another_runs_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data, "--epochs", 1, "--out", out) == 0
    before = load_checkpoint(out)
    assert train(data, "--epochs", 2, "--seed", 5, "--out", out) == 1
    err = one_line_error(capsys)
    assert f"--out {out} already holds a run" in err and f"--resume {out}" in err
    after = load_checkpoint(out)
    assert after.epoch == 1
    for key, value in before.model.items():
        np.testing.assert_array_equal(after.model[key], value)
    assert train(data, "--resume", out, "--epochs", 2) == 0  # continuing it is the way


def test_evaluate_does_not_write_into_a_folder_a_run_holds(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(data, "--epochs", 1, "--out", run) == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    with lock_run_folder(busy):
        assert train_run.evaluate_main(train_args.parse_evaluate_args(
            ["--checkpoint", str(run), "--data-root", str(data), "--quiet", "--out", str(busy)])) == 1
        assert f"--out {busy} is in use" in one_line_error(capsys)
    assert not (busy / "confusion.json").exists()
