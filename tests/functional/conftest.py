"""The tests of ``minicnn/functional`` run the reference implementations themselves.

Every test here runs inside ``fast.disabled()``: the registry swaps in no fast subclass, so what
runs is the code in ``minicnn/functional`` that a student reads, on every test device (the
reference is device-agnostic). ``tests/fast/`` proves each fast path equal to it, on every device.
"""
from pathlib import Path

import pytest

from minicnn import fast

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def reference_only():
    """No fast paths during the test, and a check that the test did not switch them back on."""
    with fast.disabled():
        yield
        assert not fast.is_enabled(), "a test in tests/functional turned the fast paths on"


def pytest_collection_modifyitems(config, items):
    """Leave out this folder's runs on ``cuda-on-cpu`` (tests/conftest.py): that device is the
    stand-in on the CUDA classes' code path, and with the fast paths off it would repeat the
    stand-in's runs exactly."""
    dropped = [item for item in items if HERE in Path(str(item.fspath)).resolve().parents
               and getattr(item, "callspec", None) is not None
               and item.callspec.params.get("device") == "cuda-on-cpu"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in set(dropped)]
