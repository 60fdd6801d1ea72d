"""``minicnn train`` and ``minicnn evaluate``: the argument lists and what the commands do.

``minicnn/cli.py`` builds the top-level parser and calls, for each sub-command, exactly

    add_train_arguments(parser)      train_main(args) -> exit status
    add_evaluate_arguments(parser)   evaluate_main(args) -> exit status

The default recipe
------------------
``minicnn train`` with no options trains :data:`minicnn.models.default_model_name`
(``fashion_cnn``) on Fashion-MNIST: SGD with Nesterov momentum 0.9, learning rate 0.05,
weight decay 5e-4, batch 128, a cosine schedule stepped every iteration, no augmentation,
:data:`DEFAULT_EPOCHS` (8) epochs, seed 0, on every core the process may use (``--threads``; see
:mod:`minicnn.threads`). Measured on the two-core reference machine with both cores: 91.90% test
accuracy (top-5 99.90%) after 8 epochs of 14.5-15 s, 2.0 minutes in all.

Where the output goes
---------------------
``--out DIR``, or by default ``runs/<model>-<YYYYmmdd-HHMMSS>``; ``runs/latest`` is then made a
symbolic link to that folder (where the file system allows it), and ``--resume`` without a path or
``--out`` continues ``runs/latest``. The folder receives ``metrics.json``, ``checkpoint.npz``
(every epoch, atomically), ``config.json``, ``confusion.json``/``.csv`` and, with matplotlib,
``curves.png`` and ``confusion.png``.

Exit status: 0 done; 1 bad arguments, missing data or files; 3 the loss diverged (NaN/inf);
130 interrupted (the last epoch's checkpoint is kept: ``--resume`` continues).
"""
import math
import os
import sys
import time

import numpy as np

#: Epochs of the default recipe.
DEFAULT_EPOCHS = 8

#: Per-channel mean and standard deviation of the training images (pixels in [0, 1]).
DATASETS = {
    "fashion-mnist": {"mean": [0.2860], "std": [0.3530], "channels": 1, "size": 28},
    "mnist": {"mean": [0.1307], "std": [0.3081], "channels": 1, "size": 28},
    "cifar10": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616], "channels": 3,
                "size": 32},
}
_DATASET_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
                    "fmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar_10": "cifar10"}

#: What ``train`` uses for options not given (``lr`` and ``weight_decay`` depend on the optimizer).
DEFAULTS = {
    "model": None,  # models.default_model_name
    "dataset": "fashion-mnist",
    "data_root": None,
    "epochs": DEFAULT_EPOCHS,
    "batch_size": 128,
    "lr": None,
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": None,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "augment": "none",
    "num_classes": None,
    "in_channels": None,
    "image_size": None,
    "subset": None,
    "test_subset": None,
    "pretrained": None,
    "freeze": None,
    "train_only": None,
    "clip_grad": None,
    "seed": 0,
    "device": "cpu",
}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adam": 0.0, "adamw": 0.05}
#: Options a resumed run may change (the rest is taken from the checkpoint, to continue exactly).
RESUME_OVERRIDES = ("epochs", "device", "data_root")


class UsageError(ValueError):
    """A bad combination of options (reported without a traceback)."""


