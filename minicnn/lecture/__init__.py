"""The lecture's experiments, one module each, run by ``minicnn lecture NAME``.

    alexnet-table   alexnet_table.py   AlexNet's layer table: FC layers hold 94% of the parameters,
                                       conv layers do 95% of the compute
    relu-vs-tanh    relu_vs_tanh.py    the same CNN with ReLU and with tanh: steps to 25% training error
    small-filters   small_filters.py   three stacked 3x3 convs vs one 7x7: receptive field, 27C^2 vs 49C^2
    inception       inception.py       naive vs bottleneck Inception module: parameters and MACs
    degradation     degradation.py     plain vs residual nets of 20 and 56 layers: training/test error,
                                       and the per-layer gradient norms at initialisation
    augmentation    augmentation.py    a grid of augmented images; accuracy with and without augmentation
    fine-tune       fine_tune.py       pretrain on 5 classes, then 50 labels per new class: head only
                                       (frozen features) vs from scratch
    filters         filters.py         first-layer filters and feature maps of a trained network
    zfnet           zfnet.py           ZFNet's story: first-layer filters, feature maps, occlusion and
                                       Grad-CAM of a small ZFNet, and how much covering a patch hurts

Each prints its table and writes ``<out>/<name>.json`` (its numbers) and, with matplotlib, PNG
figures; ``--quick`` runs it in seconds (CI runs every quick mode: ``minicnn lecture all --quick``).
From Python::

    from minicnn.lecture import run
    result = run("small-filters", quick=True, out="/tmp/sf")     # the dict written as JSON

The command line is wired by ``minicnn/cli.py``, which calls :func:`add_lecture_arguments` and
:func:`run_lecture`.
"""
import argparse
import importlib
import os
import sys

from .. import backend, rng
from ..data import DatasetNotFoundError
from ..fast.host_memory import keep_freed_memory
from ..train.args import positive_int
from .common import Context

#: Lecture name -> (module, one-line description), in the order of the lecture.
LECTURES = {
    "alexnet-table": ("alexnet_table", "AlexNet's per-layer shapes, parameters and MACs (FC vs conv)"),
    "relu-vs-tanh": ("relu_vs_tanh", "ReLU vs tanh: training error vs iterations (AlexNet Fig. 1)"),
    "small-filters": ("small_filters", "three 3x3 convs vs one 7x7: receptive field, params, MACs"),
    "inception": ("inception", "naive vs bottleneck Inception module: params and compute"),
    "degradation": ("degradation", "plain vs residual nets (20/56 layers): errors and gradient norms"),
    "augmentation": ("augmentation", "augmented images, and accuracy with/without augmentation"),
    "fine-tune": ("fine_tune", "pretrain on 5 classes; fine-tune the head vs train from scratch"),
    "filters": ("filters", "first-layer filters and feature maps of a trained network"),
    "zfnet": ("zfnet", "ZFNet's story: filters, feature maps, occlusion and Grad-CAM of a small ZFNet"),
}

#: How long the full (not ``--quick``) runs take on a two-core CPU, as measured for
#: docs/tutorials/README.md (the others take seconds to a few minutes); printed before they start.
FULL_RUN_TIME = {
    "degradation": "17 to 30 minutes",
    "fine-tune": "about 5 minutes",
    "relu-vs-tanh": "about 3 minutes",
    "zfnet": "2 to 3 minutes",
}

#: Printed after every quick run (and stored in its JSON as ``note``).
QUICK_NOTE = ("quick mode: tiny data, tiny networks, one epoch. This only shows that the "
              "experiment runs; its numbers and conclusions are not meaningful at this size "
              "(run it without --quick for the real experiment).")

__all__ = ["LECTURES", "FULL_RUN_TIME", "QUICK_NOTE", "names", "add_lecture_arguments", "run_lecture",
           "run", "default_out_dir"]


def names():
    """The experiment names, in the order of the lecture."""
    return list(LECTURES)


def default_out_dir(name):
    return os.path.join("runs", "lecture", name)


