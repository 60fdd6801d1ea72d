"""Moved to :mod:`minicnn.fast.threads` (speed code lives in ``minicnn/fast/``); this name keeps
working for code that imports it from here."""
from .fast.threads import *  # noqa: F401,F403
from .fast.threads import (blas_threads, even_slices, get_blas_threads, get_num_threads,  # noqa: F401
                           matmul, num_threads, parallel_map, set_blas_threads, set_num_threads)