# -- argument lists ---------------------------------------------------------------------------------
def positive_int(text):
    """argparse type: an int >= 1 (also used by ``minicnn lecture``)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _dataset_name(text):
    key = text.strip().lower()
    return _DATASET_ALIASES.get(key, key)


def add_data_arguments(parser):
    """The data and device options shared by ``train`` and ``evaluate``."""
    parser.add_argument("--dataset", type=_dataset_name, choices=sorted(DATASETS), default=None,
                        help="data set (default: fashion-mnist; cifar10 needs --data-root)")
    parser.add_argument("--data-root", metavar="DIR", default=None,
                        help="folder holding the data set's files (default: $MINICNN_DATA, "
                             "~/.minicnn/data/<name>, /usr/share/datasets/<name>)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help="images per batch (default: 128 for train, 256 for evaluate)")
    parser.add_argument("--device", default=None, choices=["cpu", "cuda", "standin"],
                        help="where the arrays live (default: cpu)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or per-epoch lines, only the final result")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="threads minicnn's ops use (default: every core this process may use, "
                             "or $MINICNN_NUM_THREADS); a resumed run matches bit for bit when it "
                             "uses the same count")


def add_train_arguments(parser):
    """The options of ``minicnn train``. Every option defaults to ``None`` here; the real
    defaults (:data:`DEFAULTS`) are filled in by :func:`train_main`, so that ``--resume`` can tell
    which options were given."""
    from .. import models
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"architecture (default: {models.default_model_name}); one of "
                             f"{', '.join(models.names())}")
    add_data_arguments(parser)
    g = parser.add_argument_group("recipe")
    g.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help=f"total number of epochs (default: {DEFAULT_EPOCHS})")
    g.add_argument("--lr", type=_non_negative_float, default=None,
                   help="peak learning rate (default: 0.05 for sgd, 0.001 for adam/adamw)")
    g.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=None,
                   help="optimizer (default: sgd with Nesterov momentum)")
    g.add_argument("--momentum", type=_non_negative_float, default=None,
                   help="SGD momentum (default: 0.9; 0 turns it and Nesterov off)")
    g.add_argument("--weight-decay", type=_non_negative_float, default=None,
                   help="weight decay (default: 5e-4 for sgd, 0 for adam, 0.05 for adamw)")
    g.add_argument("--schedule", choices=["cosine", "step", "none"], default=None,
                   help="learning-rate schedule, stepped every iteration (default: cosine; step: "
                        "x0.1 at 50%% and 75%% of training)")
    g.add_argument("--warmup-epochs", type=float, default=None, metavar="E",
                   help="linear warm-up from 10%% of the rate over E epochs (default: 0)")
    g.add_argument("--augment", default=None, metavar="LIST",
                   help="comma-separated augmentations: flip,crop,jitter (default: none)")
    g.add_argument("--clip-grad", type=_non_negative_float, default=None, metavar="NORM",
                   help="clip the gradients' total norm to NORM (default: no clipping)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    g = parser.add_argument_group("data and model shape")
    g.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                   help="outputs of the classifier (default: the data set's classes)")
    g.add_argument("--in-channels", type=int, choices=[1, 3], default=None,
                   help="input channels of the model; grey images are repeated to 3 channels or "
                        "colour made grey to match (default: the data set's)")
    g.add_argument("--image-size", type=positive_int, default=None, metavar="PIXELS",
                   help="resize images to PIXELS x PIXELS (e.g. 227 for alexnet; default: as stored)")
    g.add_argument("--subset", type=positive_int, default=None, metavar="N",
                   help="train on a random N of the training images (quick experiments)")
    g.add_argument("--test-subset", type=positive_int, default=None, metavar="N",
                   help="evaluate on a random N of the test images")
    g = parser.add_argument_group("output and resuming")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: runs/<model>-<timestamp>, linked as runs/latest)")
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
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a checkpoint written by 'minicnn train' (or its run folder), or a "
                             "weights file together with --model")
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


# -- building the pieces ------------------------------------------------------------------------------
def load_datasets(config, train=True):
    """``(train_set or None, test_set, classes)`` of the config's data set (whole splits)."""
    from ..data import CIFAR10, MNIST, FashionMNIST
    name, root = config["dataset"], config.get("data_root")
    if name == "cifar10":
        if root is None:
            raise UsageError("--dataset cifar10 needs --data-root DIR (the folder holding "
                             "cifar-10-batches-bin/ or cifar-10-batches-py/)")
        cls, kwargs = CIFAR10, {"root": root}
    else:
        cls = FashionMNIST if name == "fashion-mnist" else MNIST
        kwargs = {"root": root}
    train_set = cls(train=True, **kwargs) if train else None
    test_set = cls(train=False, **kwargs)
    classes = getattr(test_set, "classes", None)
    return train_set, test_set, classes


def random_subset(dataset, n, seed):
    """A random ``n`` of ``dataset``'s examples (seeded separately from the package RNG)."""
    from ..data import Subset
    if n is None or n >= len(dataset):
        return dataset
    indices = np.sort(np.random.default_rng(seed).choice(len(dataset), size=n, replace=False))
    return Subset(dataset, indices)


def build_transforms(config, train):
    """Resize -> augmentation (training only) -> channel conversion -> Normalize."""
    from ..data.transforms import Compose, Grayscale, Normalize, Resize, parse_augment
    info = DATASETS[config["dataset"]]
    steps = []
    size = config.get("image_size") or info["size"]
    if config.get("image_size") and config["image_size"] != info["size"]:
        steps.append(Resize((size, size)))
    if train and _augment_spec(config):
        steps.extend(parse_augment(_augment_spec(config), size).transforms)
    mean, std = list(info["mean"]), list(info["std"])
    channels = config.get("in_channels") or info["channels"]
    if channels != info["channels"]:
        steps.append(Grayscale(channels))
        if channels == 3:
            mean, std = mean * 3, std * 3
        else:
            mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    steps.append(Normalize(mean, std))
    return Compose(steps)


