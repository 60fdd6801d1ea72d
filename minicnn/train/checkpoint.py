"""Checkpoints: everything needed to continue a run exactly, in one ``.npz`` file.

``save_checkpoint`` writes (through :func:`minicnn.save`: flat dotted keys, atomic rename, no
pickles)::

    format          "minicnn.checkpoint"        version   1
    model.<name>    the model's state_dict (parameters and buffers)
    optimizer.*     optimizer.state_dict()  (per-parameter state by index, group options)
    scheduler.*     scheduler.state_dict()  (if there is a scheduler)
    rng             minicnn.rng.get_state() as a JSON string (its 128-bit integers do not fit
                    an int64 array)
    epoch           the number of completed epochs
    metrics         the per-epoch records so far, a JSON string
    config          the run's settings (model name, num_classes, in_channels, dataset, ...),
                    a JSON string, so that ``minicnn evaluate --checkpoint`` can rebuild the model

``load_checkpoint`` reads it back into a :class:`Checkpoint`. A checkpoint's ``model.*`` part (or
a plain ``mc.save(model.state_dict(), path)`` file) also serves as pretrained weights.
"""
import json
import os
from dataclasses import dataclass, field

from .. import rng
from ..serialization import load, save, subdict

FORMAT = "minicnn.checkpoint"
VERSION = 1
#: The file name a run writes in its output folder.
CHECKPOINT_NAME = "checkpoint.npz"


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    model: dict
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    rng_state: dict = None
    epoch: int = 0
    metrics: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    path: str = None


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, metrics=(), config=None,
                    rng_state=None):
    """Write a checkpoint to ``path`` atomically (a crash never leaves half a file there).

    ``rng_state`` defaults to the package generator's current state.
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.state_dict(),
        "rng": json.dumps(rng.get_state() if rng_state is None else rng_state),
        "epoch": int(epoch),
        "metrics": json.dumps(list(metrics)),
        "config": json.dumps(config or {}),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    save(state, path)
    return path


def is_checkpoint(flat):
    """True for the flat dict of a file written by :func:`save_checkpoint`."""
    return str(flat.get("format", "")) == FORMAT


def resolve_checkpoint_path(path):
    """A checkpoint file, or a run folder holding ``checkpoint.npz``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path):
    """Read a checkpoint file (or a run folder's ``checkpoint.npz``) into a :class:`Checkpoint`."""
    path = resolve_checkpoint_path(path)
    flat = load(path)
    if not is_checkpoint(flat):
        raise ValueError(f"{path} is not a minicnn training checkpoint (no 'format' entry "
                         f"{FORMAT!r}); a plain state_dict file can be loaded as pretrained "
                         f"weights instead")
    version = int(flat.get("version", 0))
    if version > VERSION:
        raise ValueError(f"{path}: checkpoint version {version} is newer than this minicnn "
                         f"understands ({VERSION})")
    return Checkpoint(
        model=subdict(flat, "model"),
        optimizer=subdict(flat, "optimizer"),
        scheduler=subdict(flat, "scheduler"),
        rng_state=json.loads(flat["rng"]) if "rng" in flat else None,
        epoch=int(flat.get("epoch", 0)),
        metrics=json.loads(flat.get("metrics", "[]")),
        config=json.loads(flat.get("config", "{}")),
        path=path,
    )
