"""Running ``minicnn train`` and ``minicnn evaluate``: from parsed options to a finished run.

:func:`train_main` and :func:`evaluate_main` return the exit status, and turn every expected
failure into one line on stderr instead of a traceback:

====  =============================================================================================
0     done
1     bad usage or input: an impossible option value or combination, a missing or damaged data
      set, checkpoint or weights file, a folder that cannot be written (disk full, read-only),
      not enough memory
2     the command line could not be parsed (argparse's own status, before any of this runs)
3     the training diverged: a loss, parameter or buffer became NaN or infinite; the last good
      checkpoint is kept
130   interrupted (Ctrl-C); the last completed epoch's checkpoint is kept
====  =============================================================================================

Both opt in, at the start of the run, to :func:`minicnn.fast.host_memory.keep_freed_memory`
(freed NumPy buffers are reused instead of returned to the operating system;
``MINICNN_KEEP_FREED_MEMORY=0`` turns it off). Importing minicnn changes nothing process-wide.

The commands are three modules, read in this order: ``args.py`` (the options and their value
checks), ``config.py`` (the run's settings, defaults and ``--resume``, and building the data, model,
optimizer and schedule from them) and this one. ``minicnn/cli.py`` calls
``add_train_arguments(parser)``/``train_main(args)`` and
``add_evaluate_arguments(parser)``/``evaluate_main(args)``.

The default recipe
------------------
``minicnn train`` with no options trains :data:`minicnn.models.default_model_name`
(``fashion_cnn``) on Fashion-MNIST: SGD with Nesterov momentum 0.9, learning rate 0.05,
weight decay 5e-4, batch 128, a cosine schedule stepped every iteration, no augmentation,
:data:`DEFAULT_EPOCHS` (8) epochs, seed 0, on every core the process may use (``--threads``; see
:mod:`minicnn.fast.threads`). See docs/training.md for the accuracy and time measured.

Where the output goes
---------------------
``--out DIR``, or by default ``runs/<model>-<YYYYmmdd>-<HHMMSS>``; ``runs/latest`` is then made a
symbolic link to that folder (where the file system allows it), and ``--resume`` without a path or
``--out`` continues ``runs/latest`` (``evaluate`` reads it by default too). The folder receives
``metrics.json``, ``checkpoint.npz`` (every epoch, atomically, only when every parameter, buffer
and the test loss are finite), ``config.json``, ``confusion.json``/``.csv`` and, with matplotlib,
``curves.png`` and ``confusion.png``. The folder is locked while the run writes there (``.lock``,
see :func:`~minicnn.train.checkpoint.lock_run_folder`): a second run into it is refused, and so is
a new run into a folder holding another run's checkpoint.
"""
import os
import shutil
import sys
import time

from .. import rng
from ..data import DataLoader, DatasetNotFoundError
from ..fast.host_memory import keep_freed_memory
from ..serialization import entry_shapes, load
from ..fast.threads import num_threads
from . import data_parallel
from .checkpoint import (CHECKPOINT_NAME, METADATA, METADATA_BYTES, FolderInUse, is_checkpoint,
                         lock_run_folder, resolve_checkpoint_path)
from .config import (DATASETS, UsageError, build_model, build_optimizer, build_scheduler,
                     build_transforms, check_device, check_input_size, check_num_classes,
                     check_model_name, check_out_dir, check_saved_config, default_out_dir, latest_link, link_latest,
                     load_datasets, make_loaders, random_subset, read_checkpoint, resolve_config)
from .finetune import (check_weights, freeze, load_pretrained, read_state_dict, train_only_head,
                       trainable_parameters)
from .metrics import format_confusion, write_confusion, write_json
from .plots import plot_confusion
from .trainer import Trainer, TrainingDiverged, evaluate

