"""``.safetensors`` through mc.save / mc.load: interchangeable with the ``safetensors`` package in
both directions, bit for bit, and malformed files refused before anything is allocated."""
import json
import tracemalloc

import numpy as np
import pytest

import minicnn as mc
from minicnn import models
from minicnn import safetensors as st
from minicnn.train import load_pretrained


def _arrays():
    """Every dtype of the format that NumPy has, a transposed view, a 0-d and an empty array."""
    rng = np.random.default_rng(0)
    out = {name: (rng.standard_normal((3, 5)) * 100).astype(dtype)
           for name, dtype in [("f16", np.float16), ("f32", np.float32), ("f64", np.float64),
                               ("i8", np.int8), ("u8", np.uint8), ("i16", np.int16),
                               ("u16", np.uint16), ("i32", np.int32), ("u32", np.uint32),
                               ("i64", np.int64), ("u64", np.uint64)]}
    out["f32"][0, :3] = [np.nan, np.inf, -0.0]
    out["bool"] = rng.standard_normal(7) > 0
    out["transposed"] = np.arange(12, dtype=np.float32).reshape(3, 4).T   # not C-contiguous
    out["scalar"] = np.array(7, dtype=np.int64)
    out["empty"] = np.zeros((0, 4), dtype=np.float32)
    out["big_endian"] = np.arange(4, dtype=">f4")
    return out


