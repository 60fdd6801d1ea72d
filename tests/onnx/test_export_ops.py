"""Op by op: the ONNX mapping of each minicnn Function matches onnxruntime, including where ONNX's
operator differs (LRN's window, ceil-mode average pooling's divisor, adaptive bins); what cannot be
exported fails naming the op and the module."""
import io

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from minicnn.onnx import compare, export  # noqa: E402


class Lambda(nn.Module):
    """A module running ``fn`` on its input: functional calls, as a model's own forward has them."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _check(model, x, tmp_path, **kwargs):
    export(model, x, tmp_path / "m.onnx", **kwargs)
    worst_abs, worst_rel = compare(model, tmp_path / "m.onnx", x)
    assert worst_rel < 1e-5, (worst_abs, worst_rel)
    bigger = np.concatenate([x, x[::-1] * 2]) if kwargs.get("dynamic_batch", True) else x
    assert compare(model, tmp_path / "m.onnx", bigger)[1] < 1e-5


@pytest.mark.parametrize("name, module, shape", [
    ("LRN, large alpha", nn.LocalResponseNorm(5, alpha=2.0, beta=0.75, k=1.5), (2, 7, 3, 3)),
    ("LRN, size 3 > C/2", nn.LocalResponseNorm(3, alpha=1.0, beta=0.5, k=2.0), (2, 4, 2, 2)),
    ("max pool, ceil_mode + padding", nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    ("max pool, ceil_mode", nn.MaxPool2d(3, 2, ceil_mode=True), (2, 3, 14, 14)),
    ("avg pool, padding counted", nn.AvgPool2d(3, 2, padding=1), (2, 3, 7, 6)),
    ("avg pool, ceil_mode: partial windows", nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    ("adaptive, global", nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    ("adaptive, whole windows", nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 4, 6)),
    ("adaptive, overlapping bins", nn.AdaptiveAvgPool2d((3, 4)), (2, 3, 5, 7)),
    ("adaptive, 1x1 -> 7x7 (VGG at small inputs)", nn.AdaptiveAvgPool2d((7, 7)), (2, 3, 1, 1)),
    ("conv, groups, stride, rectangular", nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2),
     (2, 4, 7, 6)),
    ("batch norm 1d", nn.BatchNorm1d(5), (3, 5)),
    ("sigmoid", nn.Sigmoid(), (2, 5)),
    ("tanh", nn.Tanh(), (2, 5)),
    ("softmax", nn.Softmax(dim=1), (2, 5)),
    ("log_softmax", nn.LogSoftmax(dim=1), (2, 5)),
    ("linear on (N, L, in)", nn.Linear(5, 3), (2, 4, 5)),
    ("linear without bias", nn.Linear(5, 3, bias=False), (2, 5)),
    ("dropout in eval: identity", nn.Sequential(nn.Dropout(0.5), nn.ReLU()), (2, 5)),
    ("flatten", nn.Flatten(), (2, 3, 2, 2)),
])
def test_layer(name, module, shape, tmp_path):
    mc.manual_seed(0)
    for key, buffer in module.named_buffers():
        if key.endswith("running_var"):
            buffer[...] = np.linspace(0.5, 2.0, buffer.size)
        elif key.endswith("running_mean"):
            buffer[...] = np.linspace(-1.0, 1.0, buffer.size)
    _check(module, _x(*shape), tmp_path)


@pytest.mark.parametrize("name, fn, shape", [
    ("residual add, sub, mul, div by constants", lambda x: (x + 1.5) * x - x / 2.0, (2, 3)),
    ("concat, channel axis", lambda x: mc.concat([x, F.relu(x), -x], axis=1), (2, 3, 2, 2)),
    ("stack", lambda x: mc.stack([x, x * 2], axis=1), (2, 3)),
    ("slices, ints, negative step", lambda x: x[:, 1, ::-2, 1:], (2, 3, 5, 4)),
    ("ellipsis", lambda x: x[..., ::2], (2, 3, 4)),
    ("mean, sum, max over axes", lambda x: x.mean(axis=(2, 3)) + x.sum(axis=(1, 2)).max(axis=-1, keepdims=True),
     (2, 3, 4, 5)),
    ("reshape, transpose, matmul", lambda x: x.reshape(x.shape[0], 6, 2).transpose(0, 2, 1) @ mc.tensor(
        np.ones((6, 3), np.float32)), (2, 3, 4)),
    ("pow, exp, log", lambda x: ((x ** 2) + 1).log() + (-x).exp(), (2, 3)),
    ("F.softmax", lambda x: F.softmax(x, axis=1), (2, 4)),
    ("float64", lambda x: F.relu(x) * 2.0, (2, 3)),
])
def test_functional(name, fn, shape, tmp_path):
    x = _x(*shape).astype(np.float64) if name == "float64" else _x(*shape)
    _check(Lambda(fn), x, tmp_path)


def test_opset_18_and_21(tmp_path):
    model = Lambda(lambda x: x.mean(axis=(2, 3), keepdims=True).max(axis=1))
    for opset in (18, 21):
        _check(model, _x(2, 3, 4, 4), tmp_path, opset_version=opset)
        assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == opset


def test_residual_zero_channels_follow_the_batch(tmp_path):
    """ResNet's option-A shortcut concatenates zeros of the batch's size: ConstantOfShape."""
    def pad(x):
        x = x[:, :, ::2, ::2]
        zeros = mc.Tensor(np.zeros((x.shape[0], 2) + x.shape[2:], np.float32))
        return mc.concat([zeros, x, zeros], axis=1)
    _check(Lambda(pad), _x(2, 3, 4, 4), tmp_path)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "ConstantOfShape" in ops and "Shape" in ops


def test_fixed_batch_names_and_file_objects(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    buffer = io.BytesIO()
    proto = export(model, mc.tensor(_x(2, 3, 4, 4)), buffer, input_names=["image"],
                   output_names=["logits"], dynamic_batch=False)
    loaded = onnx.load_from_string(buffer.getvalue())
    assert loaded == proto
    assert [i.name for i in loaded.graph.input] == ["image"]
    assert [o.name for o in loaded.graph.output] == ["logits"]
    dims = [d.dim_value for d in loaded.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 2]
    assert {i.name for i in loaded.graph.initializer} >= {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert any(n.name.startswith("0/Conv") for n in loaded.graph.node)
    _check(model, _x(2, 3, 4, 4), tmp_path, dynamic_batch=False)


def test_two_inputs_and_two_outputs(tmp_path):
    class TwoWay(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, a, b):
            return self.fc(a + b), F.relu(a)

    model, a, b = TwoWay(), _x(2, 3), _x(2, 3, seed=1)
    export(model, (a, b), tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [i.name for i in graph.input] == ["input0", "input1"]
    assert [o.name for o in graph.output] == ["output0", "output1"]
    assert compare(model, tmp_path / "m.onnx", a, b)[1] < 1e-6


class Swish(mc.Function):
    def forward(self, x):
        self.x = x
        return x / (1 + np.exp(-x))

    def backward(self, g):
        return g


def test_an_op_without_mapping_names_itself_and_its_module(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), Lambda(lambda x: Swish()(x)))
    with pytest.raises(ValueError, match=r"no ONNX mapping for Swish \(called in module '1' \(Lambda\)\)"):
        export(model, _x(2, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_what_cannot_be_exported_is_refused(tmp_path):
    cases = [
        (nn.LocalResponseNorm(4), "LocalResponseNorm of even size 4"),
        (Lambda(lambda x: F.dropout(x, 0.5, training=True)), "dropout in training mode"),
        (Lambda(lambda x: x - x.data.mean()), "computed from the model's input outside the graph"),
        (Lambda(lambda x: x - x.max(axis=1, keepdims=True).detach()), "follows the batch size but is not one value"),
        (Lambda(lambda x: x[:1]), "indexing .* along dimension 0, which follows the batch size"),
        (Lambda(lambda x: x if float(x.sum()) > 0 else -x), "ran different operations"),
    ]
    for model, message in cases:
        with pytest.raises(ValueError, match=message):
            export(model, _x(2, 4, 2, 2) + 0.1, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset_version 16 is not supported; use 17 to 21"):
        export(nn.ReLU(), _x(2, 3), tmp_path / "m.onnx", opset_version=16)
    with pytest.raises(ValueError, match="input 0 is a int64 array"):
        export(nn.ReLU(), np.arange(3), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"output_names \['a', 'b'\] must be 1 distinct names"):
        export(nn.ReLU(), _x(2, 3), tmp_path / "m.onnx", output_names=["a", "b"])


def test_without_onnx_a_clear_error(monkeypatch, tmp_path):
    from minicnn.onnx import exporter
    monkeypatch.setattr(exporter, "onnx", None)
    with pytest.raises(RuntimeError, match=r'needs the onnx package: pip install "minicnn\[onnx\]"'):
        export(nn.ReLU(), _x(2, 3), tmp_path / "m.onnx")


def test_a_model_on_another_device(tmp_path):
    """The trace runs where the model's parameters are (here the CPU stand-in of a GPU); the
    weights are written from the host."""
    testing = pytest.importorskip("minicnn.testing")
    device = "standin" if "standin" in testing.available_devices() else "cpu"
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).to(device)
    _check(model, _x(2, 3, 5, 5), tmp_path)