#: Exit statuses of ``minicnn train`` and ``minicnn evaluate`` (see the module docstring).
EXIT_OK, EXIT_BAD_INPUT, EXIT_ARGPARSE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class RunState:
    """What a run has done so far, for the messages after a failure or an interruption."""

    def __init__(self):
        self.out_dir = None  # the output folder, once chosen
        self.created = False  # whether this run made the folder (and runs/latest)
        self.previous_latest = None  # where runs/latest pointed before this run
        self.trainer = None
        self.lock = None  # the output folder's lock file, held for the whole run

    def release(self):
        """Release the output folder's lock (the run is over)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def epochs_saved(self):
        """The epoch of the last checkpoint this run wrote or resumed from (None: none)."""
        return None if self.trainer is None else self.trainer.checkpoint_saved


def describe_os_error(err):
    """``"PATH: cause"`` for an ``OSError`` (disk full, read-only folder, ...)."""
    cause = err.strerror or str(err)
    where = err.filename if err.filename is not None else "a file"
    return f"{where}: {cause}"


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def train_main(args):
    """Run ``minicnn train``; returns the exit status (0, 1, 3 or 130: see the module docstring).
    Under ``mpiexec -n N`` a non-zero status of one rank stops every rank (data_parallel.finish)."""
    return data_parallel.finish(_train_main(args))


def _train_main(args):
    keep_freed_memory()
    state = RunState()
    try:
        with num_threads(getattr(args, "threads", None)):
            return train(args, state)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except (UsageError, DatasetNotFoundError) as err:
        return _fail(err)
    except OSError as err:
        kept = ""
        if state.epochs_saved() is not None:
            kept = (f"; the checkpoint of epoch {state.epochs_saved()} in {state.out_dir} is "
                    f"intact")
        return _fail(f"could not read or write {describe_os_error(err)}{kept}")
    except MemoryError:
        return _fail("out of memory; try a smaller --batch-size, --image-size or model")
    except KeyboardInterrupt:
        print("\n" + interrupted_message(state), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        state.release()


def interrupted_message(state):
    """What to say after Ctrl-C: how to continue, or that there is nothing to continue."""
    done = state.epochs_saved()
    if done is not None:
        return (f"interrupted; the checkpoint of epoch {done} is kept: 'minicnn train --resume "
                f"{state.out_dir}' continues the run")
    if state.out_dir is not None and state.created:
        _forget_empty_run(state)
        return ("interrupted before the first epoch finished, so there is nothing to resume; "
                "run the same command again to start over")
    return "interrupted before an epoch finished; nothing was saved"


def _forget_empty_run(state):
    """Remove the output folder a run made before any checkpoint (it holds only config.json)
    and point ``runs/latest`` back where it pointed before."""
    out_dir = state.out_dir
    if os.path.exists(os.path.join(out_dir, CHECKPOINT_NAME)):
        return
    shutil.rmtree(out_dir, ignore_errors=True)
    latest = latest_link(out_dir)
    if latest is None or not os.path.islink(latest):
        return
    try:
        if os.readlink(latest) == os.path.basename(os.path.abspath(out_dir)):
            os.remove(latest)
            if state.previous_latest is not None:
                os.symlink(state.previous_latest, latest)
    except OSError:
        pass


def train(args, state=None):
    """The run itself: config, data, model, optimizer, output folder, :meth:`Trainer.fit`.
    Raises on failure (:func:`train_main` turns that into an exit status)."""
    state = state if state is not None else RunState()
    config, resume_path, notes, replan = resolve_config(args)
    ranks = data_parallel.start(config, resume_path, getattr(args, "scale_lr", False),
                                getattr(args, "threads", None))
    rank, world = ranks or (0, 1)  # under mpiexec: rank 0 alone evaluates, prints and writes
    for note in notes if rank == 0 else ():
        print(note, file=sys.stderr)
    quiet = bool(getattr(args, "quiet", False)) or rank != 0
    rng.manual_seed(config["seed"])

    train_set, test_set, classes = load_datasets(config)
    if config["num_classes"] is None:
        config["num_classes"] = len(classes) if classes else int(train_set.targets.max()) + 1
    check_num_classes(config, train_set, test_set)
    train_set = random_subset(train_set, config.get("subset"), config["seed"])
    test_set = random_subset(test_set, config.get("test_subset"), config["seed"] + 1)
    config["classes"] = classes
    train_loader, test_loader = make_loaders(config, train_set, test_set)
    if ranks:
        train_loader = data_parallel.shard(train_loader, config, rank, world)
        test_loader = test_loader if rank == 0 else None

    model, params = _build_model(config, resume_path)
    device = config.get("device") or "cpu"
    model.to(device)
    optimizer = build_optimizer(config, params)
    scheduler = build_scheduler(config, optimizer, len(train_loader))
    if ranks:
        model = data_parallel.wrap(model, config, rank)

    if rank == 0:
        _choose_out_dir(args, config, resume_path, state)
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler=scheduler,
                      scheduler_interval="step", epochs=config["epochs"], out_dir=state.out_dir,
                      device=device, classes=classes, config=config, progress=not quiet,
                      verbose=not quiet, clip_grad_norm=config.get("clip_grad"))
    state.trainer = trainer
    if resume_path:
        done = _resume(trainer, resume_path, config, replan, len(train_loader), quiet)
        if done >= config["epochs"]:
            if rank == 0:
                print(f"nothing to do: the run already has {done} epochs (give --epochs N to extend it)")
            return EXIT_OK
        if ranks:
            data_parallel.after_resume(config, rank, world, done)
    if rank == 0:
        write_json(dict(config), os.path.join(state.out_dir, "config.json"))
    if not quiet:
        print(_header(config, model, params, train_set, test_set, device, state.out_dir), flush=True)
    start = time.perf_counter()
    trainer.fit()
    if rank != 0:
        return EXIT_OK
    minutes = (time.perf_counter() - start) / 60
    last = trainer.history[-1]
    print(f"{config['model']} on {config['dataset']}: test accuracy {100 * last['test_acc']:.2f}% "
          f"(top-5 {100 * last['test_top5']:.2f}%, loss {last['test_loss']:.4f}) after epoch "
          f"{last['epoch']}; {minutes:.1f} min; results in {state.out_dir}")
    return EXIT_OK


def _build_model(config, resume_path):
    """The model (pretrained weights loaded, layers frozen as asked) and its trainable parameters."""
    model = build_model(config)
    check_input_size(model, config)
    if config.get("pretrained") and not resume_path:
        try:
            load_pretrained(model, config["pretrained"], num_classes=config["num_classes"])
        except ValueError as err:
            raise UsageError(f"--pretrained: {err}") from None
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
    return model, params


def _choose_out_dir(args, config, resume_path, state):
    """``--out``, the resumed run's folder, or a new ``runs/<model>-<date>-<time>`` (then linked
    as ``runs/latest``), locked for this run (:func:`lock_out_dir`). A new run never goes into a
    folder that holds another run's checkpoint: the two runs' files would mix."""
    if args.out is not None:
        out_dir = args.out
    elif resume_path:
        out_dir = os.path.dirname(os.path.abspath(resume_path))
    else:
        out_dir = default_out_dir(config["model"])
    state.created = not os.path.exists(out_dir)
    state.out_dir = check_out_dir(out_dir)
    state.lock = lock_out_dir(out_dir)
    if not resume_path and os.path.exists(os.path.join(out_dir, CHECKPOINT_NAME)):
        raise UsageError(f"--out {out_dir} already holds a run ({CHECKPOINT_NAME}); continue it "
                         f"with --resume {out_dir}, or choose another --out")
    if args.out is None and not resume_path:
        state.previous_latest = link_latest(out_dir)
    return out_dir


def lock_out_dir(out_dir):
    """Lock the ``--out`` folder for this run (:func:`~minicnn.train.checkpoint.lock_run_folder`),
    or :class:`UsageError` naming it if another run is writing there."""
    try:
        return lock_run_folder(out_dir)
    except FolderInUse as err:
        raise UsageError(f"--out {err}") from None


def _resume(trainer, resume_path, config, replan, steps_per_epoch, quiet):
    """Restore the checkpoint into ``trainer``; returns the number of epochs done."""
    try:
        done = trainer.resume(resume_path)
    except ValueError as err:
        raise UsageError(f"--resume: {err}") from None  # the message names the file
    trainer.config.update(config)
    if replan and trainer.scheduler is not None:
        # the saved schedule was planned for the old length: plan anew, at the current step
        old = trainer.scheduler
        trainer.scheduler = build_scheduler(config, trainer.optimizer, steps_per_epoch)
        trainer.scheduler.step(old.last_epoch)
    if not quiet:
        print(f"resuming {resume_path} after epoch {done} of {config['epochs']}")
    return done


def _header(config, model, params, train_set, test_set, device, out_dir):
    """The line printed before training: model, data, recipe, output folder."""
    n_params = model.num_parameters()
    n_train = sum(p.numel() for p in params)
    frozen = f", {n_train:,} trainable" if n_train != n_params else ""
    opt_desc = f"{config['optimizer']} lr {config['lr']:g}"
    if config["optimizer"] == "sgd" and config["momentum"]:
        opt_desc += f" momentum {config['momentum']:g}{' nesterov' if config.get('nesterov') else ''}"
    opt_desc += f" wd {config['weight_decay']:g}"
    warmup = f" with {config['warmup_epochs']:g} warm-up epochs" if config["warmup_epochs"] else ""
    return (f"training {config['model']} ({n_params:,} parameters{frozen}) on {config['dataset']}: "
            f"{len(train_set)} train / {len(test_set)} test images, {config['epochs']} epochs, "
            f"batch {config['batch_size']}, {opt_desc}, {config['schedule']} schedule{warmup}, "
            f"augment {config['augment']}, device {device}; output in {out_dir}")


# -- evaluate ---------------------------------------------------------------------------------------
def evaluate_main(args):
    """Run ``minicnn evaluate``; returns the exit status (0, 1 or 130)."""
    keep_freed_memory()
    try:
        with num_threads(getattr(args, "threads", None)):
            return evaluate_checkpoint(args)
    except (UsageError, DatasetNotFoundError) as err:
        return _fail(err)
    except OSError as err:
        return _fail(f"could not read or write {describe_os_error(err)}")
    except MemoryError:
        return _fail("out of memory; try a smaller --batch-size")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _read_config(args):
    """``(path, config, is a checkpoint)`` of ``--checkpoint`` (default: ``runs/latest``): only
    its metadata is read, the weights once the model they are for is built."""
    given = args.checkpoint if args.checkpoint is not None else os.path.join("runs", "latest")
    try:
        path = resolve_checkpoint_path(given)
    except FileNotFoundError:
        hint = "" if args.checkpoint is not None else " (give --checkpoint PATH)"
        raise UsageError(f"--checkpoint: no checkpoint found at {given}{hint}") from None
    try:
        checkpoint = is_checkpoint(load(path, keys=METADATA, max_bytes=METADATA_BYTES))
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not checkpoint:
        return path, {}, False
    config = dict(read_checkpoint(path, metadata_only=True).config)
    return path, check_saved_config(config, path), True


def _head_classes(path, checkpoint):
    """The outputs of the last 2-D ``.weight`` in the file (the classifier head), else 10."""
    prefix = "model." if checkpoint else ""
    try:
        shapes = entry_shapes(path)
    except ValueError as err:
        raise UsageError(str(err)) from None
    heads = [shape for key, shape in shapes.items()
             if key.startswith(prefix) and key.endswith(".weight") and len(shape) == 2]
    return int(heads[-1][0]) if heads else 10


def saved_model_config(args):
    """``(path, config, is_checkpoint)``: the run config of the checkpoint or weights file that
    ``args`` names, completed by ``--model``, ``--dataset`` and ``--num-classes`` (``evaluate``,
    ``export``)."""
    path, config, checkpoint = _read_config(args)
    if args.model:
        config["model"] = check_model_name(args.model)
    if not config.get("model"):
        raise UsageError(f"{path} holds no run config: give --model NAME")
    config["dataset"] = args.dataset or config.get("dataset") or "fashion-mnist"
    if config["dataset"] not in DATASETS:
        raise UsageError(f"--dataset {config['dataset']}: expected one of {', '.join(DATASETS)}")
    config.setdefault("in_channels", DATASETS[config["dataset"]]["channels"])
    config["num_classes"] = (args.num_classes or config.get("num_classes")
                             or _head_classes(path, checkpoint))
    return path, config, checkpoint


def load_saved_model(args):
    """A saved run's model with its weights: ``(model, config, path, test set, classes)``, each
    checked (the run's files, the data, the weights' names, shapes and values, the input size),
    as ``minicnn evaluate`` and ``minicnn explain`` need them; raises :class:`UsageError`."""
    path, config, _ = saved_model_config(args)
    if args.data_root is not None:
        config["data_root"] = args.data_root
    _, test_set, classes = load_datasets(config, train=False)
    check_num_classes(config, test_set)
    model = build_model(config)
    try:
        weights = read_state_dict(path, model)
    except ValueError as err:  # the message names the file
        raise UsageError(str(err)) from None
    try:
        check_weights(model, weights, path)
        model.load_state_dict(weights)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    check_input_size(model, config)
    return model, config, path, test_set, classes


def evaluate_checkpoint(args):
    """``minicnn evaluate`` itself: rebuild the model, load the weights, test it."""
    model, config, path, test_set, classes = load_saved_model(args)
    test_set = random_subset(test_set, args.subset, 1)
    loader = DataLoader(test_set, batch_size=args.batch_size or 256, shuffle=False,
                        transform=build_transforms(config, train=False))
    device = args.device or "cpu"
    check_device(device)
    model.to(device)
    result = evaluate(model, loader, device, progress=not args.quiet)
    print(f"{config['model']} on {config['dataset']} test set ({result['n']} images): "
          f"loss {result['loss']:.4f}  top-1 {100 * result['top1']:.2f}%  "
          f"top-5 {100 * result['top5']:.2f}%")
    if not args.quiet:
        print(format_confusion(result["confusion"], classes))
    if args.out:
        check_out_dir(args.out)
        with lock_out_dir(args.out):  # not while a training run writes there
            write_confusion(result["confusion"], classes, args.out)
            plot_confusion(result["confusion"], classes, os.path.join(args.out, "confusion.png"))
            write_json({"checkpoint": os.path.abspath(path), "dataset": config["dataset"],
                        "n": result["n"], "test_loss": result["loss"], "test_acc": result["top1"],
                        "test_top5": result["top5"]}, os.path.join(args.out, "evaluation.json"))
    return EXIT_OK
