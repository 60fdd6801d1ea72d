"""``mc.backends``: PyTorch's TF32 switches (``minicnn/fast/tf32.py``), and what they do to CuPy (a
stand-in for CuPy's compute-type switch here, put in the device table's ``cuda`` row; the real one
in the GPU test)."""
import types

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, testing
from minicnn.fast import tf32


class FakeDeviceArray:
    """An array of the fake CuPy below (the device table's ``cuda`` row holds its arrays)."""


def _fake_cuda(monkeypatch, module, gpu):
    """``module`` as CuPy in the device table, with (``gpu``) or without a GPU; both flags off."""
    row = backend.Device("cuda", FakeDeviceArray, module, from_host=None, to_host=None, available=lambda: gpu)
    monkeypatch.setitem(backend._DEVICES, "cuda", row)
    monkeypatch.setitem(backend._BY_TYPE, FakeDeviceArray, row)
    monkeypatch.setattr(backend, "cuda_available", lambda: gpu)
    monkeypatch.setattr(tf32, "_flags", {"matmul": False, "conv": False})


def _cupy_with_switch(set_compute_type):
    linalg = types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7, set_compute_type=set_compute_type)
    return types.SimpleNamespace(_core=types.SimpleNamespace(_routines_linalg=linalg), __version__="fake")


@pytest.fixture
def fake_cupy(monkeypatch):
    """CuPy's ``_core._routines_linalg`` compute-type switch, recording what minicnn sets, with a GPU."""
    calls = []
    _fake_cuda(monkeypatch, _cupy_with_switch(lambda dtype, kind: calls.append((np.dtype(dtype), kind))), gpu=True)
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
    with tf32.tf32_for("conv", FakeDeviceArray()):
        assert fake_cupy == [(np.dtype(np.float32), 7)]
    assert fake_cupy[-1] == (np.dtype(np.float32), 1)  # back to the matmul flag's setting
    with tf32.tf32_for("conv", np.ones(2)), tf32.tf32_for("conv", testing.standin.ones(2)):
        assert len(fake_cupy) == 2                # host and stand-in arrays: no CuPy product
    mc.backends.cuda.matmul.allow_tf32 = True
    n = len(fake_cupy)
    with tf32.tf32_for("conv", FakeDeviceArray()):  # both TF32: nothing to switch
        pass
    assert len(fake_cupy) == n


def test_the_flags_work_where_cupy_is_installed_without_a_gpu(monkeypatch, device):
    """CuPy's switch asks the GPU for its compute capability and raises without one (a laptop
    with CuPy installed): the flags are then only kept, and convolutions run on the CPU devices."""
    import minicnn.functional as F

    if device == "cuda":
        pytest.skip("this test takes the GPU away")

    def no_gpu(dtype, kind):
        raise RuntimeError("cudaErrorInsufficientDriver")
    _fake_cuda(monkeypatch, _cupy_with_switch(no_gpu), gpu=False)
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
    _fake_cuda(monkeypatch, types.SimpleNamespace(__version__="0.0"), gpu=True)
    with pytest.raises(RuntimeError, match=r"CuPy \(0.0\) has no switch"):
        mc.backends.cuda.matmul.allow_tf32 = True


@pytest.mark.gpu
@pytest.mark.skipif(not mc.cuda.is_available(), reason="CuPy with a GPU is not available")
def test_tf32_changes_float32_convolution_results_on_a_gpu_within_its_precision(monkeypatch):
    import minicnn.functional as F
    monkeypatch.setattr(tf32, "_flags", dict(tf32._flags))
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
