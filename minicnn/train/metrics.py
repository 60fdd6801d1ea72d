"""Counting what a classifier gets right: top-k hits, the confusion matrix, and writing them out.

All counting runs on the logits' device with its array module; only a few integers (and the
predicted labels, for the confusion matrix) come back to the host.
"""
import csv
import io
import json
import math
import numbers
import os

import numpy

from .. import backend
from ..serialization import atomic_write
from ..tensor import Tensor


def topk_hits(logits, targets, ks=(1, 5)):
    """``{k: rows whose true class is among the k largest logits}``, each a 0-d array on the
    logits' device (no synchronisation with the host; :func:`topk_correct` gives ints).

    ``logits`` ``(N, C)`` and ``targets`` ``(N,)`` are backend arrays (or Tensors) on one device;
    ``k`` larger than ``C`` counts every row.
    """
    logits = logits.data if isinstance(logits, Tensor) else logits
    targets = targets.data if isinstance(targets, Tensor) else targets
    xp = backend.get_array_module(logits)
    n, c = logits.shape
    out = {}
    order = None
    for k in ks:
        if k <= 1:
            out[k] = (logits.argmax(axis=1) == targets).sum()
        elif k >= c:
            out[k] = xp.asarray(n)
        else:
            if order is None:
                order = xp.argsort(logits, axis=1)[:, ::-1][:, :max(ks)]
            out[k] = (order[:, :k] == targets[:, None]).any(axis=1).sum()
    return out


def topk_correct(logits, targets, ks=(1, 5)):
    """``{k: number of rows whose true class is among the k largest logits}`` (Python ints)."""
    return {k: int(v) for k, v in topk_hits(logits, targets, ks).items()}


class RunningTotals:
    """What a pass over a data set adds up, kept on the device and read back in batches.

    Each step hands over its batch size, loss, logits and targets (device arrays) with
    :meth:`add`; :meth:`read_back` copies the values of all steps since the last read-back to the
    host at once (one copy per kind) and adds them up: ``n`` images, ``loss`` (the mean),
    ``hits[k]`` (top-k), and with ``keep_predictions`` the predicted and true labels for a
    confusion matrix. On a GPU every read-back waits for all queued kernels, so a loop reads back
    every :data:`~minicnn.train.trainer.REFRESH_STEPS` steps, not after each one; on the CPU it costs
    nothing. ``checks`` (from ``minicnn.checks.deferred_checks``) raises a bad label at the read-back,
    before the numbers it spoiled.
    """

    def __init__(self, checks, topk=(1,), keep_predictions=False):
        self.checks, self.topk, self.keep = checks, tuple(topk), keep_predictions
        self.n, self.loss_sum, self.hits = 0, 0.0, {k: 0 for k in self.topk}
        self.predictions, self.targets = [], []
        self._pending = []           # (batch size, loss, hits, predictions, targets), on the device

    def add(self, size, loss, logits, targets):
        predicted = logits.argmax(axis=1) if self.keep else None
        self._pending.append((int(size), loss, topk_hits(logits, targets, self.topk), predicted,
                              targets))

    def read_back(self):
        """Add up the steps since the last read-back; returns their losses (Python floats)."""
        self.checks.check()
        if not self._pending:
            return []
        xp = backend.get_array_module(self._pending[0][1])
        losses = _to_host([loss for _, loss, _, _, _ in self._pending])
        for k in self.topk:
            self.hits[k] += int(sum(_to_host([hits[k] for _, _, hits, _, _ in self._pending])))
        if self.keep:
            self.predictions.append(backend.to_numpy(xp.concatenate([p for *_, p, _ in self._pending])))
            self.targets.append(numpy.asarray(backend.to_numpy(
                xp.concatenate([t for *_, t in self._pending]))))
        for (size, *_), value in zip(self._pending, losses):
            self.n += size
            self.loss_sum += value * size
        self._pending.clear()
        return losses

    @property
    def loss(self):
        return self.loss_sum / self.n

    def accuracy(self, k=1):
        return self.hits[k] / self.n


