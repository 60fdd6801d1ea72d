"""minicnn.fast.threads: the op-level thread pool and the BLAS thread count."""
import threading

import numpy as np
import pytest

from minicnn import backend
from minicnn.fast import threads


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


def test_parallel_map_refuses_device_arrays_and_runs_nested_calls_serially(two_threads):
    """Device (stand-in or CuPy) arrays never reach the CPU thread pool: that would be a dispatch
    bug, so it raises. A call from inside a piece runs its items on that piece's thread."""
    standin = backend.module_for_device("standin")
    with pytest.raises(TypeError, match="NumPy arrays only"):
        threads.parallel_map(lambda i: i, range(3), standin)
    with pytest.raises(TypeError, match="NumPy arrays only"):
        threads.batch_pieces(standin.ones((4, 3)), standin)

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


def test_num_threads_sets_the_count_for_a_block_and_restores_it():
    before = threads.get_num_threads()
    with threads.num_threads(1):
        assert threads.get_num_threads() == 1
    assert threads.get_num_threads() == before
    with threads.num_threads(None):  # the train CLI's default: leave it alone
        assert threads.get_num_threads() == before
    with pytest.raises(ValueError):
        with threads.num_threads(2):
            raise ValueError("inside")
    assert threads.get_num_threads() == before


@pytest.mark.parametrize("a_shape, b_shape", [
    ((40, 7), (7, 5)),        # rows enough: blocks of rows, written in place
    ((2, 7), (7, 50)),        # few rows: blocks of columns
    ((3, 4, 6), (3, 6, 20)),  # stacks of matrices
    ((4, 6), (2, 6, 9)),      # broadcast leading axes
])
def test_matmul_in_blocks_equals_one_product(monkeypatch, a_shape, b_shape):
    monkeypatch.setattr(threads, "MATMUL_MIN_FLOPS", 0)
    before = threads.get_num_threads()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    try:
        threads.set_num_threads(3)
        out = threads.matmul(a, b)
    finally:
        threads.set_num_threads(before)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    assert out.shape == (a @ b).shape


def test_matmul_refuses_device_arrays():
    standin = backend.module_for_device("standin")
    with pytest.raises(TypeError, match="NumPy arrays only"):
        threads.matmul(standin.ones((3, 4)), standin.ones((4, 2)))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child():
    """A child process forked after the pool started gets a fresh pool (not the parent's dead
    threads) and still finishes a parallel_map."""
    import os
    with threads.num_threads(2):
        threads.parallel_map(lambda i: i, range(4), np)  # the parent's pool exists now
        pid = os.fork()
        if pid == 0:  # the child
            import signal
            signal.alarm(30)  # a child stuck on the parent's dead threads dies instead of hanging
            try:
                ok = threads.parallel_map(lambda i: i * 2, range(6), np) == [0, 2, 4, 6, 8, 10]
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_keep_freed_memory_respects_the_opt_out(monkeypatch):
    from minicnn.fast import host_memory
    monkeypatch.setenv("MINICNN_KEEP_FREED_MEMORY", "0")
    assert host_memory.keep_freed_memory() is False


def test_importing_minicnn_leaves_the_allocator_alone_until_asked():
    """``import minicnn`` changes nothing process-wide; ``keep_freed_memory()`` (what ``minicnn
    train`` calls) does, on Linux with glibc."""
    import subprocess
    import sys
    code = ("import minicnn\n"
            "from minicnn.fast import host_memory\n"
            "print(host_memory.applied, host_memory.keep_freed_memory(), host_memory.applied)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MINICNN_KEEP_FREED_MEMORY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    before, returned, after = out.stdout.split()
    assert before == "False"
    glibc = sys.platform.startswith("linux") and hasattr(__import__("ctypes").CDLL(None), "mallopt")
    assert (returned, after) == (("True", "True") if glibc else ("False", "False"))
