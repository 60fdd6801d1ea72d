"""The NCCL backend on one GPU (NCCL refuses two ranks on one GPU; several ranks need several GPUs).

Skipped without CuPy, a GPU and NCCL (pip install 'minicnn[gpu]' nvidia-nccl-cu12)."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc

from test_dist_processes import SCRIPT


def nccl_missing():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py not installed"  # the scenario starts with the mpi group
    if not mc.cuda.is_available():
        return "CuPy with a GPU is not available"
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception as e:  # ImportError, or NCCL's library missing
        return f"NCCL not available: {e}"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(nccl_missing() is not None, reason=str(nccl_missing()))
def test_nccl_on_one_gpu_reduces_and_ddp_takes_the_bare_models_step(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, "nccl_single", str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = np.load(tmp_path / "nccl_single-rank0.npz")
    assert str(got["backend"]) == "nccl"
    np.testing.assert_array_equal(got["t"], np.arange(4.0))
    for key in [k for k in got.files if k.startswith("twin.")]:
        np.testing.assert_allclose(got["ddp." + key[5:]], got[key], rtol=0, atol=1e-12, err_msg=key)
