"""Counting what a classifier gets right: top-k hits, the confusion matrix, and writing them out.

All counting runs on the logits' device with its array module; only a few integers (and the
predicted labels, for the confusion matrix) come back to the host.
"""
import csv
import io
import json
import os

import numpy

from .. import backend
from ..serialization import atomic_write


def topk_correct(logits, targets, ks=(1, 5)):
    """``{k: number of rows whose true class is among the k largest logits}``.

    ``logits`` ``(N, C)`` and ``targets`` ``(N,)`` are backend arrays (or Tensors) on one device;
    ``k`` larger than ``C`` counts every row.
    """
    from ..tensor import Tensor
    logits = logits.data if isinstance(logits, Tensor) else logits
    targets = targets.data if isinstance(targets, Tensor) else targets
    xp = backend.get_array_module(logits)
    n, c = logits.shape
    out = {}
    top1 = logits.argmax(axis=1)
    order = None
    for k in ks:
        if k <= 1:
            out[k] = int((top1 == targets).sum())
        elif k >= c:
            out[k] = int(n)
        else:
            if order is None:
                order = xp.argsort(logits, axis=1)[:, ::-1][:, :max(ks)]
            out[k] = int((order[:, :k] == targets[:, None]).any(axis=1).sum())
    return out


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


def write_json(obj, path):
    """Write ``obj`` as indented JSON, atomically (temporary file + rename)."""
    return _atomic_write_text(json.dumps(obj, indent=2) + "\n", path)


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
