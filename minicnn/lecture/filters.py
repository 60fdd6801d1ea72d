"""What the first layer learns: its filters and the feature maps they produce.

A small CNN (the ``relu-vs-tanh`` network with ReLU: 16 first-layer filters of 5x5) is trained
briefly on Fashion-MNIST; then

* its first-layer filters are drawn as images (each stretched to its own min..max). After two
  epochs they have moved far from their random start (the table's last column), but 5x5 filters
  on 28x28 grey images never look as clean as AlexNet's 11x11 colour filters: read them together
  with
* the feature maps of conv1 (after the ReLU) and conv2 for one test image, which show what each
  filter responds to: the top, bottom, left or right edges of the object, its outline, its bright
  surface; conv2 combines them into sparser, more specific responses.

Without matplotlib the filters and maps are saved as plain PNG grids, and the printed per-filter
statistics describe the filters in numbers: the DC part (|sum of weights| / sum of |weights|: ~0
for an edge detector, which ignores uniform brightness, near 1 for a brightness detector) and the
dominant orientation with its strength (coherence of the filter's gradient structure tensor: 0 for
no preferred orientation, 1 for a pure edge or bar).
"""
import numpy as np

from .. import backend
from ..data import DataLoader
from ..function import no_grad
from ..optim import SGD
from ..tensor import Tensor
from .common import figure, load_fashion, normalize_transform, tile, train
from .relu_vs_tanh import SmallCNN

FULL = dict(train_size=10000, test_size=500, epochs=2, batch_size=32, lr=0.02, widths=(16, 32), hidden=64)
QUICK = dict(train_size=256, test_size=64, epochs=1, batch_size=32, lr=0.02, widths=(8, 8), hidden=16)


def orientation(kernel):
    """Dominant orientation (degrees, 0 = vertical edge, i.e. intensity changing left-right) and
    coherence (0..1) of a 2-D filter, from its gradient structure tensor."""
    gy, gx = np.gradient(np.asarray(kernel, dtype=np.float64))
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    angle = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))
    trace = jxx + jyy
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / trace if trace > 0 else 0.0
    return float(angle), float(coherence)


def filter_stats(weights):
    """Per-filter statistics of first-layer weights ``(C_out, 1, k, k)``."""
    stats = []
    for i, w in enumerate(weights[:, 0]):
        angle, coherence = orientation(w)
        stats.append({"filter": i, "mean": float(w.mean()), "std": float(w.std()),
                      "norm": float(np.linalg.norm(w)), "dc_fraction": float(abs(w.sum()) / (np.abs(w).sum() + 1e-12)),
                      "orientation_deg": angle, "coherence": coherence})
    return stats


