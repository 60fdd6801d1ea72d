"""The training loop: :class:`Trainer` (epochs, validation, checkpoints, resume) and
:func:`evaluate` (loss, top-1/top-5 accuracy and confusion matrix on a data set).

One optimisation step is the five lines every framework shares::

    logits = model(x)                     # forward (records the graph)
    loss = F.cross_entropy(logits, y)     # mean over the batch
    optimizer.zero_grad()                 # forget the previous step's gradients
    loss.backward()                       # gradients of every trainable parameter
    optimizer.step()                      # update the parameters in place

The rest is bookkeeping. After every epoch a ``Trainer`` with an ``out_dir`` writes

* ``metrics.json``: a list with one record per epoch: ``epoch``, ``train_loss``, ``train_acc``,
  ``test_loss``, ``test_acc``, ``test_top5`` (accuracies as fractions in [0, 1]; the test entries
  are ``null`` without a test set), ``lr`` (the rate at the start of the epoch), ``seconds`` (the
  epoch's wall time, training and evaluation), ``train_seconds``, ``test_seconds`` and
  ``images_per_second`` (training throughput);
* ``checkpoint.npz``: model, optimizer, scheduler and RNG state, the epoch, the metrics so far and
  the run's config (see :mod:`minicnn.train.checkpoint`), so that :meth:`Trainer.resume` continues
  the run as if it had never stopped: on the CPU a resumed run's weights equal an uninterrupted
  run's bit for bit;
* ``curves.png`` (training dashed, test solid) when matplotlib is installed;

and at the end ``confusion.json``, ``confusion.csv`` (and ``confusion.png``) for the last
evaluation. A training loss that becomes NaN or infinite raises :class:`TrainingDiverged` naming
the epoch and step. Before a checkpoint replaces the last one, the parameters, the buffers (batch
norm's running statistics) and the test loss are checked too: if any is NaN or infinite the epoch
raises :class:`TrainingDiverged` instead of saving, so the last good checkpoint always stays as it
was. ``metrics.json`` is strict JSON (non-finite numbers become ``null`` with a ``non_finite``
flag; see :func:`minicnn.train.metrics.strict_json`).
"""
import math
import os
import sys
import time

import numpy

from .. import backend, checks, rng
from ..function import no_grad
from ..functional import cross_entropy
from ..nn.parallel import DistributedDataParallel
from ..optim import SGD, clip_grad_norm_
from ..tensor import Tensor
from .checkpoint import (CHECKPOINT_NAME, CheckpointError, check_complete, load_checkpoint,
                         save_checkpoint)
from .finetune import check_weights
from .metrics import (RunningTotals, confusion_matrix, format_confusion, write_confusion,
                      write_json)
from .plots import plot_confusion, plot_curves
from .progress import ProgressBar

#: Weight of each auxiliary classifier's loss (GoogLeNet's, as in the paper).
AUX_LOSS_WEIGHT = 0.3


REFRESH_STEPS = 20
"""The running loss and accuracy are summed on the model's device and read back (one host-device
synchronisation) every this many steps and after the last, not after every step: on a GPU a read
back waits for every queued kernel. A NaN or inf loss is therefore noticed within 20 steps."""


class TrainingDiverged(RuntimeError):
    """The training loss, the test loss, a parameter or a buffer became NaN or infinite.
    ``epoch``, ``step``, ``loss`` say where (``step`` is ``None`` when the problem was found at
    the end of the epoch), and ``checkpoint`` is the last good checkpoint (``None`` if none was
    written)."""

    def __init__(self, message, epoch=None, step=None, loss=None, checkpoint=None):
        super().__init__(message)
        self.epoch, self.step, self.loss, self.checkpoint = epoch, step, loss, checkpoint


def _default_loss(logits, target):
    return cross_entropy(logits, target)


def _forward(model, x, y, loss_fn):
    """``(logits, loss)``; a model returning ``(logits, aux1, aux2, ...)`` (GoogLeNet in training
    mode) adds ``AUX_LOSS_WEIGHT`` times each auxiliary loss."""
    out = model(x)
    if isinstance(out, (tuple, list)):
        logits, aux = out[0], out[1:]
        loss = loss_fn(logits, y)
        for a in aux:
            loss = loss + AUX_LOSS_WEIGHT * loss_fn(a, y)
        return logits, loss
    return out, loss_fn(out, y)


