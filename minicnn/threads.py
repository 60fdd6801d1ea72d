"""Moved to :mod:`minicnn.fast.threads` (speed code lives in ``minicnn/fast/``); this name keeps
working for code that imports it from here."""
from .fast.threads import (MATMUL_MIN_FLOPS, PARALLEL_MIN_SIZE, batch_pieces, blas_threads,  # noqa: F401
                           even_slices, get_blas_threads, get_num_threads, matmul, num_threads,
                           parallel_map, set_blas_threads, set_num_threads)