def _same(a, b):
    """Bit-identical: same dtype (by value), shape and bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and \
        a.astype(a.dtype.newbyteorder("<")).tobytes() == b.astype(b.dtype.newbyteorder("<")).tobytes()


def test_minicnn_files_load_in_the_package_bit_identical(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open
    arrays, path = _arrays(), tmp_path / "w.safetensors"
    mc.save(arrays, path, metadata={"architecture": "resnet20"})
    back = safetensors_numpy.load_file(str(path))
    assert set(back) == set(arrays)
    for key in arrays:
        assert _same(back[key], arrays[key]), key
    with safe_open(str(path), "np") as f:
        assert f.metadata() == {"architecture": "resnet20", "minicnn_version": mc.__version__}


def test_package_files_load_in_minicnn_bit_identical(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {k: v.astype(v.dtype.newbyteorder("<"), order="C")   # the package writes views and
              for k, v in _arrays().items()}                       # big-endian arrays wrongly
    path = tmp_path / "p.safetensors"
    safetensors_numpy.save_file(arrays, str(path), metadata={"format": "np"})
    back = mc.load(path)
    assert set(back) == set(arrays)
    for key in arrays:
        assert _same(back[key], arrays[key]), key
    assert st.metadata(path) == {"format": "np"}
    assert mc.serialization.entry_shapes(path)["transposed"] == (4, 3)


def test_a_model_reloaded_from_safetensors_gives_identical_outputs(tmp_path):
    mc.manual_seed(0)
    model = models.resnet20(num_classes=3, widths=(4, 8, 8)).eval()
    for name, buffer in model.named_buffers():     # non-trivial running statistics
        if name.endswith("running_var"):
            buffer[...] = np.random.default_rng(1).uniform(0.5, 2, buffer.shape)
    x = mc.Tensor(np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32))
    mc.save(model.state_dict(), tmp_path / "r.safetensors")
    copy = models.resnet20(num_classes=3, widths=(4, 8, 8)).eval()
    copy.load_state_dict(mc.load(tmp_path / "r.safetensors"))
    with mc.no_grad():
        assert model(x).numpy().tobytes() == copy(x).numpy().tobytes()


def test_load_pretrained_reads_torchvision_names_from_safetensors(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    mc.manual_seed(0)
    source = models.resnet18(num_classes=1000)      # torchvision's keys, as its files hold them
    state = source.state_dict()
    assert "layer1.0.downsample" not in "".join(state) and "layer2.0.downsample.0.weight" in state
    safetensors_numpy.save_file(state, str(tmp_path / "resnet18.safetensors"))
    model = load_pretrained(models.resnet18(num_classes=1000), tmp_path / "resnet18.safetensors",
                            num_classes=10)
    assert model.fc.weight.shape == (10, 512)
    np.testing.assert_array_equal(model.layer4[1].conv2.weight.data, state["layer4.1.conv2.weight"])


def test_save_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="'note' is <U5"):
        mc.save({"note": "hello"}, tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="metadata must map strings to strings"):
        mc.save({"a": np.zeros(2)}, tmp_path / "a.safetensors", metadata={"epoch": 3})
    with pytest.raises(ValueError, match="metadata is stored in .safetensors files only"):
        mc.save({"a": np.zeros(2)}, tmp_path / "a.npz", metadata={"architecture": "x"})


def _forge(path, header, data=b"", length=None):
    text = json.dumps(header).encode()
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text + data)
    return path


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, length, message", [
    ({"a": F32}, bytes(8), 10 ** 9, "header claims 1000000000 bytes but the file holds"),
    ({"a": F32, "b": {**F32, "data_offsets": [4, 12]}}, bytes(12), None, "'b' .* overlaps"),
    ({"a": {**F32, "data_offsets": [0, 8 * 10 ** 12], "shape": [2 * 10 ** 12]}}, bytes(8), None,
     r"data_offsets \[0, 8000000000000\]; expected \[begin, end\] with 0 <= begin <= end <= 8"),
    ({"a": {**F32, "dtype": "BF16"}}, bytes(8), None, "dtype 'BF16'; readable are BOOL"),
    ({"a": {**F32, "shape": [3]}}, bytes(8), None, r"shape \(3,\) of F32 \(12 bytes\) but its offsets span 8"),
    ({"a": {**F32, "data_offsets": [4, 12]}}, bytes(12), None, "leaves bytes 0..4 unused"),
    ({"a": F32}, bytes(12), None, "4 bytes after the last entry"),
    ({"a": {**F32, "shape": [-2]}}, bytes(8), None, "expected a list of non-negative integers"),
    ([1, 2], b"", None, "header is a JSON list"),
    ({"__metadata__": {"v": 1}}, b"", None, "__metadata__ must map strings to strings"),
])
def test_malformed_files_are_refused(tmp_path, header, data, length, message):
    path = _forge(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(ValueError, match=message):
        mc.load(path)


def test_short_and_non_json_files_are_refused(tmp_path):
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="shorter than the 8-byte header length"):
        mc.load(tmp_path / "short.safetensors")
    (tmp_path / "text.safetensors").write_bytes((3).to_bytes(8, "little") + b"{x]")
    with pytest.raises(ValueError, match="header is not JSON"):
        mc.load(tmp_path / "text.safetensors")


def test_a_forged_size_is_refused_before_allocating(tmp_path):
    """100 MB declared, consistently (shape, offsets), in a file of a few hundred bytes."""
    n = 25 * 10 ** 6
    path = _forge(tmp_path / "big.safetensors",
                  {"a": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}})
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="offsets"):
            mc.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_keys_and_max_bytes(tmp_path):
    mc.save({"model": {"w": np.ones(4, np.float32)}, "other": np.ones(100)}, tmp_path / "c.safetensors")
    assert list(mc.load(tmp_path / "c.safetensors", keys=("model",))) == ["model.w"]
    with pytest.raises(ValueError, match="more than the 100 a well-formed file"):
        mc.load(tmp_path / "c.safetensors", max_bytes=100)


def test_convert_torch_writes_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    from minicnn.models.convert import convert_torch
    state = {"fc.weight": torch.arange(6.0).reshape(2, 3).t(), "fc.bias": torch.ones(3)}
    torch.save(state, tmp_path / "w.pth")
    convert_torch(tmp_path / "w.pth", str(tmp_path / "w.safetensors"))
    back = mc.load(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(back["fc.weight"], state["fc.weight"].numpy())


def test_weights_to_and_from_pytorch(tmp_path):
    pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    mc.manual_seed(0)
    state = models.resnet20(num_classes=4, widths=(4, 8, 8)).state_dict()
    mc.save(state, tmp_path / "m.safetensors")
    in_torch = safetensors_torch.load_file(str(tmp_path / "m.safetensors"))
    assert all(_same(in_torch[k].numpy(), v) for k, v in state.items())
    safetensors_torch.save_file(in_torch, str(tmp_path / "t.safetensors"))
    back = mc.load(tmp_path / "t.safetensors")
    assert set(back) == set(state) and all(_same(back[k], v) for k, v in state.items())
