"""The settings of a ``minicnn train`` run, and building the run's pieces from them.

A run is described by one plain dict, the *config*: :data:`DEFAULTS` overridden by the command
line (:func:`resolve_config`), or, for ``--resume``, the config stored in the checkpoint. The
``build_*`` functions turn it into a data set, transforms, a model, an optimizer and a schedule.
The config is saved as ``config.json`` and inside every checkpoint, so :func:`check_saved_config`
checks one read back from a file field by field before anything is built from it.
"""
import math
import os
import time

import numpy as np

from .. import backend, models, optim
from ..argparsing import did_you_mean
from ..data import CIFAR10, MNIST, DataLoader, DatasetNotFoundError, FashionMNIST, Subset
from ..data.transforms import Compose, Grayscale, Normalize, Resize, parse_augment
from ..function import no_grad
from ..optim import lr_scheduler
from ..tensor import Tensor
from .checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path

#: Epochs of the default recipe.
DEFAULT_EPOCHS = 8

#: Largest ``--image-size`` accepted (a 1024 x 1024 batch of 128 colour images is already 1.5 GB).
MAX_IMAGE_SIZE = 1024

#: Per-channel mean and standard deviation of the training images (pixels in [0, 1]).
DATASETS = {
    "fashion-mnist": {"mean": [0.2860], "std": [0.3530], "channels": 1, "size": 28},
    "mnist": {"mean": [0.1307], "std": [0.3081], "channels": 1, "size": 28},
    "cifar10": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616], "channels": 3,
                "size": 32},
}
DATASET_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
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
SCHEDULES = ("cosine", "step", "none")
#: Options a resumed run may change (the rest is taken from the checkpoint, to continue exactly).
RESUME_OVERRIDES = ("epochs", "device", "data_root")
#: The fields a checkpoint's config must have for ``--resume`` to rebuild the run.
RESUME_FIELDS = ("model", "dataset", "num_classes", "in_channels", "epochs", "batch_size", "lr",
                 "optimizer", "momentum", "weight_decay", "schedule", "seed")


class UsageError(ValueError):
    """A bad option, combination of options or input file (reported without a traceback)."""


def dataset_name(text):
    """``"Fashion_MNIST"`` -> ``"fashion-mnist"``: the canonical name of a data set."""
    key = str(text).strip().lower()
    return DATASET_ALIASES.get(key, key)


# -- checking a config read from a file -----------------------------------------------------------
def _is_int(value, low=None, high=None):
    ok = isinstance(value, int) and not isinstance(value, bool)
    return ok and (low is None or value >= low) and (high is None or value <= high)


def _is_number(value, low=None):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return ok and (low is None or value >= low)


#: field -> (test, what it should be), for :func:`check_saved_config`.
_FIELD_CHECKS = {
    "model": (lambda v: isinstance(v, str) and v in models.names(),
              "one of the model names (minicnn summary lists them)"),
    "dataset": (lambda v: v in DATASETS, f"one of {sorted(DATASETS)}"),
    "num_classes": (lambda v: _is_int(v, 1), "a positive integer"),
    "in_channels": (lambda v: v in (1, 3) and _is_int(v), "1 or 3"),
    "epochs": (lambda v: _is_int(v, 1), "a positive integer"),
    "batch_size": (lambda v: _is_int(v, 1), "a positive integer"),
    "lr": (lambda v: _is_number(v, 0), "a non-negative number"),
    "optimizer": (lambda v: v in DEFAULT_LR, f"one of {sorted(DEFAULT_LR)}"),
    "momentum": (lambda v: _is_number(v, 0), "a non-negative number"),
    "weight_decay": (lambda v: _is_number(v, 0), "a non-negative number"),
    "schedule": (lambda v: v in SCHEDULES, f"one of {list(SCHEDULES)}"),
    "warmup_epochs": (lambda v: _is_number(v, 0), "a non-negative number"),
    "seed": (lambda v: _is_int(v, 0), "a non-negative integer"),
    "image_size": (lambda v: v is None or _is_int(v, 1, MAX_IMAGE_SIZE),
                   f"null or an integer from 1 to {MAX_IMAGE_SIZE}"),
    "subset": (lambda v: v is None or _is_int(v, 1), "null or a positive integer"),
    "test_subset": (lambda v: v is None or _is_int(v, 1), "null or a positive integer"),
    "clip_grad": (lambda v: v is None or _is_number(v, 0), "null or a non-negative number"),
    "augment": (lambda v: isinstance(v, str), "a string such as 'none' or 'flip,crop'"),
    "data_root": (lambda v: v is None or isinstance(v, str), "null or a folder name"),
    "device": (lambda v: v is None or isinstance(v, str), "null or a device name"),
}


