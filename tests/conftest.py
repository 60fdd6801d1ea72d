"""Shared fixtures: every op/layer/model test runs on each device.

``device`` is parametrized over ``cpu``, ``standin`` (the CPU stand-in that fails like CuPy on
mixed or implicitly converted arrays), ``cuda-on-cpu`` and ``cuda`` when CuPy sees a GPU
(``minicnn.testing.available_devices``). Restrict the list with ``MINICNN_TEST_DEVICES=cuda pytest``
(comma-separated). Importing ``minicnn.testing`` registers the stand-in in the device table.

``cuda-on-cpu`` is the stand-in taking the GPU's code path: the test gets ``"standin"`` as its
device, while the CUDA classes of ``minicnn/fast/gpu.py`` run with their kernels compiled for the
CPU (``minicnn.testing.on_device``). Every device test thus also checks the code that ``--device
cuda`` runs, on machines without a GPU (skipped without a C++ compiler). With
``MINICNN_TEST_BLOCKS=1`` its kernels run as blocks of 256 threads, as on a GPU, with the grid
capped at ``testing.devices.BLOCKS_GRID`` blocks (``cuda_on_cpu.build_kernels(blocks=True)``; about
ten times slower).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minicnn as mc
from minicnn import backend, testing
from minicnn.testing import cuda_on_cpu

settings.register_profile("default", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


BLOCKS = os.environ.get("MINICNN_TEST_BLOCKS", "0") == "1"


@pytest.fixture(scope="session")
def cuda_kernels_on_cpu():
    """Every CUDA kernel compiled for the CPU, once per session (cached on disk by source hash)."""
    if cuda_on_cpu.cannot_build(blocks=BLOCKS):
        pytest.skip(cuda_on_cpu.cannot_build(blocks=BLOCKS))
    return cuda_on_cpu.build_kernels(blocks=BLOCKS)


@pytest.fixture(params=testing.available_devices())
def device(request):
    """The device name a test runs on (``cuda-on-cpu``: ``"standin"``, on the CUDA code path)."""
    libraries = request.getfixturevalue("cuda_kernels_on_cpu") if request.param == testing.CUDA_ON_CPU else None
    with testing.on_device(request.param, libraries) as name:
        yield name


@pytest.fixture
def to_device(device):
    """``to_device(array_or_tensor, requires_grad=False)`` -> a Tensor on the test's device."""
    def convert(x, requires_grad=False):
        data = x.data if isinstance(x, mc.Tensor) else np.asarray(x)
        return mc.Tensor(backend.to_device(data, device), requires_grad=requires_grad)
    return convert


@pytest.fixture
def xp(device):
    """The array module of the test's device."""
    return backend.module_for_device(device)


@pytest.fixture
def on_one_and_three_threads(monkeypatch):
    """``run(fn)`` returns ``(fn() on one thread, fn() on three threads)``; for the second call
    ``threads.PARALLEL_MIN_SIZE`` is 0, so even these tests' small arrays are split into pieces."""
    from minicnn.fast import threads

    def run(fn):
        with threads.num_threads(1):
            one = fn()
        monkeypatch.setattr(threads, "PARALLEL_MIN_SIZE", 0)
        with threads.num_threads(3):
            three = fn()
        return one, three
    return run
