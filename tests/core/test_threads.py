"""minicnn.threads: the op-level thread pool and the BLAS thread count."""
import threading

import numpy as np
import pytest

from minicnn import backend, threads


@pytest.fixture
def two_threads():
    before = threads.get_num_threads()
    threads.set_num_threads(2)
    yield
    threads.set_num_threads(before)


def test_parallel_map_keeps_order_and_uses_the_pool(two_threads):
    if threads.get_blas_threads() is None:
        pytest.skip("no BLAS thread control: parallel_map runs serially by design")
    names = threads.parallel_map(lambda i: (i * i, threading.current_thread().name), range(20), np)
    assert [r[0] for r in names] == [i * i for i in range(20)]
    assert all(name.startswith("minicnn") for _, name in names)


def test_parallel_map_limits_blas_to_one_thread_and_restores_it(two_threads):
    before = threads.get_blas_threads()
    if before is None:
        pytest.skip("no BLAS thread control")
    with threads.blas_threads(2):
        inside = threads.parallel_map(lambda _: threads.get_blas_threads(), range(4), np)
        assert inside == [1, 1, 1, 1]
        assert threads.get_blas_threads() == 2
    assert threads.get_blas_threads() == before


def test_parallel_map_runs_serially_off_numpy_and_when_nested(two_threads):
    main = threading.current_thread().name
    standin = backend.module_for_device("standin")
    assert threads.parallel_map(lambda _: threading.current_thread().name, range(3), standin) == [main] * 3

    def outer(_):
        here = threading.current_thread().name
        return all(n == here for n in threads.parallel_map(
            lambda _: threading.current_thread().name, range(3), np))
    assert all(threads.parallel_map(outer, range(4), np))


def test_parallel_map_propagates_errors(two_threads):
    def piece(i):
        if i == 3:
            raise ValueError("piece 3 failed")
        return i
    with pytest.raises(ValueError, match="piece 3 failed"):
        threads.parallel_map(piece, range(6), np)
    assert threads.parallel_map(piece, range(3), np) == [0, 1, 2]  # the pool still works


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="positive"):
        threads.set_num_threads(0)


def test_default_thread_count_reads_the_environment(monkeypatch):
    monkeypatch.setenv("MINICNN_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    monkeypatch.setenv("MINICNN_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINICNN_NUM_THREADS"):
        threads._default_threads()
    monkeypatch.delenv("MINICNN_NUM_THREADS")
    assert threads._default_threads() >= 1


def test_blas_threads_are_set_and_restored():
    before = threads.get_blas_threads()
    if before is None:
        pytest.skip("no OpenBLAS found to control")
    with threads.blas_threads(1):
        assert threads.get_blas_threads() == 1
    assert threads.get_blas_threads() == before
    with threads.blas_threads(0):  # 0: leave it alone
        assert threads.get_blas_threads() == before


def test_train_cli_thread_count_is_set_for_the_run_and_restored():
    from minicnn.train.cli import _thread_count
    before = threads.get_num_threads()
    with _thread_count(1):
        assert threads.get_num_threads() == 1
    assert threads.get_num_threads() == before
    with _thread_count(None):
        assert threads.get_num_threads() == before
