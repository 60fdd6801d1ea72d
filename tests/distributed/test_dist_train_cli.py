"""``mpiexec -n 2 minicnn train``: rank 0 alone writes and prints, --resume works, a launch or rank
that cannot go on stops every rank with its message. Runs on a tiny Fashion-MNIST look-alike."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minicnn.data.idx import write_idx

from test_dist_processes import MPIEXEC, ONE_THREAD, SCRIPT, needs_mpi

pytestmark = needs_mpi


@pytest.fixture
def data(tmp_path):
    """IDX files shaped like Fashion-MNIST's: 64 training and 32 test images."""
    gen = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for prefix, n in (("train", 64), ("t10k", 32)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", gen.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return folder


def train(data, out, *options, ranks=2):
    command = [sys.executable, "-m", "minicnn", "train", "--data-root", str(data), "--batch-size", "8",
               "--out", str(out), *options]
    if ranks:
        command = [MPIEXEC, "-n", str(ranks)] + command
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=ONE_THREAD)


def test_rank_0_alone_writes_and_prints_and_resume_continues(data, tmp_path):
    out = tmp_path / "run"
    first = train(data, out, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("test accuracy") == 1  # one final line: rank 0's
    assert first.stdout.count("training fashion_cnn") == 1
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2 and config["lr"] == 0.05 and "lr_scaled_by" not in config
    resumed = train(data, out, "--resume", str(out), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in json.loads((out / "metrics.json").read_text())] == [1, 2]
    assert resumed.stdout.count("resuming") == 1


def test_scale_lr_multiplies_the_rate_by_the_number_of_processes(data, tmp_path):
    run = train(data, tmp_path / "run", "--epochs", "1", "--lr", "0.02", "--scale-lr", "--quiet")
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["lr"] == 0.04 and config["lr_scaled_by"] == 2


def test_resuming_on_another_number_of_processes_is_a_clear_error(data, tmp_path):
    out = tmp_path / "run"
    assert train(data, out, "--epochs", "1", "--quiet").returncode == 0
    alone = train(data, out, "--resume", str(out), "--epochs", "2", "--quiet", ranks=0)
    assert alone.returncode == 1
    assert alone.stderr.strip() == ("error: --resume: the run was trained on 2 process(es), this "
                                    "launch has 1; resume it with 'mpiexec -n 2'")
    again = train(data, out, "--resume", str(out), "--epochs", "2", "--scale-lr", "--quiet")
    assert again.returncode == 1
    assert "error: --scale-lr applies when a run starts" in again.stderr


def test_scale_lr_without_a_launcher_is_a_clear_error(data, tmp_path):
    run = train(data, tmp_path / "run", "--scale-lr", ranks=0)
    assert run.returncode == 1
    assert run.stderr.strip().startswith("error: --scale-lr multiplies the learning rate by the "
                                         "number of processes")


def test_one_rank_failing_stops_every_rank_with_its_message(data, tmp_path):
    run = subprocess.run([MPIEXEC, "-n", "2", sys.executable, SCRIPT, "cli_rank_fails", str(tmp_path),
                          str(data)], capture_output=True, text=True, timeout=120, env=ONE_THREAD)
    assert run.returncode == 1  # without the abort, rank 0 would wait for rank 1 for ever
    assert "minicnn.distributed: rank 1 of 2 stopped with exit status 1; stopping every rank" in run.stderr
