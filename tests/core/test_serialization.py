"""mc.save / mc.load: npz of arrays, nested keys flattened, atomic, never unpickling."""
import os
import pickle

import numpy as np
import pytest

import minicnn as mc


def test_round_trip_nested(tmp_path):
    path = tmp_path / "ckpt.npz"
    state = {"model": {"fc.weight": np.ones((2, 3), np.float32), "fc.bias": mc.Tensor([1.0, 2.0])},
             "epoch": 3, "note": "hello"}
    mc.save(state, path)
    back = mc.load(path)
    assert set(back) == {"model.fc.weight", "model.fc.bias", "epoch", "note"}
    assert back["model.fc.weight"].dtype == np.float32
    np.testing.assert_array_equal(back["model.fc.bias"], [1.0, 2.0])
    assert int(back["epoch"]) == 3 and back["note"] == "hello"


def test_pickled_content_is_refused(tmp_path):
    obj = tmp_path / "obj.npz"
    np.savez(obj, bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        mc.load(obj)
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ValueError):
        mc.load(raw)


def test_save_refuses_objects(tmp_path):
    with pytest.raises(ValueError, match="x"):
        mc.save({"x": [object()]}, tmp_path / "a.npz")
    with pytest.raises(ValueError, match="y"):
        mc.save({"y": None}, tmp_path / "b.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mc.save({"a": np.zeros(3)}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        mc.save({"a": np.ones(3)}, path)
    np.testing.assert_array_equal(mc.load(path)["a"], np.zeros(3))   # old file intact
    assert os.listdir(tmp_path) == ["ckpt.npz"]                       # no temporary left behind


def test_device_arrays_are_saved_as_host_arrays(tmp_path):
    t = mc.Tensor(np.arange(3.0)).to("standin")
    mc.save({"t": t}, tmp_path / "t.npz")
    np.testing.assert_array_equal(mc.load(tmp_path / "t.npz")["t"], np.arange(3.0))


# -- PyTorch's way of saving, and hostile files ----------------------------------------------------
def _model():
    mc.manual_seed(0)
    return mc.nn.Sequential(mc.nn.Linear(3, 2), mc.nn.ReLU(), mc.nn.Linear(2, 2))


def test_a_module_passed_to_save_is_refused_naming_state_dict(tmp_path):
    model = _model()
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        mc.save(model, tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        mc.save(mc.optim.SGD(model.parameters(), lr=0.1), tmp_path / "o.npz")
    with pytest.raises(TypeError, match="dict"):
        mc.save(mc.ones(2), tmp_path / "t.npz")
    assert not list(tmp_path.iterdir())


def test_checkpoint_written_the_pytorch_way_loads_back(tmp_path):
    model = _model()
    optimizer = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(mc.randn(4, 3)).sum()
    loss.backward()
    optimizer.step()
    path = tmp_path / "ckpt.npz"
    mc.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, path)

    ckpt = mc.load(path, map_location="cpu", weights_only=True)
    assert "model" in ckpt and "optimizer" in ckpt and "nothing" not in ckpt
    assert ckpt.get("nothing") is None and int(ckpt["epoch"]) == 3
    fresh = _model()
    for p in fresh.parameters():
        p.data[...] = 0
    fresh.load_state_dict(ckpt["model"])
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    restored = mc.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(ckpt["optimizer"])
    with pytest.raises(KeyError):
        ckpt["modle"]


def test_map_location_moves_arrays_to_the_device(tmp_path):
    mc.save({"w": np.arange(3.0)}, tmp_path / "w.npz")
    back = mc.load(tmp_path / "w.npz", map_location=mc.device("standin"))
    assert mc.get_array_module(back["w"]) is not np
    assert mc.tensor(back["w"]).device == "standin"
    with pytest.raises(TypeError, match="map_location"):
        mc.load(tmp_path / "w.npz", map_location=lambda storage, loc: storage)


def _npy_entry(shape, dtype="<f4", payload=b""):
    """A hand-made .npy member: a header declaring ``shape``, followed by ``payload``."""
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + payload


def test_a_header_declaring_more_than_the_entry_holds_is_refused_before_allocating(tmp_path):
    import zipfile
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w") as archive:          # declares 4 TB, holds 16 bytes
        archive.writestr("w.npy", _npy_entry((10**12,), payload=b"\0" * 16))
    with pytest.raises(ValueError, match=r"'w'.*declares shape \(1000000000000,\)"):
        mc.load(bomb)


def test_a_compressed_entry_claiming_an_impossible_ratio_is_refused(tmp_path):
    import zipfile
    path = tmp_path / "ratio.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", _npy_entry((4,), payload=b"\0" * 16))
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("w.npy")
    forged = (info.file_size * 100000).to_bytes(4, "little")      # a lie in both size fields
    for start in (raw.find(b"PK\x03\x04") + 22, raw.find(b"PK\x01\x02") + 24):
        raw[start:start + 4] = forged
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="more than deflate"):
        mc.load(path)


def test_complex_entries_are_refused(tmp_path):
    np.savez(tmp_path / "c.npz", w=np.ones(3, np.complex64))
    with pytest.raises(ValueError, match="complex"):
        mc.load(tmp_path / "c.npz")


def test_non_finite_values_are_returned_for_the_caller_to_judge(tmp_path):
    mc.save({"w": np.array([1.0, np.nan, np.inf])}, tmp_path / "n.npz")
    back = mc.load(tmp_path / "n.npz")["w"]
    assert np.isnan(back[1]) and np.isinf(back[2])


@pytest.mark.parametrize("content, message", [
    (b"epoch,loss\n1,0.5\n", "not an .npz \\(zip\\) archive"),
    (b"", "empty"),
    (pickle.dumps({"x": 1}), "pickle"),
])
def test_files_that_are_not_archives_say_what_they_are(tmp_path, content, message):
    path = tmp_path / "weights.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        mc.load(path)
    if content.startswith(b"epoch"):
        assert "pickle" not in str(error.value)


def test_a_single_npy_file_is_named_as_such(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(2))
    with pytest.raises(ValueError, match="single .npy array"):
        mc.load(tmp_path / "a.npy")


def test_loaded_arrays_are_writable(tmp_path):
    mc.save({"w": np.ones((2, 2), np.float32), "f": np.asfortranarray(np.arange(6.0).reshape(2, 3))},
            tmp_path / "w.npz")
    back = mc.load(tmp_path / "w.npz")
    back["w"] += 1                                          # optimizer state is updated in place
    np.testing.assert_array_equal(back["w"], 2 * np.ones((2, 2)))
    np.testing.assert_array_equal(back["f"], np.arange(6.0).reshape(2, 3))