def check_saved_config(config, path, required=()):
    """Check a run config read from ``path`` (a checkpoint); raise :class:`UsageError` naming
    the file and the first bad field, with what was expected and what was found.

    Fields in ``required`` must be present; the others are checked only when present."""
    if not isinstance(config, dict):
        raise UsageError(f"{path}: the run config is a {type(config).__name__}, expected a JSON "
                         f"object (a dict)")
    for key in required:
        if key not in config:
            raise UsageError(f"{path}: the run config has no field {key!r} (was the checkpoint "
                             f"written by 'minicnn train'?)")
    for key, (test, expected) in _FIELD_CHECKS.items():
        if key in config and not test(config[key]):
            raise UsageError(f"{path}: field {key!r} of the run config is {config[key]!r}; "
                             f"expected {expected}")
    return config


def read_checkpoint(path, **kwargs):
    """:func:`~minicnn.train.checkpoint.load_checkpoint` with its errors as :class:`UsageError`."""
    try:
        return load_checkpoint(path, **kwargs)
    except (CheckpointError, ValueError) as err:
        raise UsageError(str(err)) from None


# -- the config of a new or resumed run ------------------------------------------------------------
def resume_source(args):
    """The checkpoint ``--resume`` names: its path, ``--out``, or ``runs/latest``."""
    if args.resume is True:
        base = args.out if args.out is not None else os.path.join("runs", "latest")
    else:
        base = args.resume
    try:
        return resolve_checkpoint_path(base)
    except FileNotFoundError:
        raise UsageError(f"--resume: no checkpoint found at {base}") from None


def resolve_config(args):
    """The run's settings: :data:`DEFAULTS` < the command line; on ``--resume`` the
    checkpoint's settings < the options in :data:`RESUME_OVERRIDES`. Returns
    ``(config, resume_path or None, notes, replan)``; ``replan`` is true when a resumed run's
    ``--epochs`` changed, so that its learning-rate schedule must be planned anew."""
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    if args.resume:
        return _resumed_config(args, given)
    config = dict(DEFAULTS)
    config.update(given)
    config["model"] = check_model_name(config["model"] or models.default_model_name)
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
        try:
            parse_augment(config["augment"], 32)
        except ValueError as err:
            raise UsageError(f"--augment: {err}") from None
    if not _is_number(config["warmup_epochs"], 0):
        raise UsageError(f"--warmup-epochs: expected a finite number >= 0, got {config['warmup_epochs']}")
    if config["image_size"] is not None and not _is_int(config["image_size"], 1, MAX_IMAGE_SIZE):
        raise UsageError(f"--image-size: expected 1 to {MAX_IMAGE_SIZE} pixels, got {config['image_size']}")
    if not _is_int(config["seed"], 0):
        raise UsageError(f"--seed: expected a non-negative integer, got {config['seed']}")
    if config["freeze"] and config["train_only"]:
        raise UsageError("--freeze and --train-only head are alternatives; give one")
    check_data_root(config.get("data_root"))
    check_device(config["device"])
    return config, None, [], False


def check_model_name(name):
    """``"ResNet-18"`` -> ``"resnet_18"`` if that is a model's name, else :class:`UsageError`."""
    key = str(name).lower().replace("-", "_")
    if key not in models.names():
        raise UsageError(f"unknown model {key!r}{did_you_mean(key, models.names())} (known models: "
                         f"{', '.join(models.names())})")
    return key


