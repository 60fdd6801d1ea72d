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
