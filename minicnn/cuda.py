"""``mc.cuda``: is a GPU usable?"""
from .backend import cuda_available


def is_available():
    """True when CuPy is installed and sees a GPU; importing minicnn never requires either."""
    return cuda_available()
