"""ONNX export: a minicnn model as a file that onnxruntime runs and Netron draws (docs/interop.md).

    trace.py    run the model once and read the computation back from the autograd graph
    ops.py      each minicnn Function as ONNX nodes (the table of what can be exported)
    exporter.py name, convert, assemble, check with onnx.checker, write
    runtime.py  run an exported file with onnxruntime and compare it with the model

``export(model, args, f, input_names=None, output_names=None, dynamic_batch=True,
opset_version=17)`` follows ``torch.onnx.export``. Needs the optional ``onnx`` package (and
``onnxruntime`` to run the result): ``pip install "minicnn[onnx]"``.
"""
from .exporter import SUPPORTED_OPSETS, export
from .runtime import compare, run

__all__ = ["export", "run", "compare", "SUPPORTED_OPSETS"]
