"""The backend and its CPU stand-in device: strict like CuPy."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, testing
from minicnn.testing import standin


def test_get_array_module():
    assert mc.get_array_module(np.zeros(2)) is np
    assert mc.get_array_module(mc.Tensor([1.0])) is np
    assert backend.get_array_module(standin.zeros(2)) is standin
    assert mc.cuda.is_available() in (True, False)


def test_standin_arithmetic_stays_on_device():
    a = standin.arange(6.0).reshape(2, 3)
    b = standin.ones((2, 3), dtype=np.float32)
    c = a * b + 1.0
    assert isinstance(c, testing.StandinArray)
    assert isinstance(standin.maximum(c, 0.0), testing.StandinArray)
    assert isinstance(c.sum(), testing.StandinArray) and c.sum().ndim == 0  # 0-d, as CuPy
    assert isinstance(standin.lib.stride_tricks.as_strided(a, (2, 2), a.strides), testing.StandinArray)
    out = standin.zeros(3)
    standin.add.at(out, standin.asarray(np.array([0, 0, 2])), 1.0)
    np.testing.assert_array_equal(backend.to_numpy(out), [2.0, 0.0, 1.0])


def test_standin_refuses_mixing_with_numpy():
    a = standin.ones(3)
    with pytest.raises(TypeError):
        a + np.ones(3)
    with pytest.raises(TypeError):
        np.ones(3) * a
    with pytest.raises(TypeError):
        standin.concatenate([a, np.ones(3)])
    with pytest.raises(TypeError):
        a[np.array([0, 1])] = np.ones(2)


def test_standin_refuses_implicit_conversion():
    a = standin.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.zeros(3)[:] = a
    np.testing.assert_array_equal(backend.to_numpy(a), np.ones(3))  # explicit is fine
    assert float(a.sum()) == 3.0


def test_device_moves():
    x = np.arange(4.0)
    s = backend.to_device(x, "standin")
    assert backend.device_of(s) == "standin"
    assert backend.to_device(s, "cpu").__class__ is np.ndarray
    with pytest.raises(ValueError):
        backend.normalize_device("tpu")
    if not mc.cuda.is_available():
        with pytest.raises(RuntimeError, match="CuPy"):
            backend.module_for_device("cuda")


def test_host_code_in_an_op_is_caught_on_the_standin():
    """The kind of bug the stand-in exists for: an op that allocates with numpy."""
    class Bad(mc.Function):
        def forward(self, x):
            return x + np.zeros(x.shape)   # wrong: should be xp.zeros

        def backward(self, g):
            return g

    Bad()(mc.Tensor(np.ones(2)))            # works on the CPU ...
    with pytest.raises(TypeError):
        Bad()(mc.Tensor(np.ones(2)).to("standin"))   # ... and fails like CuPy would


def test_watching_the_standin_classifies_what_a_gpu_would_do():
    seen = []
    xp = testing.standin
    with testing.watch_standin(lambda kind, name: seen.append((kind, name))):
        a = xp.asarray(np.ones((4, 3)))          # host -> device
        a.reshape(3, 4)                          # a view
        b = a * 2                                # a kernel
        s = b.sum()                              # a reduction: a kernel (a 0-d device array)
        float(s)                                 # device -> host: a sync
        a[0] = 1                                 # an in-place write
        xp.empty_like(a)                         # memory only
        xp.add(a, a, out=b)                      # into an existing array: a kernel
        a.T.copy()                               # a view, then a kernel
    assert [kind for kind, _ in seen] == ["upload", "view", "launch", "launch", "download", "launch",
                                          "alloc", "launch", "launch"]
    assert seen[2] == ("launch", "numpy.multiply") and seen[4] == ("download", "__float__")
    before = len(seen)
    a + a  # after the block: not watched
    assert len(seen) == before
