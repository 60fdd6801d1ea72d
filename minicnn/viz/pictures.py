"""Figures of what a network sees: its filters, a layer's feature maps, an attribution over the
image, several examples side by side. They need matplotlib (``pip install 'minicnn[plot]'``); without it each raises an
``ImportError`` that says so. Each returns a matplotlib ``Figure`` drawn on the Agg canvas (no
window, the program's pyplot backend untouched): ``fig.savefig("filters.png")``; Jupyter shows it.
"""
import numpy

from ..backend import to_numpy
from ..tensor import Tensor
from .grid import make_grid


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("minicnn.viz figures need matplotlib: pip install 'minicnn[plot]'") from error
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _host(x):
    return numpy.asarray(to_numpy(x.data if isinstance(x, Tensor) else x))


def _grid_figure(images, nrow, title):
    """A batch ``(B, C, h, w)``, each image scaled to [0, 1], tiled and shown."""
    grid = _host(make_grid(Tensor(images), nrow=nrow, padding=1, normalize=True, scale_each=True, pad_value=1.0))
    rows, cols = grid.shape[1:]
    inch = min(1 / 8, 11 / cols, 11 / rows)             # per pixel: at most 11 inches either way
    fig = _figure(0.4 + cols * inch, (0.8 if title else 0.4) + rows * inch)
    ax = fig.subplots()
    ax.imshow(grid.transpose(1, 2, 0), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def filters_figure(weight, nrow=8, title="filters"):
    """A conv layer's filters ``(C_out, C_in, k, k)``, one small image each, each scaled to [0, 1]
    (what ZFNet's Fig. 2 shows of the first layer): in colour for 3 input channels, else the
    first input channel in gray."""
    w = _host(weight)
    if w.ndim != 4:
        raise ValueError(f"filters_figure: expected conv weights (C_out, C_in, k, k), got shape {w.shape}")
    return _grid_figure(w if w.shape[1] == 3 else w[:, :1], nrow, title)


def activations_figure(activations, nrow=8, title="activations"):
    """One example's feature maps (``(C, h, w)``, or the first example of ``(N, C, h, w)``, e.g. from
    ``LayerActivation``), one gray image per channel, each scaled to [0, 1]."""
    a = _host(activations)
    a = a[0] if a.ndim == 4 else a
    if a.ndim != 3:
        raise ValueError(f"activations_figure: expected (C, h, w) or (N, C, h, w), got shape {a.shape}")
    return _grid_figure(a[:, None], nrow, title)


def attribution_figure(image, attribution, cmap="jet", alpha=0.5, title=None):
    """The image, and an attribution map (``(H, W)``, ``(C, H, W)`` summed over channels, or the
    first example of a batch) as a heat map over it, scaled to [0, 1]."""
    img, attr = _host(image), _host(attribution)
    img = img[0] if img.ndim == 4 else img
    attr = attr[0] if attr.ndim == 4 else attr
    attr = attr.sum(axis=0) if attr.ndim == 3 else attr
    if img.ndim != 3 or attr.shape != img.shape[1:]:
        raise ValueError(f"attribution_figure: expected an image (C, H, W) and a map of its (H, W), got "
                         f"shapes {img.shape} and {attr.shape}")
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
    attr = (attr - attr.min()) / max(float(attr.max() - attr.min()), 1e-12)
    shown = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    fig = _figure(6, 3.2)
    left, right = fig.subplots(1, 2)
    left.imshow(shown, cmap="gray")
    right.imshow(shown, cmap="gray")
    right.imshow(attr, cmap=cmap, alpha=alpha)
    for ax in (left, right):
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def _unit(a):
    """``a`` shifted and scaled to [0, 1] (a constant array becomes 0; NaN, e.g. padding, stays
    NaN and is drawn blank)."""
    low, high = numpy.nanmin(a), numpy.nanmax(a)
    return (a - low) / max(float(high - low), 1e-12)


def examples_figure(images, maps, titles=None, overlay=True, cmap="jet", alpha=0.5, title=None):
    """Several examples side by side, one column each: the image on top (with its title), its map
    below -- an attribution ``(H, W)`` (or ``(C, H, W)``, summed over channels) drawn over the
    image (``overlay=True``), or any picture of its own, e.g. a grid of feature maps
    (``overlay=False``). Images and maps are each scaled to [0, 1]; ``images`` is ``(N, C, H, W)``."""
    imgs = _host(images)
    maps = [_host(m) for m in maps]
    maps = [m.sum(axis=0) if m.ndim == 3 else m for m in maps]
    if imgs.ndim != 4 or len(maps) != len(imgs) or titles is not None and len(titles) != len(imgs):
        raise ValueError(f"examples_figure: expected images (N, C, H, W) with one map (and title) "
                         f"each, got shape {imgs.shape}, {len(maps)} maps, "
                         f"{'no' if titles is None else len(titles)} titles")
    if overlay and any(m.shape != imgs.shape[2:] for m in maps):
        raise ValueError(f"examples_figure: each map must be (H, W) = {imgs.shape[2:]} to be drawn "
                         f"over its image, got {[m.shape for m in maps]}")
    n = len(imgs)
    fig = _figure(1.0 + 1.9 * n, 4.4)
    axes = fig.subplots(2, n, squeeze=False)
    for k in range(n):
        img = _unit(imgs[k])
        shown = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        axes[0, k].imshow(shown, cmap="gray")
        if titles is not None:
            axes[0, k].set_title(titles[k], fontsize=8)
        if overlay:
            axes[1, k].imshow(shown, cmap="gray")
            axes[1, k].imshow(_unit(maps[k]), cmap=cmap, alpha=alpha)
        else:
            axes[1, k].imshow(_unit(maps[k]), cmap="viridis", interpolation="nearest")
        for ax in axes[:, k]:
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
