"""minicnn.distributed across processes: ``mpiexec -n 2 python dist_scenarios.py NAME`` (two ranks
on two cores, one BLAS thread each). Skipped where MPI is absent (pip install 'minicnn[dist]')."""
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc

from dist_scenarios import small_net, train

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist_scenarios.py")
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
                               reason="MPI not installed (pip install 'minicnn[dist]': mpi4py, mpich)")
ONE_THREAD = dict(os.environ, MINICNN_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def launch(name, out, ranks=2, timeout=180):
    """Run the scenario on ``ranks`` processes (0: without a launcher); a hang fails the test."""
    command = [sys.executable, SCRIPT, name, str(out)]
    if ranks:
        command = [MPIEXEC, "-n", str(ranks)] + command
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ONE_THREAD)


def reference():
    """One process on the global batches, from rank 0's start."""
    mc.manual_seed(100)
    return train(small_net(sync=False), 0, 1)


@needs_mpi
def test_two_ranks_with_sync_batchnorm_train_as_one_process_on_the_global_batch(tmp_path):
    run = launch("sync_bn", tmp_path)
    assert run.returncode == 0, run.stderr
    want = reference()
    for rank in (0, 1):
        got = np.load(tmp_path / f"sync_bn-rank{rank}.npz")
        assert sorted(got.files) == sorted(want)
        for key in want:  # parameters and batch-norm running statistics
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-9, err_msg=f"rank {rank} {key}")


@needs_mpi
def test_with_plain_batchnorm_the_two_ranks_differ_from_one_process(tmp_path):
    run = launch("plain_bn", tmp_path)
    assert run.returncode == 0, run.stderr
    want, got = reference(), np.load(tmp_path / "plain_bn-rank0.npz")
    assert max(np.abs(got[k] - want[k]).max() for k in want if "running" in k) > 1e-3
    assert max(np.abs(got[k] - want[k]).max() for k in want if k.endswith("weight")) > 1e-3


@needs_mpi
def test_collectives_sum_max_avg_and_broadcast(tmp_path):
    run = launch("collectives", tmp_path)
    assert run.returncode == 0, run.stderr
    for rank in (0, 1):
        got = np.load(tmp_path / f"collectives-rank{rank}.npz")
        assert got["world"] == 2
        np.testing.assert_array_equal(got["sum"], [10.0, 12.0, 14.0])
        np.testing.assert_array_equal(got["max"], [1])
        np.testing.assert_array_equal(got["avg"], [1.5, 1.5])
        np.testing.assert_array_equal(got["bcast"], np.ones((2, 2)))


@needs_mpi
def test_a_rank_raising_stops_every_rank(tmp_path):
    run = launch("raise", tmp_path)  # without the abort, rank 0 would wait for ever (180 s cap)
    assert run.returncode != 0
    assert "rank 1 gives up" in run.stderr
    assert "rank 1 of 2 failed with RuntimeError; stopping every rank" in run.stderr


@needs_mpi
def test_a_rank_that_never_joins_times_out_and_stops_every_rank(tmp_path):
    run = launch("silent", tmp_path, timeout=110)  # rank 1 sleeps 120 s: only rank 0's 2 s timeout ends it sooner
    assert run.returncode != 0
    assert "all_reduce on rank 0 of 2 waited 2 s for the other ranks" in run.stderr


@needs_mpi
def test_a_world_size_that_is_not_the_launchers_is_a_clear_error(tmp_path):
    run = launch("world_size", tmp_path)
    assert run.returncode != 0
    assert ("ValueError: init_process_group: world_size=4, but the launcher started 2 process(es)"
            in run.stderr)


@needs_mpi
def test_without_a_launcher_the_world_is_one_process_and_ddp_changes_nothing(tmp_path):
    run = launch("single", tmp_path, ranks=0)
    assert run.returncode == 0, run.stderr
    got = np.load(tmp_path / "single-rank0.npz")
    assert got["world"] == 1
    assert all(k.startswith("module.") for k in got["keys"])  # PyTorch's keys
    assert str(got["missing"]).startswith("DistributedDataParallel: 2 parameter gradient(s) missing "
                                          "after backward(), ['unused.bias', 'unused.weight'] on rank 0")
    twin = {k[5:]: got[k] for k in got.files if k.startswith("twin.")}
    for key, value in twin.items():  # SyncBatchNorm alone is BatchNorm; DDP of one averages nothing
        np.testing.assert_array_equal(got["ddp." + key], value, err_msg=key)


def test_mpi_without_mpi4py_is_a_clear_error():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import minicnn.distributed as dist\n"
            "try:\n    dist.init_process_group('mpi')\n"
            "except RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == ("init_process_group: backend 'mpi' is not available: mpi4py is not "
                                  "installed (pip install 'minicnn[dist]' brings mpi4py and MPICH)")


@pytest.mark.skipif(mc.cuda.is_available(), reason="this machine has a GPU")
def test_nccl_without_a_gpu_is_a_clear_error():
    code = ("import minicnn.distributed as dist\n"
            "try:\n    dist.init_process_group('nccl')\n"
            "except RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    cupy_missing = importlib.util.find_spec("cupy") is None
    assert out.stdout.strip() == (
        "init_process_group: backend 'nccl' is not available: CuPy is not installed (pip install "
        "'minicnn[gpu]')" if cupy_missing else
        "init_process_group: backend 'nccl' needs a CUDA GPU and CuPy sees none; use backend='mpi' on CPUs")
