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

``load_checkpoint`` reads it back into a :class:`Checkpoint`, checking every metadata field
(a damaged or hand-edited file raises :class:`CheckpointError` naming the file and the field).

Saving is atomic: the bytes go to a temporary ``.tmp-*.part`` file that is renamed over the old
checkpoint only when complete. A process killed during a save (``kill -9``) leaves its ``.part``
file behind; :func:`save_checkpoint` deletes such leftovers (those older than the current process)
on the next save into that folder. A checkpoint's ``model.*`` part (or
a plain ``mc.save(model.state_dict(), path)`` file) also serves as pretrained weights.
"""
import glob
import json
import os
import time
from dataclasses import dataclass, field

import numpy

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from .. import rng
from ..serialization import load, save, subdict

FORMAT = "minicnn.checkpoint"
VERSION = 1
#: The file name a run writes in its output folder.
CHECKPOINT_NAME = "checkpoint.npz"
#: The entries of a checkpoint besides the model's, optimizer's and scheduler's arrays.
METADATA = ("format", "version", "rng", "epoch", "metrics", "config")
#: The most the metadata entries may hold together (the metrics of some 10,000 epochs), and the
#: allowance for what else a weights file may hold (another head, counters).
METADATA_BYTES = 64 << 20
#: The most optimizer arrays a parameter has (Adam's two moments and AMSGrad's running maximum).
OPTIMIZER_ARRAYS = 3
#: The file a run holds locked in its output folder while it writes there.
LOCK_NAME = ".lock"
#: When this process started (near enough: when this module was imported). A ``.tmp-*.part``
#: file last written before then belongs to a save that died, never to one in progress here.
PROCESS_START = time.time()


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: not a checkpoint, or a damaged metadata field."""


class FolderInUse(RuntimeError):
    """Another process holds the lock of a run folder (:func:`lock_run_folder`)."""


def lock_run_folder(folder):
    """Lock ``folder`` for this process: an exclusive lock (``flock``) on its :data:`LOCK_NAME`
    file, which holds the process id. Returns the open lock file; closing it releases the lock,
    and so does the process ending, however it ends (the kernel releases it). Raises
    :class:`FolderInUse` naming the folder and the process if another one holds it, so two runs
    never write into one folder at the same time."""
    lock = open(os.path.join(os.fspath(folder), LOCK_NAME), "a+")
    try:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(lock.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        try:
            lock.seek(0)
            holder = lock.read(20).strip() or "unknown"
        except OSError:  # Windows: the locked byte cannot be read
            holder = "unknown"
        lock.close()
        raise FolderInUse(f"{folder} is in use: another run (process {holder}) is writing there; "
                          f"wait for it to finish or choose another folder") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


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
    #: The entries the file holds, by their first name part ("model", "optimizer", "rng", ...).
    entries: frozenset = frozenset()


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
    remove_stale_parts(folder)
    save(state, path)
    return path


def remove_stale_parts(folder, before=None):
    """Delete the ``.tmp-*.part`` files in ``folder`` last modified before ``before`` (default:
    :data:`PROCESS_START`): leftovers of saves killed half-way. Returns the paths removed."""
    before = PROCESS_START if before is None else before
    removed = []
    for part in glob.glob(os.path.join(glob.escape(os.fspath(folder)), ".tmp-*.part")):
        try:
            if os.path.getmtime(part) < before:
                os.remove(part)
                removed.append(part)
        except OSError:  # gone already, or not ours to delete: leave it
            pass
    return removed


def state_bytes(model):
    """The bytes of ``model``'s parameters and buffers."""
    return sum(int(numpy.dtype(v.dtype).itemsize) * int(numpy.prod(v.shape))
               for v in model.state_dict().values())


def max_checkpoint_bytes(model):
    """The most a checkpoint of ``model`` holds: its weights, :data:`OPTIMIZER_ARRAYS` optimizer
    arrays per weight and :data:`METADATA_BYTES` of the rest. A file declaring more is refused
    before anything of that size is allocated (:func:`minicnn.load`'s ``max_bytes``)."""
    return (1 + OPTIMIZER_ARRAYS) * state_bytes(model) + METADATA_BYTES


def max_weights_bytes(model):
    """The most a weights file for ``model`` holds: twice its weights (a pretrained file's head may
    have more classes) and :data:`METADATA_BYTES`."""
    return 2 * state_bytes(model) + METADATA_BYTES


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


def _integer_field(flat, key, path, default):
    """``flat[key]`` as a non-negative int, or :class:`CheckpointError` naming the field."""
    if key not in flat:
        return default
    value = flat[key]
    try:
        number = int(value)
        exact = number == float(value)
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact or number < 0:
        raise CheckpointError(f"{path}: field {key!r} is {value!r}; expected a non-negative integer")
    return number


def _json_field(flat, key, path, default, kind):
    """``flat[key]`` parsed as JSON and of type ``kind``, or :class:`CheckpointError`."""
    if key not in flat:
        return default
    try:
        value = json.loads(str(flat[key]))
    except ValueError as err:
        raise CheckpointError(f"{path}: field {key!r} is not valid JSON ({err})") from None
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: field {key!r} holds a {type(value).__name__}; expected a "
                              f"{'JSON object' if kind is dict else 'JSON list'}")
    return value