def build_model(config):
    """``models.get(config["model"], num_classes=..., in_channels=...)``."""
    from .. import models
    return models.get(config["model"], num_classes=config["num_classes"],
                      in_channels=config["in_channels"])


def build_optimizer(config, params):
    """The config's optimizer (``sgd``: with Nesterov momentum unless ``momentum`` is 0) over ``params``."""
    from .. import optim
    name, lr, wd = config["optimizer"], config["lr"], config["weight_decay"]
    if name == "sgd":
        momentum = config["momentum"]
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd,
                         nesterov=bool(config.get("nesterov")) and momentum > 0)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_scheduler(config, optimizer, steps_per_epoch):
    """The schedule in optimisation steps (the Trainer steps it every iteration), or None."""
    from ..optim import lr_scheduler as S
    total = config["epochs"] * steps_per_epoch
    warm = int(round(config.get("warmup_epochs", 0) * steps_per_epoch))
    warm = min(warm, max(total - 1, 0))
    rest = max(total - warm, 1)
    kind = config["schedule"]
    if kind == "cosine":
        main = S.CosineAnnealingLR(optimizer, T_max=rest)
    elif kind == "step":
        main = S.MultiStepLR(optimizer, milestones=[rest // 2, (3 * rest) // 4], gamma=0.1)
    else:
        main = None
    if warm <= 0:
        return main
    warmup = S.LinearWarmup(optimizer, start_factor=0.1, total_iters=warm)
    if main is None:
        return warmup
    return S.SequentialLR(optimizer, [warmup, main], milestones=[warm])


def _default_out_dir(model_name):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = os.path.join("runs", f"{model_name}-{stamp}")
    n = 1
    while os.path.exists(out):
        n += 1
        out = os.path.join("runs", f"{model_name}-{stamp}-{n}")
    return out


def _link_latest(out_dir):
    """Point ``runs/latest`` at ``out_dir`` (best effort: some file systems have no symlinks)."""
    runs = os.path.dirname(os.path.abspath(out_dir))
    if os.path.basename(runs) != "runs":
        return
    latest = os.path.join(runs, "latest")
    try:
        if os.path.islink(latest):
            os.remove(latest)
        elif os.path.exists(latest):
            return
        os.symlink(os.path.basename(os.path.abspath(out_dir)), latest)
    except OSError:
        pass


def _resume_source(args):
    if args.resume is True:
        base = args.out if args.out is not None else os.path.join("runs", "latest")
    else:
        base = args.resume
    from .checkpoint import resolve_checkpoint_path
    try:
        return resolve_checkpoint_path(base)
    except FileNotFoundError:
        raise UsageError(f"--resume: no checkpoint found at {base}") from None


def resolve_config(args):
    """The run's settings: :data:`DEFAULTS` < the command line; on ``--resume`` the
    checkpoint's settings < the options in :data:`RESUME_OVERRIDES`. Returns
    ``(config, resume_path or None, notes, replan)``; ``replan`` is true when a resumed run's
    ``--epochs`` changed, so that its learning-rate schedule must be planned anew."""
    from .. import models
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    notes = []
    if args.resume:
        from .checkpoint import load_checkpoint
        path = _resume_source(args)
        saved = load_checkpoint(path).config
        if not saved:
            raise UsageError(f"--resume: {path} holds no run config (was it written by 'minicnn train'?)")
        config = dict(saved)
        replan = "epochs" in given and given["epochs"] != saved.get("epochs")
        for key, value in given.items():
            if key in RESUME_OVERRIDES:
                config[key] = value
            elif saved.get(key) != value:
                notes.append(f"note: --{key.replace('_', '-')} {value} ignored: a resumed run keeps "
                             f"its settings ({key} = {saved.get(key)!r})")
        _check_device(config.get("device") or "cpu")
        return config, path, notes, replan
    config = dict(DEFAULTS)
    config.update(given)
    config["model"] = str(config["model"] or models.default_model_name).lower().replace("-", "_")
    if config["model"] not in models.names():
        raise UsageError(f"unknown model {config['model']!r}; known models: {', '.join(models.names())}")
    info = DATASETS[config["dataset"]]
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    if config["weight_decay"] is None:
        config["weight_decay"] = DEFAULT_WEIGHT_DECAY[config["optimizer"]]
    if config["in_channels"] is None:
        config["in_channels"] = info["channels"]
    if config["augment"] is not None and str(config["augment"]).strip().lower() in ("", "none"):
        config["augment"] = "none"
    if config["augment"] != "none":
        from ..data.transforms import parse_augment
        try:
            parse_augment(config["augment"], 32)
        except ValueError as err:
            raise UsageError(f"--augment: {err}") from None
    if config["warmup_epochs"] < 0:
        raise UsageError("--warmup-epochs must be >= 0")
    if config["freeze"] and config["train_only"]:
        raise UsageError("--freeze and --train-only head are alternatives; give one")
    _check_device(config["device"])
    return config, None, notes, False


def _check_device(device):
    from .. import backend
    if backend.normalize_device(device) == "cuda" and not backend.cuda_available():
        raise UsageError("--device cuda: CuPy is not installed or sees no GPU "
                         "(pip install 'minicnn[gpu]')")


def _make_loaders(config, train_set, test_set):
    from ..data import DataLoader
    bs = config["batch_size"]
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True,
                              drop_last=len(train_set) > bs,  # no batch of one for batch norm
                              transform=build_transforms(config, train=True))
    test_loader = DataLoader(test_set, batch_size=max(bs, 256), shuffle=False,
                             transform=build_transforms(config, train=False))
    return train_loader, test_loader


def _augment_spec(config):
    a = config.get("augment")
    return None if a in (None, "none") else a


def train_main(args):
    """Run ``minicnn train``; returns the exit status."""
    from ..data import DatasetNotFoundError
    from ..threads import num_threads
    from .trainer import TrainingDiverged
    try:
        with num_threads(getattr(args, "threads", None)):
            return _train(args)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except (UsageError, DatasetNotFoundError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the last completed epoch's checkpoint is kept ('minicnn train "
              "--resume' continues)", file=sys.stderr)
        return 130


def _train(args):
    from .. import rng
    from .finetune import freeze, load_pretrained, train_only_head, trainable_parameters
    from .trainer import Trainer

    config, resume_path, notes, replan = resolve_config(args)
    for note in notes:
        print(note, file=sys.stderr)
    quiet = bool(getattr(args, "quiet", False))
    rng.manual_seed(config["seed"])

    train_set, test_set, classes = load_datasets(config)
    if config["num_classes"] is None:
        config["num_classes"] = len(classes) if classes else int(train_set.targets.max()) + 1
    train_set = random_subset(train_set, config.get("subset"), config["seed"])
    test_set = random_subset(test_set, config.get("test_subset"), config["seed"] + 1)
    config["classes"] = classes
    train_loader, test_loader = _make_loaders(config, train_set, test_set)

    model = build_model(config)
    if config.get("pretrained") and not resume_path:
        load_pretrained(model, config["pretrained"], num_classes=config["num_classes"])
    if config.get("freeze"):
        try:
            freeze(model, upto=config["freeze"])
        except ValueError as err:
            raise UsageError(str(err)) from None
    elif config.get("train_only") == "head":
        train_only_head(model)
    params = trainable_parameters(model)
    if not params:
        raise UsageError("every parameter is frozen: nothing to train")
    device = config.get("device") or "cpu"
    model.to(device)
    optimizer = build_optimizer(config, params)
    scheduler = build_scheduler(config, optimizer, len(train_loader))

    if resume_path:
        out_dir = args.out if args.out is not None else os.path.dirname(os.path.abspath(resume_path))
    else:
        out_dir = args.out if args.out is not None else _default_out_dir(config["model"])
    os.makedirs(out_dir, exist_ok=True)
    if args.out is None and not resume_path:
        _link_latest(out_dir)

    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler=scheduler,
                      scheduler_interval="step", epochs=config["epochs"], out_dir=out_dir,
                      device=device, classes=classes, config=config, progress=not quiet,
                      verbose=not quiet, clip_grad_norm=config.get("clip_grad"))
    if resume_path:
        done = trainer.resume(resume_path)
        trainer.config.update(config)
        if replan and scheduler is not None:
            # the saved schedule was planned for the old length: plan anew, at the current step
            trainer.scheduler = build_scheduler(config, optimizer, len(train_loader))
            trainer.scheduler.step(scheduler.last_epoch)
        if not quiet:
            print(f"resuming {resume_path} after epoch {done} of {config['epochs']}")
        if done >= config["epochs"]:
            print(f"nothing to do: the run already has {done} epochs (give --epochs N to extend it)")
            return 0
    from .metrics import write_json
    write_json({k: v for k, v in config.items()}, os.path.join(out_dir, "config.json"))

    if not quiet:
        n_params = model.num_parameters()
        n_train = sum(p.size for p in params)
        frozen = f", {n_train:,} trainable" if n_train != n_params else ""
        opt_desc = f"{config['optimizer']} lr {config['lr']:g}"
        if config["optimizer"] == "sgd" and config["momentum"]:
            opt_desc += f" momentum {config['momentum']:g}{' nesterov' if config.get('nesterov') else ''}"
        opt_desc += f" wd {config['weight_decay']:g}"
        print(f"training {config['model']} ({n_params:,} parameters{frozen}) on {config['dataset']}: "
              f"{len(train_set)} train / {len(test_set)} test images, {config['epochs']} epochs, "
              f"batch {config['batch_size']}, {opt_desc}, {config['schedule']} schedule"
              + (f" with {config['warmup_epochs']:g} warm-up epochs" if config['warmup_epochs'] else "")
              + f", augment {config['augment']}, device {device}; output in {out_dir}", flush=True)
    start = time.perf_counter()
    trainer.fit()
    minutes = (time.perf_counter() - start) / 60
    last = trainer.history[-1]
    print(f"{config['model']} on {config['dataset']}: test accuracy {100 * last['test_acc']:.2f}% "
          f"(top-5 {100 * last['test_top5']:.2f}%, loss {last['test_loss']:.4f}) after epoch "
          f"{last['epoch']}; {minutes:.1f} min; results in {out_dir}")
    return 0


