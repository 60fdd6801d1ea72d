"""``convert_torch``: torch ``.pth`` -> minicnn ``.npz``, and parity with torchvision when it is there."""
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import models
from minicnn.models import convert


def test_importing_convert_does_not_import_torch():
    code = "import sys, minicnn.models.convert, minicnn.models; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)   # makes `import torch` raise ImportError
    (tmp_path / "in.pth").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"convert-torch needs PyTorch: pip install torch"):
        convert.convert_torch(tmp_path / "in.pth", tmp_path / "out.npz")


def test_state_to_numpy_unwraps_checkpoints_and_dataparallel():
    w = np.ones((2, 3), np.float32)
    out = convert.torch_state_to_numpy({"state_dict": {"module.fc.weight": w}, "epoch": 3})
    assert list(out) == ["fc.weight"] and out["fc.weight"].dtype == np.float32
    with pytest.raises(ValueError):
        convert.torch_state_to_numpy([1, 2])


def test_convert_roundtrip_through_a_pth(tmp_path):
    torch = pytest.importorskip("torch")
    mc.manual_seed(0)
    source = models.resnet20(num_classes=4)
    state = source.state_dict()
    torch_state = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    torch_state["bn1.num_batches_tracked"] = torch.tensor(5)
    torch.save(torch_state, tmp_path / "r20.pth")
    arrays = convert.convert_torch(tmp_path / "r20.pth", tmp_path / "r20.npz", model="resnet20")
    assert set(arrays) == set(state) | {"bn1.num_batches_tracked"}
    target = models.resnet20(num_classes=4)
    target.load_state_dict(mc.load(tmp_path / "r20.npz"))
    x = mc.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    with mc.no_grad():
        np.testing.assert_array_equal(source.eval()(x).numpy(), target.eval()(x).numpy())


def test_convert_reports_a_layout_mismatch_before_writing(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"fc.weight": torch.zeros(10, 64)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="missing"):
        convert.convert_torch(tmp_path / "bad.pth", tmp_path / "bad.npz", model="resnet20")
    assert not (tmp_path / "bad.npz").exists()


# -- torchvision parity (skipped unless torchvision is installed) ----------------------------------
PARITY = [("resnet18", (3, 64, 64)), ("resnet50", (3, 64, 64)), ("densenet121", (3, 64, 64)),
          ("vgg11_bn", (3, 32, 32))]


@pytest.mark.parametrize("name,in_shape", PARITY)
def test_torchvision_weights_give_torchvision_outputs(name, in_shape, tmp_path):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = getattr(tv.models, name)().eval()
    # make batch norm non-trivial in eval mode
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    torch.save(reference.state_dict(), tmp_path / "w.pth")
    convert.convert_torch(tmp_path / "w.pth", tmp_path / "w.npz")
    model = models.get(name)
    model.load_state_dict(mc.load(tmp_path / "w.npz"))
    x = np.random.default_rng(0).standard_normal((2,) + in_shape).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with mc.no_grad():
        got = model.eval()(mc.Tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
