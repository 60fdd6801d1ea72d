"""The ``minicnn`` command (also ``python -m minicnn``).

    minicnn train [options]                  train a network (default: the default CNN on Fashion-MNIST)
    minicnn evaluate --checkpoint PATH       test accuracy and confusion matrix of a checkpoint
    minicnn summary MODEL [--input C,H,W]    per-layer output shapes, parameters and MACs
    minicnn gradcheck [OP ...] [FILE.py:Class]   finite-difference check of every registered op
    minicnn convert-torch IN.pth OUT.npz     torchvision weights -> minicnn .npz or .safetensors (needs torch)
    minicnn export [--checkpoint PATH]       a checkpoint -> model.onnx, checked by onnxruntime
    minicnn explain [RUN]                    filters, activations, occlusion, saliency, Grad-CAM (PNGs)
    minicnn lecture NAME                     run one of the lecture's experiments
    minicnn assignment build SRC OUT | grade SUBMISSION | grade-all FOLDER --references KIT --csv F

Each sub-command's work lives in its own module; this file only parses arguments.

Exit status: 0 done; 1 bad usage or input (a clear one-line message, no traceback); 2 the
command line could not be parsed (argparse); 3 ``train`` diverged; 130 interrupted (Ctrl-C).
"""
import argparse
import importlib.util
import inspect
import os
import sys

import numpy

from . import __version__, assignment, backend, models
from .explain_cli import add_explain_arguments, explain_main
from .export_cli import add_export_arguments, export_main
from .gradcheck import check, run_registered
from .lecture import add_lecture_arguments, run_lecture
from .models.convert import convert_torch
from .summary import summary
from .tensor import Tensor
from .argparsing import ArgumentParser
from .train.args import add_evaluate_arguments, add_train_arguments
from .train.config import MAX_IMAGE_SIZE
from .train.run import evaluate_main, train_main


def _parse_shape(text):
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 3,224,224, got {text!r}")


# -- gradcheck ------------------------------------------------------------------------------------
def _load_student_function(spec):
    """``path/to/file.py:ClassName`` -> the class object."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise ValueError(f"{spec!r} is not of the form path/to/file.py:ClassName")
    if not os.path.isfile(path):
        raise ValueError(f"file not found: {path}")
    if not path.endswith(".py"):
        raise ValueError(f"{path} is not a Python file; expected path/to/file.py:ClassName")
    module_spec = importlib.util.spec_from_file_location(f"_minicnn_student_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except (SyntaxError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid Python ({type(err).__name__}: {err})") from None
    if not hasattr(module, name):
        raise ValueError(f"gradcheck: {path} defines no {name!r}")
    return getattr(module, name)


def _check_student_function(cls, shape, device, out=print):
    """Gradient-check a user's ``Function`` subclass on random float64 inputs."""
    if hasattr(cls, "gradcheck_inputs"):
        inputs = list(cls.gradcheck_inputs())
    else:
        n_args = len([p for p in inspect.signature(cls.forward).parameters.values()
                      if p.kind == p.POSITIONAL_OR_KEYWORD]) - 1
        rng = numpy.random.default_rng(0)
        inputs = [rng.standard_normal(shape) for _ in range(max(n_args, 1))]
    inputs = [x if isinstance(x, Tensor) else Tensor(numpy.asarray(x, dtype=numpy.float64), requires_grad=True)
              for x in inputs]
    inputs = [Tensor(backend.to_device(x.data, device), requires_grad=x.requires_grad) for x in inputs]
    described = f"{cls.__name__:<24} {'inputs ' + ' '.join(str(x.shape) for x in inputs):<44}"
    try:
        result = check(lambda *xs: cls()(*xs), inputs)
    except Exception as error:      # the Function crashed, or returned a wrongly shaped gradient
        out(f"{described} {'-':>12} {'-':>12}  FAIL ({type(error).__name__}: {error})")
        return False
    status = "PASS" if result.passed else "FAIL"
    out(f"{described} {result.max_abs:>12.2e} {result.max_rel:>12.2e}  {status}")
    if not result.passed:
        out("  " + result.message())
    return result.passed


def cmd_gradcheck(args):
    ops = [t for t in args.targets if ":" not in t]
    students = [t for t in args.targets if ":" in t]
    ok = True
    if ops or not students:
        ok &= run_registered(ops or None, device=args.device)
    for spec in students:
        ok &= _check_student_function(_load_student_function(spec), args.shape, args.device)
    return 0 if ok else 1


def _model_names():
    return models.names()


# -- summary ------------------------------------------------------------------------------------------
def _check_summary_input(shape):
    """``--input`` must be C,H,W of a real image (the summary allocates a batch of it)."""
    if len(shape) != 3 or not 1 <= shape[0] <= 3 or not all(1 <= s <= MAX_IMAGE_SIZE for s in shape[1:]):
        raise ValueError(f"--input {','.join(map(str, shape))}: expected C,H,W with C from 1 to 3 "
                         f"and H, W from 1 to {MAX_IMAGE_SIZE}")
    return shape


def cmd_summary(args):
    model = models.get(args.model, **({"num_classes": args.num_classes} if args.num_classes else {}))
    shape = _check_summary_input(args.input) if args.input else models.input_size(args.model)
    summary(model, shape)
    return 0


def cmd_convert(args):
    convert_torch(args.input, args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_lecture(args):
    return run_lecture(args)


def build_parser():
    parser = ArgumentParser(prog="minicnn", description="A teaching framework for CNNs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("train", help="train a network (default: the default CNN on Fashion-MNIST)")
    add_train_arguments(p)
    p.set_defaults(func=train_main)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on the test set (default: runs/latest)")
    add_evaluate_arguments(p)
    p.set_defaults(func=evaluate_main)

    p = sub.add_parser("summary", help="per-layer shapes, parameters and MACs of a model")
    p.add_argument("model", help="model name, one of: " + ", ".join(_model_names()))
    p.add_argument("--input", type=_parse_shape, default=None, help="input shape C,H,W")
    p.add_argument("--num-classes", type=int, default=None)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("gradcheck", help="finite-difference gradient check of every op")
    p.add_argument("targets", nargs="*", metavar="OP|FILE.py:Class",
                   help="registered op names, or a Function subclass in a file (default: all ops)")
    p.add_argument("--device", default="cpu", choices=backend.device_names(), help="where the check runs")
    p.add_argument("--shape", type=_parse_shape, default=(3, 4),
                   help="input shape for a student Function without gradcheck_inputs() (default 3,4)")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("export", help="export a checkpoint (default: runs/latest) to ONNX (model.onnx)")
    add_export_arguments(p)
    p.set_defaults(func=export_main)

    p = sub.add_parser("explain", help="pictures of what a checkpoint (default: runs/latest) looks at: "
                                       "filters, activations, occlusion, saliency, Grad-CAM")
    add_explain_arguments(p)
    p.set_defaults(func=explain_main)

    p = sub.add_parser("convert-torch", help="convert a torchvision state dict (.pth) to .npz or .safetensors")
    p.add_argument("input")
    p.add_argument("output")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("lecture", help="run one of the lecture's experiments")
    add_lecture_arguments(p)
    p.set_defaults(func=cmd_lecture)

    p = sub.add_parser("assignment", help="build or grade a course assignment")
    assignment.add_arguments(p)
    p.set_defaults(func=assignment.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"minicnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"minicnn {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nminicnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