# -- evaluate ---------------------------------------------------------------------------------------
def evaluate_main(args):
    """Run ``minicnn evaluate``; returns the exit status."""
    from ..data import DatasetNotFoundError
    from ..threads import num_threads
    try:
        with num_threads(getattr(args, "threads", None)):
            return _evaluate(args)
    except (UsageError, DatasetNotFoundError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _evaluate(args):
    from ..serialization import load
    from .checkpoint import is_checkpoint, load_checkpoint, resolve_checkpoint_path
    from .finetune import read_state_dict
    from .metrics import format_confusion, write_confusion
    from .plots import plot_confusion
    from .trainer import evaluate

    path = resolve_checkpoint_path(args.checkpoint)
    flat = load(path)
    if is_checkpoint(flat):
        ck = load_checkpoint(path)
        config, weights = dict(ck.config), ck.model
    else:
        config, weights = {}, read_state_dict(flat)
    if args.model:
        config["model"] = args.model
    if not config.get("model"):
        raise UsageError(f"{path} holds no run config: give --model NAME")
    config["dataset"] = args.dataset or config.get("dataset") or "fashion-mnist"
    if args.data_root is not None:
        config["data_root"] = args.data_root
    info = DATASETS[config["dataset"]]
    config.setdefault("in_channels", info["channels"])
    if args.num_classes:
        config["num_classes"] = args.num_classes
    if not config.get("num_classes"):
        head = [k for k in weights if k.endswith(".weight") and np.ndim(weights[k]) == 2]
        config["num_classes"] = int(np.shape(weights[head[-1]])[0]) if head else 10
    _, test_set, classes = load_datasets(config, train=False)
    n_labels = int(np.asarray(test_set.targets).max()) + 1
    if n_labels > config["num_classes"]:
        raise UsageError(f"the model has {config['num_classes']} outputs but {config['dataset']} "
                         f"has {n_labels} classes")
    test_set = random_subset(test_set, args.subset, 1)
    from ..data import DataLoader
    loader = DataLoader(test_set, batch_size=args.batch_size or 256, shuffle=False,
                        transform=build_transforms(config, train=False))
    model = build_model(config)
    try:
        model.load_state_dict(weights)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    device = args.device or "cpu"
    _check_device(device)
    model.to(device)
    result = evaluate(model, loader, device, progress=not args.quiet)
    print(f"{config['model']} on {config['dataset']} test set ({result['n']} images): "
          f"loss {result['loss']:.4f}  top-1 {100 * result['top1']:.2f}%  "
          f"top-5 {100 * result['top5']:.2f}%")
    print(format_confusion(result["confusion"], classes))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_confusion(result["confusion"], classes, args.out)
        plot_confusion(result["confusion"], classes, os.path.join(args.out, "confusion.png"))
        from .metrics import write_json
        write_json({"checkpoint": os.path.abspath(path), "dataset": config["dataset"],
                    "n": result["n"], "test_loss": result["loss"], "test_acc": result["top1"],
                    "test_top5": result["top5"]}, os.path.join(args.out, "evaluation.json"))
    return 0


def parse_train_args(argv=()):
    """``train`` arguments parsed from ``argv`` (for calling :func:`train_main` from Python)."""
    import argparse
    return add_train_arguments(argparse.ArgumentParser(prog="minicnn train")).parse_args(list(argv))


def parse_evaluate_args(argv=()):
    """``evaluate`` arguments parsed from ``argv`` (for calling :func:`evaluate_main` from Python)."""
    import argparse
    return add_evaluate_arguments(argparse.ArgumentParser(prog="minicnn evaluate")).parse_args(list(argv))
