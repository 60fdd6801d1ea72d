"""Model-test helpers.

``fast_init`` (or ``with constant_init(): ...``) builds full-size models cheaply: while it is active,
every draw of the weight initializers is a constant (a broadcast view, so no random numbers are generated), which makes
building a VGG (~140 M weights) cost little more than its allocation. Counts, layouts and shapes do
not depend on the values; the initialisation itself is tested separately on real draws.
"""
import contextlib
import types

import numpy as np
import pytest

from minicnn.nn import init


class _ConstantGenerator:
    """The draws a ``numpy.random.Generator`` would make, replaced by their centre value."""

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.broadcast_to(np.float64(loc), () if size is None else size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return np.broadcast_to(np.float64((low + high) / 2), () if size is None else size)

    def standard_normal(self, size=None, dtype=np.float64):
        return np.zeros((), dtype=dtype) if size is None else np.broadcast_to(np.zeros((), dtype), size)

    def random(self, size=None, dtype=np.float64):
        return np.broadcast_to(np.asarray(0.5, dtype=dtype), () if size is None else size)


@contextlib.contextmanager
def _constant_init():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(init, "rng", types.SimpleNamespace(generator=_ConstantGenerator))
        yield


@pytest.fixture(scope="session")
def constant_init():
    """The context manager itself, for module-scoped fixtures: ``with constant_init(): ...``."""
    return _constant_init


@pytest.fixture
def fast_init():
    """Constant initial values for the duration of one test."""
    with _constant_init():
        yield
