"""Figures of filters, feature maps and attributions (skipped without matplotlib)."""
import builtins

import numpy as np
import pytest

import minicnn as mc
from minicnn import interpret, models, viz


def test_figures_of_filters_activations_and_attributions(tmp_path):
    pytest.importorskip("matplotlib")
    mc.manual_seed(0)
    model = models.get("fashion_cnn").eval()
    x = mc.randn(1, 1, 28, 28)
    acts = interpret.LayerActivation(model, model.features[2]).attribute(x)
    cam = interpret.LayerGradCam(model, model.features[6]).attribute(x, target=1, upsample_to_input=True)
    figures = [viz.filters_figure(model.features[0].weight), viz.activations_figure(acts),
               viz.attribution_figure(x, cam, title="Grad-CAM"),
               viz.filters_figure(mc.randn(4, 3, 5, 5))]                    # RGB filters in colour
    for i, fig in enumerate(figures):
        fig.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures[0].axes[0].images[0].get_array().shape == (2 * 4 + 1, 8 * 4 + 1, 3)   # 16 filters, 8 a row
    with pytest.raises(ValueError, match=r"expected an image \(C, H, W\) and a map of its \(H, W\)"):
        viz.attribution_figure(x, mc.randn(1, 1, 14, 14))
    with pytest.raises(ValueError, match="expected conv weights"):
        viz.filters_figure(mc.randn(3, 3))


def test_a_clear_error_without_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="need matplotlib: pip install 'minicnn\\[plot\\]'"):
        viz.filters_figure(np.zeros((2, 1, 3, 3)))
