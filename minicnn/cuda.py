"""``mc.cuda``: is a GPU usable? (PyTorch's ``torch.cuda`` spellings.)"""
from . import rng
from .backend import cuda_available


def is_available():
    """True when CuPy is installed and sees a GPU; importing minicnn never requires either."""
    return cuda_available()


def device_count():
    """1 when a GPU is usable (minicnn drives one), else 0."""
    return 1 if cuda_available() else 0


def manual_seed(seed):
    """Same as ``mc.manual_seed``: minicnn draws every random number (GPU ones included) on the
    host from one generator, so there is no separate GPU seed."""
    return rng.manual_seed(seed)


manual_seed_all = manual_seed