def _resumed_config(args, given):
    path = resume_source(args)
    saved = read_checkpoint(path, metadata_only=True).config
    if not saved:
        raise UsageError(f"--resume: {path} holds no run config (was it written by 'minicnn train'?)")
    check_saved_config(saved, path, required=RESUME_FIELDS)
    config = dict(DEFAULTS)
    config.update(saved)
    replan = "epochs" in given and given["epochs"] != saved.get("epochs")
    notes = []
    for key, value in given.items():
        if key in RESUME_OVERRIDES:
            config[key] = value
        elif saved.get(key) != value:
            notes.append(f"note: --{key.replace('_', '-')} {value} ignored: a resumed run keeps "
                         f"its settings ({key} = {saved.get(key)!r})")
    check_data_root(config.get("data_root") if "data_root" in given else None)
    check_device(config.get("device") or "cpu")
    return config, path, notes, replan


def check_data_root(root):
    """``--data-root`` must name an existing, readable folder: it is never created, and the data
    is then looked for there only (never a silent fall-back to another copy of the data)."""
    if root is None:
        return
    if not str(root).strip():
        raise UsageError("--data-root is empty; expected the folder holding the data set's files")
    if not os.path.exists(root):
        raise UsageError(f"--data-root {root}: no such folder")
    if not os.path.isdir(root):
        raise UsageError(f"--data-root {root}: not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UsageError(f"--data-root {root}: the folder is not readable")


def check_device(device):
    """``--device cuda`` needs CuPy and a GPU."""
    if backend.normalize_device(device) == "cuda" and not backend.cuda_available():
        raise UsageError("--device cuda: CuPy is not installed or sees no GPU "
                         "(pip install 'minicnn[gpu]')")


def check_out_dir(out_dir):
    """Create the output folder, or say in one line why it cannot be used."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"--out {out_dir}: this is a file, not a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out_dir}: cannot create the folder ({err.strerror or err})") from None
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"--out {out_dir}: the folder is not writable")
    return out_dir


# -- data -------------------------------------------------------------------------------------------
def load_datasets(config, train=True):
    """``(train_set or None, test_set, classes)`` of the config's data set (whole splits).

    A missing data set raises :class:`~minicnn.data.DatasetNotFoundError`; a damaged file
    raises :class:`UsageError` naming it."""
    name, root = config["dataset"], config.get("data_root")
    check_data_root(root)
    if name == "cifar10":
        if root is None:
            raise UsageError("--dataset cifar10 needs --data-root DIR (the folder holding "
                             "cifar-10-batches-bin/ or cifar-10-batches-py/)")
        cls, kwargs = CIFAR10, {"root": root}
    else:
        cls = FashionMNIST if name == "fashion-mnist" else MNIST
        kwargs = {"root": root}
    try:
        train_set = cls(train=True, **kwargs) if train else None
        test_set = cls(train=False, **kwargs)
    except DatasetNotFoundError as err:
        if root is None:
            raise
        raise DatasetNotFoundError(f"--data-root {root}: {err}") from None
    except (ValueError, MemoryError) as err:
        raise UsageError(f"cannot read the {name} data: {err}") from None
    if len(test_set) == 0:
        raise UsageError(f"the {name} test set (in {getattr(test_set, 'folder', root)}) is empty")
    if train_set is not None and len(train_set) == 0:
        raise UsageError(f"the {name} training set (in {getattr(train_set, 'folder', root)}) is empty")
    classes = getattr(test_set, "classes", None)
    return train_set, test_set, classes


def label_count(*datasets):
    """The number of classes the data sets' labels use (the largest label + 1)."""
    return max(int(np.asarray(d.targets).max()) + 1 for d in datasets if d is not None and len(d))


def check_num_classes(config, *datasets):
    """The model's outputs must cover every label of the data."""
    needed = label_count(*datasets)
    if config["num_classes"] < needed:
        raise UsageError(f"--num-classes {config['num_classes']}: the {config['dataset']} labels "
                         f"go up to {needed - 1}, so the model needs at least {needed} outputs")


def random_subset(dataset, n, seed):
    """A random ``n`` of ``dataset``'s examples (seeded separately from the package RNG)."""
    if n is None or n >= len(dataset):
        return dataset
    indices = np.sort(np.random.default_rng(seed).choice(len(dataset), size=n, replace=False))
    return Subset(dataset, indices)


def augment_spec(config):
    """The config's augmentation list, or None for none."""
    a = config.get("augment")
    return None if a in (None, "none") else a


def image_shape(config):
    """``(channels, size, size)`` of the images the model receives."""
    info = DATASETS[config["dataset"]]
    size = config.get("image_size") or info["size"]
    return (config.get("in_channels") or info["channels"], size, size)


def build_transforms(config, train):
    """Resize -> augmentation (training only) -> channel conversion -> Normalize."""
    info = DATASETS[config["dataset"]]
    steps = []
    size = config.get("image_size") or info["size"]
    if config.get("image_size") and config["image_size"] != info["size"]:
        steps.append(Resize((size, size)))
    if train and augment_spec(config):
        steps.extend(parse_augment(augment_spec(config), size).transforms)
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


def make_loaders(config, train_set, test_set):
    """The training loader (shuffled, no final batch of one) and the test loader."""
    bs = config["batch_size"]
    device = config.get("device") or "cpu"   # off the CPU, the data sets live on the device
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True,
                              drop_last=len(train_set) > bs,  # no batch of one for batch norm
                              transform=build_transforms(config, train=True), device=device)
    test_loader = DataLoader(test_set, batch_size=max(bs, 256), shuffle=False,
                             transform=build_transforms(config, train=False), device=device)
    return train_loader, test_loader


