"""Pictures of a run, drawn only when matplotlib is installed (``pip install 'minicnn[plot]'``).

Uses matplotlib's object-oriented API with the Agg canvas directly, so it never opens a window
and never changes the pyplot backend of the program that called it. Every function returns the
path written, or ``None`` when matplotlib is missing (silently: pictures are an extra).
"""
import os

import numpy


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except Exception:  # ImportError or a broken installation
        return None
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_curves(history, path, title=None):
    """Loss and accuracy per epoch: training dashed, test solid (as in the lecture's plots)."""
    fig = _figure(10, 4)
    if fig is None or not history:
        return None
    epochs = [r["epoch"] for r in history]

    def series(key, scale=1.0):
        return [None if r.get(key) is None else r[key] * scale for r in history]

    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, series("train_loss"), "--", color="C0", marker="o", ms=3, label="train")
    ax_acc.plot(epochs, series("train_acc", 100), "--", color="C0", marker="o", ms=3, label="train")
    if any(r.get("test_loss") is not None for r in history):
        ax_loss.plot(epochs, series("test_loss"), "-", color="C1", marker="o", ms=3, label="test")
        ax_acc.plot(epochs, series("test_acc", 100), "-", color="C1", marker="o", ms=3, label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="top-1 accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    return path


def plot_confusion(matrix, classes, path, title="confusion matrix"):
    """The confusion matrix as an image, counts written in the cells."""
    matrix = numpy.asarray(matrix)
    c = len(matrix)
    fig = _figure(1.0 + 0.6 * c, 1.0 + 0.55 * c)
    if fig is None:
        return None
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    names = [str(n) for n in (classes if classes is not None and len(classes) == c else range(c))]
    ax.set_xticks(range(c), names, rotation=45, ha="right")
    ax.set_yticks(range(c), names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if c <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(c):
            for j in range(c):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    return path