def add_lecture_arguments(parser):
    """The arguments of ``minicnn lecture``."""
    listing = "\n".join(f"  {name:<14} {desc}" for name, (_, desc) in LECTURES.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = ("Run one of the lecture's experiments: it prints its table and writes "
                          "its numbers (JSON) and figures (PNG, with matplotlib) to --out.\n\n"
                          "experiments:\n" + listing + "\n  all            every one of them, in turn")
    parser.add_argument("name", choices=names() + ["all"], metavar="NAME",
                        help="the experiment (see the list above), or 'all'")
    parser.add_argument("--quick", action="store_true",
                        help="a run of a few seconds (tiny subsets, one epoch, small nets), for CI")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for the JSON and figures (default: runs/lecture/NAME; with "
                             "'all': DIR/NAME for each)")
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                        help="override the experiment's number of training epochs")
    parser.add_argument("--subset", type=positive_int, default=None, metavar="N",
                        help="override the number of training images the experiment uses")
    parser.add_argument("--device", default="cpu", choices=backend.device_names(),
                        help="where to train (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the synthetic stand-in data instead of Fashion-MNIST")
    return parser


def _module(name):
    return importlib.import_module(f".{LECTURES[name][0]}", __name__)


def run(name, quick=False, out=None, epochs=None, device="cpu", seed=0, subset=None,
        synthetic=False, progress=None, stream=None):
    """Run the experiment ``name`` and return its results (the dict written as JSON)."""
    """Run the experiment ``name`` and return its results (the dict written as JSON).

    Interrupted (Ctrl-C), it removes its output folder if it made it and nothing was written
    there yet, and lets ``KeyboardInterrupt`` through."""
    if name not in LECTURES:
        raise ValueError(f"unknown lecture {name!r}; choose from {', '.join(names())}")
    out_dir = out or default_out_dir(name)
    existed = os.path.exists(out_dir)
    ctx = Context(name, out_dir, quick=quick, epochs=epochs, device=device, seed=seed,
                  subset=subset, synthetic=synthetic, progress=progress, stream=stream)
    rng.manual_seed(seed)
    if quick:
        ctx.print(f"== lecture {name} (quick mode) -> {ctx.out_dir}")
    else:
        took = f"; takes {FULL_RUN_TIME[name]} on a two-core CPU" if name in FULL_RUN_TIME else ""
        ctx.print(f"== lecture {name} (full mode{took}; --quick runs it in seconds) -> {ctx.out_dir}")
    try:
        result = _module(name).run(ctx)
    except KeyboardInterrupt:
        if not existed and os.path.isdir(ctx.out_dir) and not os.listdir(ctx.out_dir):
            os.rmdir(ctx.out_dir)
        raise
    if quick:
        result = dict(result, note=QUICK_NOTE)
    path = ctx.write_json(result)
    result = dict(result, seconds=round(ctx.seconds(), 2), json=path)
    if quick:
        ctx.print(f"note: {QUICK_NOTE}")
    ctx.print(f"numbers: {path}  ({ctx.seconds():.1f} s)")
    return result


def run_lecture(args):
    """``minicnn lecture NAME``: run the experiment(s) named in ``args``; returns the exit status
    (0 done, 1 the data set is missing, 130 interrupted). Like ``minicnn train``, it opts in to
    :func:`minicnn.fast.host_memory.keep_freed_memory` first (the measured times assume it)."""
    keep_freed_memory()
    todo = names() if args.name == "all" else [args.name]
    out = getattr(args, "out", None)
    for name in todo:
        if out is None:
            out_dir = default_out_dir(name)
        else:
            out_dir = os.path.join(out, name) if args.name == "all" else out
        try:
            run(name, quick=getattr(args, "quick", False), out=out_dir,
                epochs=getattr(args, "epochs", None), device=getattr(args, "device", None) or "cpu",
                seed=getattr(args, "seed", 0) or 0, subset=getattr(args, "subset", None),
                synthetic=getattr(args, "synthetic", False))
        except DatasetNotFoundError as err:
            print(f"minicnn lecture {name}: {err}\n(--quick, or --synthetic, runs on a synthetic "
                  f"stand-in instead)", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            kept = (f"; the files written so far are in {out_dir}" if os.path.isdir(out_dir)
                    else "; nothing was written")
            print(f"\nminicnn lecture {name}: interrupted{kept}", file=sys.stderr)
            return 130
    return 0
