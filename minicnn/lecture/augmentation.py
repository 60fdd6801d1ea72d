"""Data augmentation: what the transforms do to an image, and what they do for accuracy.

1. A grid of Fashion-MNIST images: the original, a horizontal flip, a random crop (after zero
   padding: the image shifts by a few pixels), a colour jitter (brightness and contrast: the
   images are grey, so saturation has nothing to change) and all of them together -- the
   transforms of :mod:`minicnn.data.transforms` that ``minicnn train --augment`` uses.
2. ``models.fashion_cnn`` trained on 1,000 images with and without augmentation (flip + crop,
   as ``minicnn train --augment flip,crop``) for the same number of epochs. Dropout is switched
   off in both runs so that augmentation is the regulariser under study (with weight decay):
   without it the network memorises its 1,000 images (100% training accuracy); augmentation shows
   it new variants of them in every epoch, which narrows the gap between training and test
   accuracy and raises the test accuracy a little.
"""
import numpy as np

from .. import models
from ..data import DataLoader
from ..data.transforms import ColorJitter, Compose, RandomCrop, RandomHorizontalFlip, parse_augment
from ..optim import SGD
from ..optim.lr_scheduler import CosineAnnealingLR
from .common import figure, load_fashion, normalize_transform, tile, train

FULL = dict(train_size=1000, test_size=2000, epochs=40, batch_size=50, lr=0.05, cfg=None, hidden=128,
            dropout=(0.0, 0.0), augment="flip,crop")
QUICK = dict(train_size=128, test_size=128, epochs=1, batch_size=32, lr=0.05, cfg=[4, "M", 8, "M"], hidden=16,
             dropout=(0.0, 0.0), augment="flip,crop")
N_SHOW = 6


def augmentation_grid(images):
    """Rows of augmented copies of ``images`` (N, 1, H, W) in [0, 1]: (label, (N, H, W)) pairs."""
    size = images.shape[-1]
    rows = [("original", images),
            ("horizontal flip", RandomHorizontalFlip(p=1.0)(images)),
            ("random crop (pad 4)", RandomCrop(size, padding=4)(images)),
            ("colour jitter", ColorJitter(brightness=0.5, contrast=0.5)(images)),
            ("all three", Compose([RandomCrop(size, padding=4), RandomHorizontalFlip(p=0.5),
                                   ColorJitter(brightness=0.5, contrast=0.5)])(images))]
    return [(label, np.asarray(x)[:, 0]) for label, x in rows]


def run(ctx):
    from .. import rng
    cfg = ctx.config(QUICK, FULL)
    train_set, test_set, classes = load_fashion(ctx, cfg["train_size"], cfg["test_size"])

    # 1. the picture
    x, y = train_set.get_batch(np.arange(min(N_SHOW, len(train_set))))
    rows = augmentation_grid(x)
    ctx.print("augmented copies of the first training images, one row per transform:")
    for label, imgs in rows:
        ctx.print(f"  {label:<20} mean {imgs.mean():.3f}  std {imgs.std():.3f}  "
                  f"changed pixels {100 * np.mean(np.abs(imgs - rows[0][1]) > 1e-6):5.1f}%")
    _picture(ctx, rows, [classes[int(c)] for c in y])

    # 2. accuracy with and without augmentation
    ctx.print(f"\ntraining models.fashion_cnn on {len(train_set)} images ({ctx.data_source}) for "
              f"{cfg['epochs']} epochs (dropout {cfg['dropout']}, SGD momentum 0.9, lr {cfg['lr']} cosine to 0, "
              f"weight decay 5e-4), without and with "
              f"'{cfg['augment']}'; test on {len(test_set)}")
    test_loader = DataLoader(test_set, batch_size=250, transform=normalize_transform())
    runs = {}
    for label, spec in (("none", "none"), ("augmented", cfg["augment"])):
        rng.manual_seed(ctx.seed)
        model = models.fashion_cnn(cfg=cfg["cfg"], hidden=cfg["hidden"], dropout=cfg["dropout"])
        steps = parse_augment(spec, 28).transforms
        loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True,
                            transform=normalize_transform(steps))
        opt = SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=5e-4)
        sched = CosineAnnealingLR(opt, T_max=cfg["epochs"] * len(loader))
        history = train(ctx, model, loader, test_loader, epochs=cfg["epochs"], optimizer=opt, scheduler=sched,
                        scheduler_interval="step", label=label, verbose=not ctx.quick)
        last = history[-1]
        runs[label] = {"augment": spec, "train_acc": last["train_acc"], "test_acc": last["test_acc"],
                       "best_test_acc": max(r["test_acc"] for r in history),
                       "curve": [{"epoch": r["epoch"], "train_acc": r["train_acc"], "test_acc": r["test_acc"]}
                                 for r in history]}
    ctx.print(f"\n{'augmentation':<14} {'train acc':>10} {'test acc':>9} {'gap':>7}")
    for label, r in runs.items():
        ctx.print(f"{r['augment']:<14} {100 * r['train_acc']:>9.2f}% {100 * r['test_acc']:>8.2f}% "
                  f"{100 * (r['train_acc'] - r['test_acc']):>6.2f}%")
    gain = runs["augmented"]["test_acc"] - runs["none"]["test_acc"]
    ctx.print(f"test accuracy {'gain' if gain >= 0 else 'change'} from augmentation: {100 * gain:+.2f} points")
    _plot_curves(ctx, runs)
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "grid_rows": [label for label, _ in rows], "runs": runs, "test_acc_gain": gain}


def _picture(ctx, rows, names):
    fig = figure(1.4 * len(names) + 1.6, 1.4 * len(rows))
    if fig is None:  # no matplotlib: the bare grid, rows in the order printed above
        grid = tile(np.concatenate([imgs for _, imgs in rows]), ncols=len(names), pad=2, scale=3,
                    normalize="none")
        ctx.save_image(grid, "augmentation.png")
        return
    axes = fig.subplots(len(rows), len(names), squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(len(names)):
            ax = axes[r][c]
            ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(names[c], fontsize=8)
    ctx.save_figure(fig, "augmentation.png")


def _plot_curves(ctx, runs):
    fig = figure(6, 4)
    if fig is None:
        return
    ax = fig.subplots()
    for color, (label, r) in zip(("C0", "C2"), runs.items()):
        epochs = [c["epoch"] for c in r["curve"]]
        ax.plot(epochs, [100 * c["train_acc"] for c in r["curve"]], "--", color=color, label=f"{label} train")
        ax.plot(epochs, [100 * c["test_acc"] for c in r["curve"]], "-", color=color, label=f"{label} test")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="with and without augmentation")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ctx.save_figure(fig, "augmentation_accuracy.png")
