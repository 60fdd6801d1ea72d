"""What every lecture experiment shares: its context (output folder, quick mode, device, log),
the data (Fashion-MNIST, or a synthetic stand-in in quick mode), training through
:class:`minicnn.train.Trainer`, and writing numbers (JSON) and pictures (PNG).

Pictures are an extra: with matplotlib installed (``pip install 'minicnn[plot]'``) they are drawn
with the Agg canvas (never a window, never a change of the caller's pyplot backend); without it
the experiments print their tables and write their JSON all the same. Image grids (filters,
augmented images) are written as plain PNG files even without matplotlib, by :func:`write_png`.
"""
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np

#: Per-channel mean and standard deviation of Fashion-MNIST's training pixels (in [0, 1]).
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


class Context:
    """One run of one experiment: where its files go and how big it may be.

    ``quick``: seconds, for CI (tiny subsets, one epoch, small nets). ``epochs``: the user's
    ``--epochs`` (None: the experiment's own default). ``print`` writes to stdout (flushed).
    """

    def __init__(self, name, out_dir, quick=False, epochs=None, device="cpu", seed=0,
                 subset=None, synthetic=False, progress=None, stream=None):
        self.name = name
        self.out_dir = os.fspath(out_dir)
        self.quick = bool(quick)
        self.epochs = epochs
        self.device = device or "cpu"
        self.seed = int(seed)
        self.subset = subset
        self.synthetic = bool(synthetic)
        self.stream = stream or sys.stdout
        if progress is None:
            try:
                progress = (not self.quick) and sys.stderr.isatty()
            except Exception:
                progress = False
        self.progress = progress
        self.figures = []
        self.data_source = None
        self.start = time.perf_counter()
        os.makedirs(self.out_dir, exist_ok=True)

    def print(self, *args, **kwargs):
        print(*args, file=self.stream, flush=True, **kwargs)

    def path(self, filename):
        return os.path.join(self.out_dir, filename)

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full``."""
        return quick if self.quick else full

    def config(self, quick, full, epochs="epochs", size="train_size"):
        """A copy of the quick or full configuration dict, with ``--epochs`` and ``--subset``
        (when given) replacing its ``epochs`` and ``size`` entries."""
        cfg = dict(self.pick(quick, full))
        cfg[epochs] = self.epochs_or(cfg[epochs])
        cfg[size] = self.subset_or(cfg[size])
        return cfg

    def epochs_or(self, default):
        return int(self.epochs) if self.epochs is not None else int(default)

    def subset_or(self, default):
        return int(self.subset) if self.subset is not None else int(default)

    def seconds(self):
        return time.perf_counter() - self.start

    # -- output ------------------------------------------------------------------------------
    def write_json(self, result, filename=None):
        """Write ``result`` (plus the run's facts) to ``<out>/<name>.json``; return the path."""
        result = dict(result)
        result.setdefault("lecture", self.name)
        result.setdefault("quick", self.quick)
        if self.data_source is not None:
            result.setdefault("data", self.data_source)
        result["figures"] = [os.path.basename(f) for f in self.figures]
        result["seconds"] = round(self.seconds(), 2)
        path = self.path(filename or f"{self.name.replace('-', '_')}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(to_jsonable(result), f, indent=2)
            f.write("\n")
        return path

    def save_figure(self, fig, filename):
        """Save a matplotlib figure from :func:`figure` as PNG in the output folder."""
        if fig is None:
            return None
        path = self.path(filename)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        self.figures.append(path)
        self.print(f"figure: {path}")
        return path

    def save_image(self, image, filename):
        """Save a ``uint8`` (H, W) or (H, W, 3) image with :func:`write_png`."""
        path = self.path(filename)
        write_png(path, image)
        self.figures.append(path)
        self.print(f"image: {path}")
        return path


def to_jsonable(value):
    """NumPy scalars/arrays and tuples -> plain JSON types (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- pictures ------------------------------------------------------------------------------------
def figure(width, height):
    """A matplotlib ``Figure`` on the Agg canvas, or ``None`` without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except Exception:
        return None
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def write_png(path, image):
    """Write a ``uint8`` gray (H, W) or RGB (H, W, 3) image as PNG, with nothing but zlib."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        color_type, height, width = 0, *image.shape
    elif image.ndim == 3 and image.shape[2] == 3:
        color_type, height, width = 2, *image.shape[:2]
    else:
        raise ValueError(f"write_png: expected (H, W) or (H, W, 3) uint8, got {image.shape}")
    rows = image.reshape(height, -1)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(height))  # filter 0 per row

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                + chunk(b"IEND", b""))
    return path


def tile(images, ncols, pad=1, scale=1, normalize="each", background=255):
    """Arrange ``images`` (N, H, W) into one uint8 grid of ``ncols`` columns.

    ``normalize="each"`` stretches every image to 0..255 on its own (filters); ``"none"`` expects
    values in [0, 1] (pictures). ``scale`` repeats each pixel (small filters become visible).
    """
    images = np.asarray(images, dtype=np.float64)
    n, h, w = images.shape
    if normalize == "each":
        lo = images.reshape(n, -1).min(axis=1)[:, None, None]
        hi = images.reshape(n, -1).max(axis=1)[:, None, None]
        images = (images - lo) / np.where(hi > lo, hi - lo, 1.0)
    images = np.clip(images, 0, 1)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    nrows = int(math.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), background, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = np.round(images[i] * 255).astype(np.uint8)
    return grid


# -- data --------------------------------------------------------------------------------------------
def synthetic_images(n, seed=0, num_classes=10, size=28):
    """A small learnable stand-in for Fashion-MNIST: ``uint8`` (n, 1, size, size) and labels.

    Each class is a fixed random smooth pattern, not symmetric left-right; an example is its
    class pattern shifted by up to two pixels, scaled in brightness and overlaid with noise.
    """
    rng = np.random.default_rng(1234)  # the class patterns are the same in every split
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    templates = []
    for _ in range(num_classes):
        field = np.zeros((size, size))
        for _ in range(3):  # a few oriented blobs/bars per class
            cx, cy = rng.uniform(0.2, 0.8, size=2)
            sx, sy = rng.uniform(0.05, 0.3, size=2)
            field += np.exp(-((xx - cx) ** 2 / (2 * sx ** 2) + (yy - cy) ** 2 / (2 * sy ** 2)))
        templates.append(field / field.max())
    templates = np.stack(templates)
    gen = np.random.default_rng(seed)
    labels = gen.integers(0, num_classes, size=n)
    images = np.empty((n, size, size))
    shifts = gen.integers(-2, 3, size=(n, 2))
    for i in range(n):
        images[i] = np.roll(templates[labels[i]], tuple(shifts[i]), axis=(0, 1))
    images *= gen.uniform(0.6, 1.0, size=(n, 1, 1))
    images += gen.normal(0, 0.15, size=images.shape)
    images = np.clip(images, 0, 1)
    return (images[:, None] * 255).round().astype(np.uint8), labels.astype(np.int64)


SYNTHETIC_CLASSES = [f"pattern {k}" for k in range(10)]


def load_fashion(ctx, train_size=None, test_size=None):
    """``(train_set, test_set, classes)``: Fashion-MNIST, or a random ``train_size``/``test_size``
    of it (the same examples for a given seed).

    When the files are absent, quick mode (and ``--synthetic``) falls back to a synthetic data set
    of the same shape, saying so; a full run raises :class:`minicnn.data.DatasetNotFoundError`.
    """
    from ..data import ArrayDataset, DatasetNotFoundError, FashionMNIST
    if not ctx.synthetic:
        try:
            train = FashionMNIST(train=True, download=not ctx.quick)
            test = FashionMNIST(train=False, download=not ctx.quick)
            ctx.data_source = "fashion-mnist"
            return (random_subset(train, train_size, ctx.seed), random_subset(test, test_size, ctx.seed + 1),
                    list(FashionMNIST.classes))
        except DatasetNotFoundError as err:
            if not ctx.quick:
                raise
            first = str(err).splitlines()[0]
            ctx.print(f"note: {first}\nnote: quick mode falls back to a small synthetic data set "
                      f"(10 classes of noisy shifted patterns), so the numbers below are not "
                      f"Fashion-MNIST's.")
    n_train = train_size or 2000
    n_test = test_size or 500
    x, y = synthetic_images(n_train, seed=ctx.seed)
    xt, yt = synthetic_images(n_test, seed=ctx.seed + 1)
    ctx.data_source = "synthetic"
    return (ArrayDataset(x, y, classes=SYNTHETIC_CLASSES), ArrayDataset(xt, yt, classes=SYNTHETIC_CLASSES),
            list(SYNTHETIC_CLASSES))


def random_subset(dataset, n, seed):
    """``n`` examples of ``dataset`` drawn at random (in their original order), or all of it."""
    from ..data import Subset
    if n is None or n >= len(dataset):
        return dataset
    indices = np.sort(np.random.default_rng(seed).choice(len(dataset), size=int(n), replace=False))
    return Subset(dataset, indices)


def per_class_subset(dataset, per_class, seed):
    """``per_class`` random examples of each label (a small labelled budget)."""
    from ..data import Subset
    targets = np.asarray(dataset.targets)
    gen = np.random.default_rng(seed)
    picks = [gen.choice(np.flatnonzero(targets == c), size=min(per_class, int((targets == c).sum())),
                        replace=False) for c in np.unique(targets)]
    return Subset(dataset, np.sort(np.concatenate(picks)))


def normalize_transform(extra=()):
    """The batch transform of every experiment: ``extra`` steps (augmentation), then Normalize."""
    from ..data.transforms import Compose, Normalize
    return Compose(list(extra) + [Normalize([FASHION_MEAN], [FASHION_STD])])


class StepsLoader:
    """``steps`` batches per pass, drawn from an endless shuffled stream of ``loader``'s batches.

    :class:`~minicnn.train.Trainer` records one line per pass of its training loader; giving it
    this loader instead of a whole epoch records (and evaluates) every ``steps`` steps, which is
    what a curve *versus iterations* needs. The underlying epochs continue across passes; the
    progress lines call each pass a "round" (``round 3/6``), not an epoch.
    """

    def __init__(self, loader, steps):
        self.loader, self.steps = loader, int(steps)
        self._it = None

    def __len__(self):
        return self.steps

    def _next(self):
        if self._it is not None:
            try:
                return next(self._it)
            except StopIteration:
                pass
        self._it = iter(self.loader)
        return next(self._it)

    def __iter__(self):
        for _ in range(self.steps):
            yield self._next()


def train(ctx, model, train_loader, test_loader=None, epochs=1, lr=0.05, momentum=0.9,
          weight_decay=0.0, nesterov=False, optimizer=None, scheduler=None,
          scheduler_interval="epoch", label=None, verbose=True):
    """Train with :class:`minicnn.train.Trainer` (SGD unless ``optimizer`` is given) and return
    its history: one record per pass of ``train_loader`` (``train_acc``, ``test_acc`` ...)."""
    from ..optim import SGD
    from ..train import Trainer
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    prefix = f"[{label}] " if label else ""
    # a StepsLoader pass is a "round" of a few steps, not an epoch: say so in the progress lines
    unit = "round" if isinstance(train_loader, StepsLoader) else "epoch"
    trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler=scheduler,
                      scheduler_interval=scheduler_interval, epochs=epochs, device=ctx.device,
                      progress=ctx.progress, verbose=verbose, plots=False,
                      log=lambda msg: ctx.print(prefix + msg), epoch_label=unit)
    trainer.finish = lambda: None  # no confusion matrix per run: the lecture prints its own table
    return trainer.fit()


def first_reaching(values, target, below=True):
    """Index of the first value ``<= target`` (``below``) or ``>= target``; None if never."""
    for i, v in enumerate(values):
        if v is not None and (v <= target if below else v >= target):
            return i
    return None