def load_checkpoint(path, model=None, metadata_only=False):
    """Read a checkpoint file (or a run folder's ``checkpoint.npz``) into a :class:`Checkpoint`.

    Given the ``model`` the checkpoint is for, a file declaring more than a checkpoint of it holds
    (:func:`max_checkpoint_bytes`) is refused before the excess is allocated. ``metadata_only``
    reads just the :data:`METADATA` entries (at most :data:`METADATA_BYTES`): the config, epoch
    and metrics, leaving ``model``, ``optimizer`` and ``scheduler`` empty.

    Raises ``FileNotFoundError`` if there is none, :class:`CheckpointError` (a ``ValueError``)
    naming the file and the field if a metadata field is damaged, and ``ValueError`` if the
    file is not a readable ``.npz`` archive."""
    path = resolve_checkpoint_path(path)
    if metadata_only:
        flat = load(path, keys=METADATA, max_bytes=METADATA_BYTES)
    else:
        flat = load(path, max_bytes=None if model is None else max_checkpoint_bytes(model))
    if not is_checkpoint(flat):
        raise CheckpointError(f"{path} is not a minicnn training checkpoint (no 'format' entry "
                              f"{FORMAT!r}); a plain state_dict file can be loaded as pretrained "
                              f"weights instead")
    version = _integer_field(flat, "version", path, 0)
    if version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version} is newer than this minicnn "
                              f"understands ({VERSION})")
    return Checkpoint(
        model=subdict(flat, "model"),
        optimizer=subdict(flat, "optimizer"),
        scheduler=subdict(flat, "scheduler"),
        rng_state=_json_field(flat, "rng", path, None, dict),
        epoch=_integer_field(flat, "epoch", path, 0),
        metrics=_json_field(flat, "metrics", path, [], list),
        config=_json_field(flat, "config", path, {}, dict),
        path=path,
        entries=frozenset(key.split(".")[0] for key in flat),
    )


#: What a checkpoint written by a :class:`~minicnn.train.Trainer` holds, all of which resuming
#: needs ("scheduler" only when the run has a learning-rate schedule).
RESUME_ENTRIES = ("model", "optimizer", "scheduler", "rng", "epoch", "metrics", "config")


def check_complete(ck, scheduler=True):
    """Raise :class:`CheckpointError` naming the file and the entries, unless ``ck`` has every
    entry a resume needs (:data:`RESUME_ENTRIES`; ``scheduler`` says whether the run has a
    schedule) and one metrics record per completed epoch. A checkpoint whose zip directory was
    damaged can lose entries; resuming from it would restart, say, the learning-rate schedule."""
    needed = [e for e in RESUME_ENTRIES if scheduler or e != "scheduler"]
    missing = [e for e in needed if e not in ck.entries]
    if missing:
        raise CheckpointError(f"{ck.path}: cannot resume: the checkpoint has no {', '.join(missing)} "
                              f"entries (a complete one has {', '.join(needed)}); the file is "
                              f"damaged or was not written by a training run")
    if not scheduler and "scheduler" in ck.entries:
        raise CheckpointError(f"{ck.path}: cannot resume: the checkpoint holds a learning-rate "
                              f"schedule, but this run has none")
    if len(ck.metrics) != ck.epoch:
        raise CheckpointError(f"{ck.path}: field 'metrics' holds {len(ck.metrics)} epoch records; "
                              f"expected {ck.epoch}, one per completed epoch")
    return ck
