"""Every architecture family exports, passes ``onnx.checker`` (full check) and runs in onnxruntime
with minicnn's eval outputs, for two batch sizes (the batch dimension is dynamic). The models are
the families' own classes at reduced width, so the suite stays fast."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import models

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from minicnn.onnx import compare, export  # noqa: E402

FAMILIES = {  # name: (build, input shape without the batch)
    "lenet5": (lambda: models.lenet5(), (1, 28, 28)),
    "fashion_cnn": (lambda: models.fashion_cnn(), (1, 28, 28)),
    "alexnet (groups=2)": (lambda: models.alexnet(num_classes=7, groups=2, widths=(8, 16, 16, 16, 16),
                                                  hidden=32), (3, 227, 227)),
    "zfnet": (lambda: models.zfnet(num_classes=7, conv12=(8, 16), conv345=(16, 16, 16), hidden=32),
              (3, 224, 224)),
    "vgg11_bn": (lambda: models.vgg11_bn(num_classes=7, hidden=32), (3, 32, 32)),
    "googlenet": (lambda: models.googlenet(num_classes=7, width=0.25), (3, 64, 64)),
    "resnet20": (lambda: models.resnet20(num_classes=7, widths=(4, 8, 16)), (3, 32, 32)),
    "densenet": (lambda: models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                                         num_classes=7), (3, 32, 32)),
}


def _randomize_batch_norm(model, rng):
    """Running statistics other than 0 and 1, so that exporting them wrongly would show."""
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer[...] = rng.normal(0, 0.1, buffer.shape)
        elif name.endswith("running_var"):
            buffer[...] = rng.uniform(0.5, 2.0, buffer.shape)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_exports_and_matches_onnxruntime(family, tmp_path):
    build, shape = FAMILIES[family]
    mc.manual_seed(0)
    model = build()
    rng = np.random.default_rng(0)
    _randomize_batch_norm(model, rng)
    path = tmp_path / "model.onnx"
    proto = export(model, rng.standard_normal((2,) + shape).astype(np.float32), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (1, 3):
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        worst_abs, worst_rel = compare(model, path, x)
        print(f"{family}: batch {batch}: largest difference {worst_abs:.2e} (relative {worst_rel:.2e})")
        assert worst_rel < 1e-3
    assert model.training  # export traced in eval mode and put the mode back