def run(ctx):
    from .. import rng
    cfg = ctx.config(QUICK, FULL)
    train_set, test_set, classes = load_fashion(ctx, cfg["train_size"], cfg["test_size"])
    transform = normalize_transform()
    rng.manual_seed(ctx.seed)
    model = SmallCNN("relu", cfg["widths"], cfg["hidden"])
    conv1, conv2 = model.features[0], model.features[3]
    initial = backend.to_numpy(conv1.weight.data).copy()
    ctx.print(f"training the relu-vs-tanh CNN (conv1: {conv1.weight.shape[0]} filters of "
              f"{conv1.weight.shape[2]}x{conv1.weight.shape[3]}) on {len(train_set)} images "
              f"({ctx.data_source}) for {cfg['epochs']} epoch(s)")
    loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True, transform=transform)
    test_loader = DataLoader(test_set, batch_size=250, transform=transform)
    opt = SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    history = train(ctx, model, loader, test_loader, epochs=cfg["epochs"], optimizer=opt, label="filters",
                    verbose=not ctx.quick)

    weights = backend.to_numpy(conv1.weight.data)
    stats = filter_stats(weights)
    change = [float(np.linalg.norm(weights[i] - initial[i]) / (np.linalg.norm(initial[i]) + 1e-12))
              for i in range(len(weights))]
    ctx.print(f"\ntest accuracy {100 * history[-1]['test_acc']:.2f}%; first-layer filters "
              f"(orientation: 0 = vertical edge, 90 = horizontal edge):")
    ctx.print(f"{'filter':>6} {'mean':>8} {'std':>7} {'norm':>6} {'|DC| share':>10} {'orient.':>8} "
              f"{'coherence':>9} {'moved from init':>15}")
    for s, c in zip(stats, change):
        ctx.print(f"{s['filter']:>6} {s['mean']:>8.3f} {s['std']:>7.3f} {s['norm']:>6.2f} {s['dc_fraction']:>10.2f} "
                  f"{s['orientation_deg']:>7.0f}\u00b0 {s['coherence']:>9.2f} {c:>14.0%}")

    # feature maps of one test image
    x, y = test_set.get_batch(np.arange(1))
    with no_grad():
        model.eval()
        xt = Tensor(backend.to_device(transform(x), ctx.device))
        maps1 = model.features[1](conv1(xt))                      # conv1 + ReLU
        maps2 = model.features[4](conv2(model.features[2](maps1)))  # pool, conv2 + ReLU
    maps1, maps2 = backend.to_numpy(maps1.data)[0], backend.to_numpy(maps2.data)[0]
    active1 = [float((m > 0).mean()) for m in maps1]
    ctx.print(f"\nfeature maps of one test image ({classes[int(y[0])]}): conv1 {maps1.shape}, "
              f"conv2 {maps2.shape}; fraction of active (non-zero) units per conv1 map: "
              + " ".join(f"{a:.2f}" for a in active1))

    _pictures(ctx, weights, x[0, 0], maps1, maps2, classes[int(y[0])])
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "test_acc": history[-1]["test_acc"], "train_acc": history[-1]["train_acc"],
            "filter_shape": list(weights.shape), "filters": stats, "relative_change_from_init": change,
            "image_label": classes[int(y[0])], "conv1_maps_shape": list(maps1.shape),
            "conv2_maps_shape": list(maps2.shape), "conv1_active_fraction": active1}


def _pictures(ctx, weights, image, maps1, maps2, label):
    fig = figure(12, 7)
    if fig is None:  # no matplotlib: plain PNG grids
        ctx.save_image(tile(weights[:, 0], ncols=8, pad=2, scale=8), "filters.png")
        ctx.save_image(tile(np.concatenate([image[None], maps1]), ncols=9, pad=2, scale=3), "feature_maps.png")
        return
    grid = fig.add_gridspec(3, 1, height_ratios=[1, 1, 1.3])
    top = grid[0].subgridspec(2, 8 * ((len(weights) + 15) // 16))
    for i, w in enumerate(weights[:, 0]):
        ax = fig.add_subplot(top[i // (top.ncols), i % top.ncols])
        ax.imshow(w, cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title("conv1 filters", fontsize=8, loc="left")
    middle = grid[1].subgridspec(2, 1 + (len(maps1) + 1) // 2)
    ax = fig.add_subplot(middle[:, 0])
    ax.imshow(image, cmap="gray")
    ax.set_title(label, fontsize=8)
    ax.axis("off")
    for i, m in enumerate(maps1):
        ax = fig.add_subplot(middle[i % 2, 1 + i // 2])
        ax.imshow(m, cmap="viridis")
        ax.axis("off")
        if i == 0:
            ax.set_title("conv1 maps (after ReLU)", fontsize=8, loc="left")
    n2 = min(len(maps2), 32)
    bottom = grid[2].subgridspec(2, (n2 + 1) // 2)
    for i in range(n2):
        ax = fig.add_subplot(bottom[i % 2, i // 2])
        ax.imshow(maps2[i], cmap="viridis")
        ax.axis("off")
        if i == 0:
            ax.set_title("conv2 maps", fontsize=8, loc="left")
    ctx.save_figure(fig, "filters.png")
