"""``minicnn export``: a trained checkpoint (default ``runs/latest``) to an ONNX file.

The model is rebuilt and its weights loaded as ``minicnn evaluate`` does (the run's saved config
names the architecture, data set and image size; a bare weights file needs ``--model``). It is
then exported (:func:`minicnn.onnx.export`) and, where onnxruntime is installed, a test batch of
random images is run through both, and the largest difference printed.
"""
import os

import numpy

from .onnx import compare, export, runtime
from .train.config import UsageError, build_model, image_shape
from .train.finetune import check_weights, read_state_dict
from .train.run import saved_model_config


def add_export_arguments(parser):
    """The options of ``minicnn export``."""
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="a checkpoint written by 'minicnn train' (or its run folder), or a "
                             "weights file together with --model (default: runs/latest)")
    parser.add_argument("--model", default=None, metavar="NAME", help="architecture, for a weights file")
    parser.add_argument("--num-classes", type=int, default=None, metavar="K",
                        help="classes of the model, for a weights file without a run config")
    parser.add_argument("--dataset", default=None, help="the images the model takes (default: the run's)")
    parser.add_argument("--out", default="model.onnx", metavar="FILE", help="default: model.onnx")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    parser.add_argument("--static-batch", action="store_true",
                        help="a fixed batch size (that of the test batch) instead of a dynamic one")
    parser.add_argument("--batch-size", type=int, default=2, metavar="B",
                        help="images in the traced and the test batch (default 2)")
    return parser


def load_model(args):
    """``(model, config, path)``: the checkpoint's model with its weights, as ``evaluate`` builds it."""
    path, config, _ = saved_model_config(args)
    model = build_model(config)
    try:
        weights = read_state_dict(path, model)
        check_weights(model, weights, path)
        model.load_state_dict(weights)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    return model, config, path


def export_main(args, out=print):
    """Run ``minicnn export``; returns the exit status."""
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: expected a positive number of images")
    model, config, path = load_model(args)
    batch = numpy.random.default_rng(0).standard_normal((args.batch_size,) + image_shape(config))
    batch = batch.astype(numpy.float32)
    proto = export(model, batch, args.out, input_names=["image"], output_names=["logits"],
                   dynamic_batch=not args.static_batch, opset_version=args.opset)
    out(f"wrote {args.out} ({os.path.getsize(args.out)} bytes): {config['model']} from {path}")
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        for v in values:
            dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            out(f"  {kind:<7}{v.name}  float32[{', '.join(map(str, dims))}]")
    out(f"  opset  {proto.opset_import[0].version} (IR version {proto.ir_version})")
    if runtime.onnxruntime is None:
        out('  onnxruntime is not installed (pip install "minicnn[onnx]"): not checked')
        return 0
    worst_abs, worst_rel = compare(model, args.out, batch)
    out(f"  onnxruntime vs minicnn on a test batch of {args.batch_size}: largest difference "
        f"{worst_abs:.2e} (relative {worst_rel:.2e})")
    return 0