def model_device(model):
    """The device of the model's first parameter (``"cpu"`` for a model without any)."""
    for p in model.parameters():
        return p.device
    return "cpu"


def evaluate(model, loader, device=None, loss_fn=None, progress=False, desc="test", topk=(1, 5)):
    """Run ``model`` in eval mode, without a graph, over ``loader``.

    Returns a dict: ``loss`` (mean), ``top1``, ``top5`` (fractions), ``n`` (images),
    ``confusion`` (``(C, C)`` int64 NumPy array, rows = true class), ``seconds``,
    ``images_per_second``. The model's train/eval mode is restored afterwards.
    """
    loss_fn = loss_fn or _default_loss
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    bar = ProgressBar(len(loader), desc, enabled=progress)
    try:
        with no_grad(), checks.deferred_checks() as pending:
            totals = RunningTotals(pending, topk, keep_predictions=True)
            for step, (x, y) in enumerate(loader, start=1):
                pending.where = f"{desc}, step {step}"
                x_dev, y_dev = backend.to_device(x, device), backend.to_device(y, device)
                logits, loss = _forward(model, Tensor(x_dev), y_dev, loss_fn)
                totals.add(len(y), loss.data, logits.data, y_dev)
                if step % REFRESH_STEPS == 0 or step == len(loader):
                    totals.read_back()
                    bar.update(1, loss=f"{totals.loss:.4f}",
                               acc=f"{100.0 * totals.accuracy(topk[0]):.2f}%")
                else:
                    bar.update(1)
    finally:
        bar.close()
        model.train(was_training)
    seconds = time.perf_counter() - start
    if totals.n == 0:
        raise ValueError("evaluate: the loader yielded no data")
    result = {"loss": totals.loss, "n": totals.n, "seconds": seconds,
              "images_per_second": totals.n / seconds if seconds > 0 else float("inf")}
    for k in topk:
        result[f"top{k}"] = totals.accuracy(k)
    result["confusion"] = confusion_matrix(numpy.concatenate(totals.targets),
                                           numpy.concatenate(totals.predictions),
                                           logits.shape[1])
    return result


