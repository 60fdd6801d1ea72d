"""Shared fixtures: every op/layer/model test runs on each device.

``device`` is parametrized over ``cpu``, ``standin`` (the CPU stand-in that fails like CuPy on
mixed or implicitly converted arrays) and ``cuda`` when CuPy sees a GPU. Restrict the list with
``MINICNN_TEST_DEVICES=cuda pytest`` (comma-separated).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minicnn as mc
from minicnn import backend

settings.register_profile("default", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def available_devices():
    devices = ["cpu", "standin"] + (["cuda"] if mc.cuda.is_available() else [])
    wanted = os.environ.get("MINICNN_TEST_DEVICES")
    if wanted:
        devices = [d for d in devices if d in wanted.split(",")]
    return devices


@pytest.fixture(params=available_devices())
def device(request):
    """The device name a test runs on."""
    return request.param


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