# -- model, optimizer, schedule ----------------------------------------------------------------------
def build_model(config):
    """``models.get(config["model"], num_classes=..., in_channels=...)``."""
    return models.get(config["model"], num_classes=config["num_classes"],
                      in_channels=config["in_channels"])


def check_input_size(model, config):
    """Run one blank image through ``model`` (eval mode, no graph) so that an image size the
    architecture cannot take is reported now, with the sizes to use, rather than deep inside
    the first training step."""
    shape = image_shape(config)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.zeros((1,) + shape, dtype=np.float32)))
    except (ValueError, RuntimeError, IndexError) as err:
        channels, height, _ = models.input_size(config["model"])
        hint = f"--image-size {height}"
        if channels != shape[0]:
            hint += f" --in-channels {channels}"
        raise UsageError(f"{config['model']} cannot take {shape[0]}x{shape[1]}x{shape[2]} images "
                         f"from {config['dataset']} ({err}); try {hint} (the images are then "
                         f"resized and converted on the fly)") from None
    finally:
        model.train(was_training)


def build_optimizer(config, params):
    """The config's optimizer (``sgd``: with Nesterov momentum unless ``momentum`` is 0) over ``params``."""
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
    total = config["epochs"] * steps_per_epoch
    warm = int(round((config.get("warmup_epochs") or 0) * steps_per_epoch))
    warm = min(warm, max(total - 1, 0))
    rest = max(total - warm, 1)
    kind = config["schedule"]
    if kind == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest)
    elif kind == "step":
        main = lr_scheduler.MultiStepLR(optimizer, milestones=[rest // 2, (3 * rest) // 4], gamma=0.1)
    else:
        main = None
    if warm <= 0:
        return main
    warmup = lr_scheduler.LinearWarmup(optimizer, start_factor=0.1, total_iters=warm)
    if main is None:
        return warmup
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warm])


# -- the output folder ---------------------------------------------------------------------------------
def default_out_dir(model_name):
    """``runs/<model>-<YYYYmmdd>-<HHMMSS>`` (with ``-2``, ``-3`` ... if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = os.path.join("runs", f"{model_name}-{stamp}")
    n = 1
    while os.path.exists(out):
        n += 1
        out = os.path.join("runs", f"{model_name}-{stamp}-{n}")
    return out


def latest_link(out_dir):
    """``runs/latest`` next to ``out_dir`` (None when ``out_dir`` is not inside a ``runs`` folder)."""
    runs = os.path.dirname(os.path.abspath(out_dir))
    return os.path.join(runs, "latest") if os.path.basename(runs) == "runs" else None


def link_latest(out_dir):
    """Point ``runs/latest`` at ``out_dir`` (best effort: some file systems have no symlinks).
    Returns what the link pointed to before (None if there was no link)."""
    latest = latest_link(out_dir)
    if latest is None:
        return None
    previous = None
    try:
        if os.path.islink(latest):
            previous = os.readlink(latest)
            os.remove(latest)
        elif os.path.exists(latest):
            return None
        os.symlink(os.path.basename(os.path.abspath(out_dir)), latest)
    except OSError:
        pass
    return previous
