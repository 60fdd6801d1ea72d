"""``minicnn lecture zfnet``: the small ZFNet's shapes, the patch bookkeeping of its measurement,
and a quick run that prints and writes its numbers (synthetic data: seconds, no data set needed)."""
import argparse
import json

import numpy as np
import pytest

import minicnn as mc
from minicnn import interpret
from minicnn.lecture import add_lecture_arguments, run_lecture, zfnet


def test_small_zfnet_keeps_zfnets_layer_pattern_at_28x28():
    mc.manual_seed(0)
    model = zfnet.SmallZFNet(conv12=(4, 6), conv345=(8, 8, 5), hidden=12).eval()
    with mc.no_grad():
        sizes = []
        x = mc.randn(2, 1, 28, 28)
        for layer in model.features:
            x = layer(x)
            sizes.append(x.shape[2])
        assert model(mc.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sizes[0] == 28 and sizes[2] == 14 and sizes[6] == 7 and sizes[-1] == 3
    assert model.conv1.weight.shape == (4, 1, 7, 7) and model.conv5.weight.shape == (5, 8, 3, 3)


def test_patch_sums_follow_the_order_of_occlusions_windows():
    """The measured drop for "Grad-CAM's top patch" looks up Occlusion's per-patch drops by the
    index of a map's largest 7x7 patch: both must number the 16 patches the same way."""
    for k in (0, 3, 6, 13):
        mask = np.zeros((1, 1, 28, 28), dtype=np.float32)
        r, c = divmod(k, 4)
        mask[..., 7 * r:7 * r + 7, 7 * c:7 * c + 7] = 1
        score = lambda x: (x * mc.tensor(mask)).sum(axis=(1, 2, 3)).reshape(-1, 1)    # noqa: E731
        drop = interpret.Occlusion(score).attribute(mc.ones(1, 1, 28, 28), (1, 7, 7), strides=(1, 7, 7),
                                                    target=0).numpy()
        per_patch = drop[:, 0, ::7, ::7].reshape(1, -1)
        assert per_patch.argmax() == k and per_patch.max() == 49
        assert zfnet._patch_sums(mask[:, 0]).argmax() == k


def test_quick_run_prints_and_writes_its_numbers(tmp_path, capsys):
    args = add_lecture_arguments(argparse.ArgumentParser()).parse_args(
        ["zfnet", "--quick", "--synthetic", "--out", str(tmp_path)])
    assert run_lecture(args) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "zfnet.json").read_text())
    assert result["lecture"] == "zfnet" and result["data"] == "synthetic"
    assert f"test accuracy {100 * result['test_acc']:.2f}%" in out
    drops = result["drop_of_p_true"]
    for name, value in drops.items():
        assert f"{name:<38} {value:>15.3f}" in out
    best = drops["occlusion (the largest drop)"]                 # the largest drop, by definition
    assert all(best >= v - 1e-12 for v in drops.values())
    assert 0 <= result["p_true_uncovered"] <= 1 and result["measured_images"] == zfnet.QUICK["measured_images"]
    for name in result["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("without matplotlib only the plain PNG grids are written")
    assert result["figures"] == ["filters.png", "activations.png", "occlusion.png", "gradcam.png"]


def test_without_matplotlib_plain_png_grids_are_written(tmp_path, monkeypatch):
    from minicnn.lecture.common import Context
    monkeypatch.setattr(zfnet, "figure", lambda *size: None)
    ctx = Context("zfnet", tmp_path, quick=True)
    images = mc.randn(3, 1, 28, 28)
    zfnet._pictures(ctx, np.random.default_rng(0).standard_normal((8, 1, 7, 7)), None, images,
                    np.zeros((3, 28, 28)), None, ["a", "b", "c"], "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png", "occlusion.png"]
    assert all((tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in ("filters.png", "occlusion.png"))
