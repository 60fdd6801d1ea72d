"""The command-line options of ``minicnn train`` and ``minicnn evaluate``.

``minicnn/cli.py`` builds the top-level parser and calls :func:`add_train_arguments` and
:func:`add_evaluate_arguments` on the two sub-parsers. Every ``train`` option defaults to
``None`` here; the real defaults (:data:`minicnn.train.config.DEFAULTS`) are filled in by
:func:`minicnn.train.config.resolve_config`, so that ``--resume`` can tell which options were
given. A value argparse cannot accept (``--seed -5``, ``--warmup-epochs nan``) is reported by
argparse itself, naming the option, with exit status 2: one line, by :class:`ArgumentParser`.
"""
import argparse
import math

from .. import backend, models
from ..argparsing import ArgumentParser
from .config import DATASETS, DEFAULT_EPOCHS, MAX_IMAGE_SIZE, SCHEDULES, dataset_name


# -- value types: each raises ArgumentTypeError, which argparse reports with the option's name -----
def _int_at_least(text, minimum, words):
    """``int(text)`` if it is at least ``minimum``, else ArgumentTypeError ("expected a <words>")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {words}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {words}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: an int >= 1 (also used by ``minicnn lecture``)."""
    return _int_at_least(text, 1, "positive integer")


def non_negative_int(text):
    """argparse type: an int >= 0 (``--seed``)."""
    return _int_at_least(text, 0, "non-negative integer")


def non_negative_float(text):
    """argparse type: a finite number >= 0 (not ``nan`` or ``inf``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite non-negative number, got {text!r}")
    return value


def image_size(text):
    """argparse type: an image side from 1 to :data:`~minicnn.train.config.MAX_IMAGE_SIZE`."""
    value = positive_int(text)
    if value > MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_IMAGE_SIZE} pixels, got {text!r}")
    return value


# -- the option lists ---------------------------------------------------------------------------------
def add_data_arguments(parser):
    """The data and device options shared by ``train`` and ``evaluate``."""
    parser.add_argument("--dataset", type=dataset_name, choices=sorted(DATASETS), default=None,
                        help="data set (default: fashion-mnist; cifar10 needs --data-root)")
    parser.add_argument("--data-root", metavar="DIR", default=None,
                        help="folder holding the data set's files; it must exist (default: "
                             "$MINICNN_DATA, ~/.minicnn/data/<name>, /usr/share/datasets/<name>)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help="images per batch (default: 128 for train, 256 for evaluate)")
    parser.add_argument("--device", default=None, choices=backend.device_names(),
                        help="where the arrays live (default: cpu)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars, per-epoch lines or confusion matrix, only the "
                             "final result")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="threads minicnn's ops use (default: every core this process may use, "
                             "or $MINICNN_NUM_THREADS); a resumed run matches bit for bit when it "
                             "uses the same count")


def add_train_arguments(parser):
    """The options of ``minicnn train``."""
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"architecture (default: {models.default_model_name}); one of "
                             f"{', '.join(models.names())}")
    add_data_arguments(parser)
    g = parser.add_argument_group("recipe")
    g.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help=f"total number of epochs (default: {DEFAULT_EPOCHS})")
    g.add_argument("--lr", type=non_negative_float, default=None,
                   help="peak learning rate (default: 0.05 for sgd, 0.001 for adam/adamw)")
    g.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=None,
                   help="optimizer (default: sgd with Nesterov momentum)")
    g.add_argument("--momentum", type=non_negative_float, default=None,
                   help="SGD momentum (default: 0.9; 0 turns it and Nesterov off)")
    g.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="weight decay (default: 5e-4 for sgd, 0 for adam, 0.05 for adamw)")
    g.add_argument("--schedule", choices=list(SCHEDULES), default=None,
                   help="learning-rate schedule, stepped every iteration (default: cosine; step: "
                        "x0.1 at 50%% and 75%% of training)")
    g.add_argument("--warmup-epochs", type=non_negative_float, default=None, metavar="E",
                   help="linear warm-up from 10%% of the rate over E epochs (default: 0)")
    g.add_argument("--augment", default=None, metavar="LIST",
                   help="comma-separated augmentations: flip,crop,jitter (default: none)")
    g.add_argument("--scale-lr", action="store_true",
                   help="under 'mpiexec -n N': multiply --lr by N, the linear scaling rule for a "
                        "global batch N times --batch-size (docs/distributed.md)")
    g.add_argument("--clip-grad", type=non_negative_float, default=None, metavar="NORM",
                   help="clip the gradients' total norm to NORM (default: no clipping)")
    g.add_argument("--seed", type=non_negative_int, default=None,
                   help="random seed, an integer >= 0 (default: 0)")
    g = parser.add_argument_group("data and model shape")
    g.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                   help="outputs of the classifier, at least the data set's classes (default: "
                        "the data set's classes)")
    g.add_argument("--in-channels", type=int, choices=[1, 3], default=None,
                   help="input channels of the model; grey images are repeated to 3 channels or "
                        "colour made grey to match (default: the data set's)")
    g.add_argument("--image-size", type=image_size, default=None, metavar="PIXELS",
                   help=f"resize images to PIXELS x PIXELS, at most {MAX_IMAGE_SIZE} (e.g. 227 "
                        f"for alexnet; default: as stored)")
    g.add_argument("--subset", type=positive_int, default=None, metavar="N",
                   help="train on a random N of the training images (quick experiments)")
    g.add_argument("--test-subset", type=positive_int, default=None, metavar="N",
                   help="evaluate on a random N of the test images")
    g = parser.add_argument_group("output and resuming")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/<model>-<date>-<time>, linked as runs/latest)")
    g.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                   help="continue a run from its checkpoint: a checkpoint file or run folder "
                        "(default: --out DIR, else runs/latest)")
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--pretrained", default=None, metavar="PATH",
                   help="start from these weights (.npz: a state_dict, a checkpoint, or converted "
                        "torchvision weights); the classifier head is replaced if --num-classes "
                        "differs")
    g.add_argument("--freeze", default=None, metavar="LAYER",
                   help="freeze the parameters up to and including this layer (e.g. layer3)")
    g.add_argument("--train-only", choices=["head"], default=None,
                   help="freeze everything except the classifier head")
    return parser


def add_evaluate_arguments(parser):
    """The options of ``minicnn evaluate``."""
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="a checkpoint written by 'minicnn train' (or its run folder), or a "
                             "weights file together with --model (default: runs/latest)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="architecture, for a weights file without a run config")
    parser.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                        help="classes of the model, for a weights file without a run config")
    add_data_arguments(parser)
    parser.add_argument("--subset", type=positive_int, default=None, metavar="N",
                        help="evaluate on a random N of the test images")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="also write confusion.json/.csv (and .png) there")
    return parser


def parse_train_args(argv=()):
    """``train`` arguments parsed from ``argv`` (for calling ``train_main`` from Python)."""
    return add_train_arguments(ArgumentParser(prog="minicnn train")).parse_args(list(argv))


def parse_evaluate_args(argv=()):
    """``evaluate`` arguments parsed from ``argv`` (for calling ``evaluate_main`` from Python)."""
    return add_evaluate_arguments(ArgumentParser(prog="minicnn evaluate")).parse_args(list(argv))