def _to_host(values):
    """A list of 0-d device arrays as Python numbers, copied to the host in one go."""
    xp = backend.get_array_module(values[0])
    return backend.to_numpy(xp.stack([xp.asarray(v).reshape(()) for v in values])).tolist()


def confusion_matrix(targets, predictions, num_classes):
    """``(C, C)`` int64 counts: row = true class, column = predicted class (host arrays)."""
    t = numpy.asarray(backend.to_numpy(targets), dtype=numpy.int64).ravel()
    p = numpy.asarray(backend.to_numpy(predictions), dtype=numpy.int64).ravel()
    return numpy.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def class_names(classes, num_classes):
    """``classes`` if it names every class, else ``["0", "1", ...]``."""
    if classes is not None and len(classes) == num_classes:
        return [str(c) for c in classes]
    return [str(i) for i in range(num_classes)]


def format_confusion(matrix, classes=None):
    """The confusion matrix as a text table (rows: true class, columns: predicted), with each
    class's recall (per-class accuracy) on the right."""
    matrix = numpy.asarray(matrix)
    c = len(matrix)
    names = class_names(classes, c)
    short = [n[:11] for n in names]
    width = max(5, len(str(int(matrix.max()) if matrix.size else 0)) + 1)
    label_w = max(len(s) for s in short) + 1
    head = " " * label_w + "".join(f"{i:>{width}}" for i in range(c)) + "   recall"
    lines = ["confusion matrix (rows: true class, columns: predicted class)", head]
    for i in range(c):
        total = matrix[i].sum()
        recall = f"{100.0 * matrix[i, i] / total:7.2f}%" if total else "      -"
        lines.append(f"{short[i]:<{label_w}}" + "".join(f"{int(v):>{width}}" for v in matrix[i])
                     + f" {recall}  ({i})")
    return "\n".join(lines)


def _atomic_write_text(text, path):
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return os.fspath(path)


def _is_non_finite(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral))
            and not math.isfinite(value))


def strict_json(obj):
    """A copy of ``obj`` that is valid (strict) JSON: NaN and +-inf become ``null``, and a dict
    that held any gets a ``"non_finite"`` entry listing those keys, so that a reader can tell a
    missing value (``null`` without the flag) from a broken one. NumPy scalars become Python
    numbers."""
    if isinstance(obj, dict):
        out, flagged = {}, []
        for key, value in obj.items():
            if _is_non_finite(value):
                flagged.append(str(key))
                out[key] = None
            else:
                out[key] = strict_json(value)
        if flagged:
            out["non_finite"] = flagged
        return out
    if isinstance(obj, (list, tuple)):
        return [None if _is_non_finite(v) else strict_json(v) for v in obj]
    if isinstance(obj, numpy.generic):
        return strict_json(obj.item())
    return obj


def write_json(obj, path):
    """Write ``obj`` as indented, strict JSON (see :func:`strict_json`), atomically (temporary
    file + rename)."""
    text = json.dumps(strict_json(obj), indent=2, allow_nan=False)
    return _atomic_write_text(text + "\n", path)


def write_confusion(matrix, classes, out_dir, stem="confusion"):
    """Save ``stem.json`` (``{"classes", "matrix", "recall"}``) and ``stem.csv`` in ``out_dir``."""
    matrix = numpy.asarray(matrix)
    names = class_names(classes, len(matrix))
    totals = matrix.sum(axis=1)
    recall = [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]
    json_path = write_json({"rows": "true class", "columns": "predicted class", "classes": names,
                            "matrix": matrix.tolist(), "recall": recall},
                           os.path.join(out_dir, f"{stem}.json"))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["true \\ predicted"] + names)
    for name, row in zip(names, matrix.tolist()):
        writer.writerow([name] + row)
    csv_path = _atomic_write_text(buf.getvalue(), os.path.join(out_dir, f"{stem}.csv"))
    return json_path, csv_path
