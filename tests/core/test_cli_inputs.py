"""Inputs that used to end in a traceback get one line naming the option or file, exit status 1
(argparse's own errors: 2)."""
import sys
import types
import zipfile

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli import main


def error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("shape", ["3,20000,20000", "3,224", "0,32,32", "64,32,32"])
def test_summary_input_is_bounded(shape, capsys):
    assert main(["summary", "resnet18", "--input", shape]) == 1
    assert f"--input {shape}: expected C,H,W" in error_line(capsys)


def test_gradcheck_of_a_file_that_is_not_python(tmp_path, capsys):
    assert main(["gradcheck", "/etc/passwd:Cls"]) == 1
    assert "/etc/passwd is not a Python file" in error_line(capsys)
    binary = tmp_path / "op.py"
    binary.write_bytes(b"\xff\xfe\x00 not python (")
    assert main(["gradcheck", f"{binary}:Op"]) == 1
    assert f"{binary} is not valid Python" in error_line(capsys)


class _FakeTensor:
    """What convert-torch meets in a bfloat16 checkpoint: .numpy() raises TypeError."""

    dtype = "torch.bfloat16"

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        raise TypeError("Got unsupported ScalarType BFloat16")


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.SimpleNamespace(load=lambda *a, **k: {"fc.weight": _FakeTensor()})
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


def test_convert_torch_bfloat16_and_folder_output(tmp_path, capsys, fake_torch):
    pth = tmp_path / "x.pth"
    pth.write_bytes(b"stand-in")
    assert main(["convert-torch", str(pth), str(tmp_path)]) == 1
    assert f"the output {tmp_path} is a folder" in error_line(capsys)
    assert main(["convert-torch", str(pth), str(tmp_path / "x.npz")]) == 1
    err = error_line(capsys)
    assert "'fc.weight' is torch.bfloat16" in err and "model.float()" in err
    assert not (tmp_path / "x.npz").exists()

    def damaged(*args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed reading zip archive\nmore detail")

    fake_torch.load = damaged
    assert main(["convert-torch", str(pth), str(tmp_path / "x.npz")]) == 1
    assert f"cannot read {pth} (RuntimeError: PytorchStreamReader" in error_line(capsys)


def npz_with_header(path, header):
    """An .npz whose one member has the given .npy header (padded as numpy pads it)."""
    header = header + b" " * (63 - 10 - len(header)) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(12)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("features.0.weight.npy", npy)
    return path


def test_npy_header_raising_token_error(tmp_path, capsys):
    path = npz_with_header(tmp_path / "w.npz", b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,")
    with pytest.raises(ValueError, match=r"entry 'features.0.weight' has a damaged .npy header \(TokenError"):
        mc.load(path)
    assert main(["evaluate", "--checkpoint", str(path), "--model", "lenet5"]) == 1
    err = error_line(capsys)
    assert str(path) in err and "damaged .npy header" in err


def test_train_time_budget_is_not_an_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--time-budget", "inf"])
    assert info.value.code == 2  # argparse's usage lines, then its one error line
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unrecognized arguments: --time-budget inf" in err