class Trainer:
    """Train ``model`` with ``optimizer`` on ``train_loader``, evaluating on ``test_loader``.

    Parameters
    ----------
    scheduler, scheduler_interval
        An ``optim.lr_scheduler`` scheduler, stepped after every optimisation step
        (``"step"``) or after every epoch (``"epoch"``, the default).
    loss_fn
        ``loss_fn(logits, targets) -> 0-d Tensor``; defaults to ``F.cross_entropy``.
    epochs
        The total number of epochs :meth:`fit` runs to (counting epochs already done, when
        resumed).
    out_dir
        Where ``metrics.json``, ``checkpoint.npz`` and the pictures go; ``None`` writes nothing.
    device
        Moves the model there; batches are moved there one at a time. Defaults to the model's.
    classes
        Class names for the confusion matrix.
    config
        A JSON-able dict stored in the checkpoint (the CLI keeps the model name, class count,
        input channels and the recipe there, to rebuild the run).
    progress, verbose
        A progress bar per epoch (stderr); a summary line per epoch and the confusion matrix at
        the end (stdout).
    plots
        Draw ``curves.png`` and ``confusion.png`` when matplotlib is installed.
    clip_grad_norm
        If given, gradients are clipped to this total norm before every step.
    log
        ``log(message)`` for the per-epoch lines (default: ``print``).
    epoch_label
        What one pass of ``train_loader`` is called in the progress bar and the per-epoch lines
        (default ``"epoch"``; the lecture's curves-versus-iterations use ``"round"``).
    """

    def __init__(self, model, optimizer, train_loader, test_loader=None, *, scheduler=None,
                 scheduler_interval="epoch", loss_fn=None, epochs=1, out_dir=None, device=None,
                 classes=None, config=None, progress=True, verbose=True, plots=True,
                 clip_grad_norm=None, log=None, epoch_label="epoch"):
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.model, self.optimizer = model, optimizer
        self.train_loader, self.test_loader = train_loader, test_loader
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.loss_fn = loss_fn or _default_loss
        self.epochs = int(epochs)
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.device = backend.normalize_device(device) if device is not None else model_device(model)
        if device is not None:
            model.to(self.device)
        self.classes = classes
        self.config = dict(config or {})
        self.progress, self.verbose, self.plots = progress, verbose, plots
        self.clip_grad_norm = clip_grad_norm
        self._log = log or (lambda msg: print(msg, flush=True))
        self.epoch_label = epoch_label
        self.history = []
        self.epoch = 0  # completed epochs
        self.last_eval = None
        self.checkpoint_saved = None  # epoch of the last checkpoint written by this run or resumed

    # -- paths ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self):
        """``out_dir/checkpoint.npz`` (``None`` without an ``out_dir``)."""
        return None if self.out_dir is None else os.path.join(self.out_dir, CHECKPOINT_NAME)

    @property
    def metrics_path(self):
        """``out_dir/metrics.json`` (``None`` without an ``out_dir``)."""
        return None if self.out_dir is None else os.path.join(self.out_dir, "metrics.json")

    @property
    def bare_model(self):
        """The model the checkpoints hold: inside a ``DistributedDataParallel``, the wrapped one
        (so a data-parallel run's checkpoint loads into one process, and back)."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def log(self, msg):
        """Print ``msg`` (stdout) unless the trainer is not ``verbose``."""
        if self.verbose:
            self._log(msg)

    # -- the loop ---------------------------------------------------------------------------
    def current_lr(self):
        """The learning rate of the first parameter group now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def fit(self, epochs=None):
        """Train until ``epochs`` (default: the constructor's) epochs are complete; return the
        per-epoch records. Raises :class:`TrainingDiverged` if the loss stops being finite."""
        epochs = self.epochs if epochs is None else int(epochs)
        self.epochs = epochs
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
        for epoch in range(self.epoch + 1, epochs + 1):
            self.run_epoch(epoch)
        self.finish()
        return self.history

    def run_epoch(self, epoch):
        """One epoch: train, evaluate, step an epoch scheduler, record, checkpoint."""
        start = time.perf_counter()
        lr = self.current_lr()
        if hasattr(getattr(self.train_loader, "sampler", None), "set_epoch"):
            self.train_loader.sampler.set_epoch(epoch)  # a DistributedSampler: this epoch's order
        train = self.train_epoch(epoch)
        test = None
        if self.test_loader is not None:
            test = evaluate(self.model, self.test_loader, self.device, self.loss_fn,
                            progress=self.progress,
                            desc=f"{self.epoch_label} {epoch}/{self.epochs} test")
            self.last_eval = test
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        record = {
            "epoch": epoch,
            "train_loss": train["loss"],
            "train_acc": train["acc"],
            "test_loss": None if test is None else test["loss"],
            "test_acc": None if test is None else test["top1"],
            "test_top5": None if test is None else test["top5"],
            "lr": lr,
            "seconds": time.perf_counter() - start,
            "train_seconds": train["seconds"],
            "test_seconds": None if test is None else test["seconds"],
            "images_per_second": train["images_per_second"],
        }
        self.check_finite(epoch, record)
        self.history.append(record)
        self.epoch = epoch
        self.save()
        self.log(self._summary_line(record))
        return record

    def _summary_line(self, r):
        line = (f"{self.epoch_label} {r['epoch']:>{len(str(self.epochs))}}/{self.epochs}  train loss "
                f"{r['train_loss']:.4f} acc {100 * r['train_acc']:6.2f}%")
        if r["test_loss"] is not None:
            line += (f"  test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:6.2f}% "
                     f"top-5 {100 * r['test_top5']:6.2f}%")
        return line + f"  lr {r['lr']:.4g}  {r['seconds']:.1f}s ({r['images_per_second']:.0f} img/s)"

    def train_epoch(self, epoch):
        """One pass over ``train_loader`` in training mode; returns ``loss``, ``acc``,
        ``seconds``, ``images_per_second``."""
        model, optimizer = self.model, self.optimizer
        model.train()
        steps = len(self.train_loader)
        start = time.perf_counter()
        bar = ProgressBar(steps, f"{self.epoch_label} {epoch}/{self.epochs}", enabled=self.progress)
        try:
            with checks.deferred_checks() as pending:
                totals = RunningTotals(pending)
                for step, (x, y) in enumerate(self.train_loader, start=1):
                    pending.where = f"epoch {epoch}, step {step}"
                    x_dev, y_dev = backend.to_device(x, self.device), backend.to_device(y, self.device)
                    logits, loss = _forward(model, Tensor(x_dev), y_dev, self.loss_fn)
                    optimizer.zero_grad()
                    model.zero_grad()       # also parameters the optimizer does not hold
                    loss.backward()
                    if self.clip_grad_norm is not None:
                        clip_grad_norm_(model.parameters(), self.clip_grad_norm)
                    optimizer.step()
                    if self.scheduler is not None and self.scheduler_interval == "step":
                        self.scheduler.step()
                    totals.add(len(y), loss.data, logits.data, y_dev)
                    if step % REFRESH_STEPS and step != steps:
                        bar.update(1)
                        continue
                    losses = totals.read_back()
                    for i, value in enumerate(losses):
                        if not math.isfinite(value):
                            raise self._diverged(epoch, step - len(losses) + 1 + i, steps, value)
                    elapsed = time.perf_counter() - start
                    bar.update(1, loss=f"{totals.loss:.4f}", acc=f"{100.0 * totals.accuracy():.2f}%",
                               **{"img/s": f"{totals.n / elapsed:.0f}" if elapsed > 0 else "-"})
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        if totals.n == 0:
            raise ValueError("train_epoch: the training loader yielded no data")
        return {"loss": totals.loss, "acc": totals.accuracy(), "seconds": seconds,
                "images_per_second": totals.n / seconds if seconds > 0 else float("inf")}

    def first_non_finite(self):
        """The name of the first parameter or buffer holding a NaN or inf, or ``None``."""
        for kind, items in (("parameter", self.model.named_parameters()),
                            ("buffer", self.model.named_buffers())):
            for name, value in items:
                array = value.data if isinstance(value, Tensor) else value
                if array is None or numpy.dtype(array.dtype).kind not in "fc":
                    continue
                xp = backend.get_array_module(array)
                if not bool(xp.isfinite(array).all()):
                    return f"{kind} {name!r}"
        return None

    def check_finite(self, epoch, record):
        """Raise :class:`TrainingDiverged` if the epoch's test loss, a parameter or a buffer is
        NaN or infinite (called before the epoch's checkpoint would replace the last one)."""
        broken = self.first_non_finite()
        if broken is not None:
            raise self._diverged(epoch, None, None, record.get("train_loss"),
                                 what=f"{broken} of the model", holds=True)
        test_loss = record.get("test_loss")
        if test_loss is not None and not math.isfinite(test_loss):
            raise self._diverged(epoch, None, None, test_loss, what="the test loss")

    def _diverged(self, epoch, step, steps, value, what="the loss", holds=False):
        where = f"epoch {epoch}, step {step}/{steps}" if step is not None else f"the end of epoch {epoch}"
        if self.checkpoint_saved is not None:
            kept = (f"The last good checkpoint (after epoch {self.checkpoint_saved}) is kept at "
                    f"{self.checkpoint_path}.")
        else:
            kept = "No checkpoint had been written yet."
        state = "holds NaN or inf values" if holds else f"is {value}"
        msg = (f"training diverged at {where}: {what} {state} (learning rate "
               f"{self.current_lr():.4g}). {kept} Try a smaller learning rate, a warm-up "
               f"(--warmup-epochs) or gradient clipping (--clip-grad).")
        return TrainingDiverged(msg, epoch=epoch, step=step, loss=value,
                                checkpoint=self.checkpoint_path if self.checkpoint_saved is not None else None)

    # -- output files -----------------------------------------------------------------------------
    def save(self):
        """Write the checkpoint, ``metrics.json`` and the curves (if there is an ``out_dir``)."""
        if self.out_dir is None:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        save_checkpoint(self.checkpoint_path, self.bare_model, self.optimizer, self.scheduler,
                        epoch=self.epoch, metrics=self.history, config=self.config)
        self.checkpoint_saved = self.epoch
        write_json(self.history, self.metrics_path)
        if self.plots:
            try:
                plot_curves(self.history, os.path.join(self.out_dir, "curves.png"),
                            title=self.config.get("model"))
            except Exception as err:  # a picture must never stop training
                print(f"warning: could not draw the training curves: {err}", file=sys.stderr)

    def finish(self):
        """After the last epoch: print and save the confusion matrix of the last evaluation."""
        if self.last_eval is None:
            return
        matrix = self.last_eval["confusion"]
        self.log(format_confusion(matrix, self.classes))
        if self.out_dir is None:
            return
        write_confusion(matrix, self.classes, self.out_dir)
        if self.plots:
            try:
                plot_confusion(matrix, self.classes, os.path.join(self.out_dir, "confusion.png"))
            except Exception as err:
                print(f"warning: could not draw the confusion matrix: {err}", file=sys.stderr)

    # -- resuming -----------------------------------------------------------------------------------
    def resume(self, path=None):
        """Restore a checkpoint (default: ``out_dir/checkpoint.npz``): model, optimizer,
        scheduler, RNG state, epoch and metrics. :meth:`fit` then carries on from the next epoch.
        Returns the number of epochs already done.

        The checkpoint must be complete (:func:`~minicnn.train.checkpoint.check_complete`) and
        every value valid: weights finite and shaped as the model's (:func:`check_weights`),
        optimizer and schedule options finite and in range, the schedule at the step the epoch
        count implies, a generator state NumPy accepts. Otherwise :class:`CheckpointError` (a
        ``ValueError``) names the file and the entry."""
        ck = load_checkpoint(path if path is not None else self.checkpoint_path, model=self.bare_model)
        check_complete(ck, scheduler=self.scheduler is not None)
        generator = numpy.random.Generator(numpy.random.PCG64())
        try:
            generator.bit_generator.state = ck.rng_state
            check_weights(self.bare_model, ck.model, "the model's weights")
            self.bare_model.load_state_dict(ck.model)
            self.optimizer.load_state_dict(ck.optimizer)
            if self.scheduler is not None:
                self.scheduler.load_state_dict(ck.scheduler)
        except (ValueError, TypeError, KeyError) as err:
            raise CheckpointError(f"{ck.path}: cannot resume: {err}") from None
        steps = ck.epoch * (len(self.train_loader) if self.scheduler_interval == "step" else 1)
        if self.scheduler is not None and self.scheduler.last_epoch != steps:
            raise CheckpointError(f"{ck.path}: cannot resume: the schedule is at step "
                                  f"{self.scheduler.last_epoch}, but {ck.epoch} epoch(s) of "
                                  f"{len(self.train_loader)} steps make {steps}")
        rng.set_state(ck.rng_state)
        self.epoch = ck.epoch
        self.history = list(ck.metrics)
        self.checkpoint_saved = ck.epoch
        for key, value in ck.config.items():
            self.config.setdefault(key, value)
        return ck.epoch


def fit(model, train_loader, test_loader=None, epochs=1, optimizer=None, lr=0.01, momentum=0.9,
        **trainer_kwargs):
    """Train in one call: ``fit(model, train_loader, test_loader, epochs=3)``.

    Builds ``optim.SGD(trainable params, lr, momentum)`` unless ``optimizer`` is given; other
    keyword arguments go to :class:`Trainer`. Returns the :class:`Trainer` (its ``history`` holds
    the per-epoch records).
    """
    if optimizer is None:
        optimizer = SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)
    trainer = Trainer(model, optimizer, train_loader, test_loader, epochs=epochs, **trainer_kwargs)
    trainer.fit()
    return trainer
