"""``mc.backends``: PyTorch's TF32 switches, and what they do to CuPy (a stand-in for CuPy's
compute-type switch here; the real one in the GPU test)."""
import types

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend


class FakeDeviceArray:
    """An array of the fake CuPy below (``backend._is_cupy`` is true of it)."""


@pytest.fixture
def fake_cupy(monkeypatch):
    """CuPy's ``_core._routines_linalg`` compute-type switch, recording what minicnn sets, with a GPU."""
    calls = []
    linalg = types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7,
                                   set_compute_type=lambda dtype, kind: calls.append((np.dtype(dtype), kind)))
    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace(_core=types.SimpleNamespace(_routines_linalg=linalg),
                                                                ndarray=FakeDeviceArray, __version__="fake"))
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(backend, "_tf32", {"matmul": False, "conv": False})
    return calls


def test_the_flags_default_to_full_float32_and_read_back():
    assert mc.backends.cuda.matmul.allow_tf32 is False and mc.backends.cudnn.allow_tf32 is False
    assert "allow_tf32=False" in repr(mc.backends.cudnn)


def test_the_matmul_flag_sets_cupys_float32_compute_type(fake_cupy):
    mc.backends.cuda.matmul.allow_tf32 = True
    assert fake_cupy == [(np.dtype(np.float32), 7)] and mc.backends.cuda.matmul.allow_tf32
    mc.backends.cuda.matmul.allow_tf32 = False
    assert fake_cupy[-1] == (np.dtype(np.float32), 1)


def test_the_conv_flag_applies_inside_conv_gemms_only(fake_cupy):
    mc.backends.cudnn.allow_tf32 = True
    assert fake_cupy == []                      # matrix products elsewhere stay float32
    with backend.tf32_for("conv", FakeDeviceArray()):
        assert fake_cupy == [(np.dtype(np.float32), 7)]
    assert fake_cupy[-1] == (np.dtype(np.float32), 1)  # back to the matmul flag's setting
    with backend.tf32_for("conv", np.ones(2)), backend.tf32_for("conv", backend.standin.ones(2)):
        assert len(fake_cupy) == 2                # host and stand-in arrays: no CuPy product
    mc.backends.cuda.matmul.allow_tf32 = True
    n = len(fake_cupy)
    with backend.tf32_for("conv", FakeDeviceArray()):  # both TF32: nothing to switch
        pass
    assert len(fake_cupy) == n


def test_the_flags_work_where_cupy_is_installed_without_a_gpu(monkeypatch, device):
    """CuPy's switch asks the GPU for its compute capability and raises without one (a laptop
    with CuPy installed): the flags are then only kept, and convolutions run on the CPU devices."""
    import minicnn.functional as F

    def no_gpu(dtype, kind):
        raise RuntimeError("cudaErrorInsufficientDriver")
    linalg = types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7, set_compute_type=no_gpu)
    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace(_core=types.SimpleNamespace(_routines_linalg=linalg),
                                                                ndarray=FakeDeviceArray, __version__="fake"))
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    monkeypatch.setattr(backend, "_tf32", {"matmul": False, "conv": False})
    mc.backends.cuda.matmul.allow_tf32 = True
    mc.backends.cudnn.allow_tf32 = True
    mc.backends.cuda.matmul.allow_tf32 = False   # the conv flag now differs from matmul's
    x = mc.Tensor(backend.to_device(np.ones((1, 2, 5, 5)), device), requires_grad=True)
    w = mc.Tensor(backend.to_device(np.ones((3, 2, 3, 3)), device), requires_grad=True)
    y = F.conv2d(x, w)
    y.sum().backward()
    assert float(y.sum()) == 3 * 9 * 18 and mc.backends.cudnn.allow_tf32


def test_a_flag_takes_booleans_only():
    with pytest.raises(TypeError, match="True or False"):
        mc.backends.cudnn.allow_tf32 = 1


def test_a_cupy_without_the_switch_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace(__version__="0.0"))
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(backend, "_tf32", {"matmul": False, "conv": False})
    with pytest.raises(RuntimeError, match=r"CuPy \(0.0\) has no switch"):
        mc.backends.cuda.matmul.allow_tf32 = True


@pytest.mark.gpu
@pytest.mark.skipif(not mc.cuda.is_available(), reason="CuPy with a GPU is not available")
def test_tf32_changes_float32_convolution_results_on_a_gpu_within_its_precision(monkeypatch):
    import minicnn.functional as F
    monkeypatch.setattr(backend, "_tf32", dict(backend._tf32))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 64, 16, 16)), rng.standard_normal((64, 64, 3, 3))
    exact = F.conv2d(mc.Tensor(x), mc.Tensor(w)).numpy()
    args = [mc.Tensor(backend.to_device(a.astype(np.float32), "cuda")) for a in (x, w)]
    full = F.conv2d(*args).numpy()
    mc.backends.cudnn.allow_tf32 = True
    try:
        fast = F.conv2d(*args).numpy()
    finally:
        mc.backends.cudnn.allow_tf32 = False
    scale = np.abs(exact).max()
    assert np.abs(full - exact).max() < 1e-5 * scale
    assert 1e-6 * scale < np.abs(fast - exact).max() < 1e-2 * scale  # rounded to TF32, and no worse
