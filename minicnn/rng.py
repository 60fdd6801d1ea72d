"""The package's one source of randomness.

Every random draw minicnn makes (weight initialisation, dropout masks, shuffling, augmentation)
comes from the generator returned by :func:`generator`, so ``mc.manual_seed(seed)`` makes a whole
run repeatable. ``get_state``/``set_state`` capture and restore it (checkpoints use them so that a
resumed run draws exactly the numbers an uninterrupted run would have drawn).
"""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed every random draw the package makes. Returns the seed."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return seed


def generator():
    """The host ``numpy.random.Generator`` all of minicnn draws from."""
    return _generator


def get_state():
    """A JSON-able snapshot of the generator state (for checkpoints)."""
    return _generator.bit_generator.state


def set_state(state):
    """Restore a snapshot taken by :func:`get_state`."""
    _generator.bit_generator.state = state
