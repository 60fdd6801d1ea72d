"""make_grid: torchvision's tiling, padding and normalisation, on every test device."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, viz


def test_tiles_pads_and_turns_gray_into_rgb(device):
    images = np.arange(3 * 4, dtype=np.float32).reshape(3, 1, 2, 2)
    grid = viz.make_grid(mc.Tensor(backend.to_device(images, device)), nrow=2, padding=1, pad_value=-1)
    assert grid.shape == (3, 2 * 3 + 1, 2 * 3 + 1) and grid.device == device
    want = np.full((7, 7), -1.0, np.float32)
    want[1:3, 1:3], want[1:3, 4:6], want[4:6, 1:3] = images[0, 0], images[1, 0], images[2, 0]
    for channel in grid.numpy():
        np.testing.assert_array_equal(channel, want)


def test_normalize_value_range_and_scale_each():
    images = np.stack([np.full((1, 2, 2), 2.0), np.array([[[0.0, 4.0], [8.0, 4.0]]])]).astype(np.float32)
    whole = viz.make_grid(mc.tensor(images), padding=0, normalize=True).numpy()
    np.testing.assert_allclose(whole[0], [[0.25, 0.25, 0.0, 0.5], [0.25, 0.25, 1.0, 0.5]])
    each = viz.make_grid(mc.tensor(images), padding=0, normalize=True, scale_each=True).numpy()
    np.testing.assert_allclose(each[0], [[0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.5]])
    clipped = viz.make_grid(mc.tensor(images), padding=0, normalize=True, value_range=(0, 4)).numpy()
    np.testing.assert_allclose(clipped[0], [[0.5, 0.5, 0.0, 1.0], [0.5, 0.5, 1.0, 1.0]])
    assert clipped.dtype == np.float32
    assert viz.make_grid(mc.tensor(images[:1])).shape == (3, 2, 2)      # one image: no padding
    assert viz.make_grid([mc.tensor(images[0]), mc.tensor(images[1])], padding=0).shape == (3, 2, 4)
    with pytest.raises(ValueError, match=r"make_grid: expected images \(B, C, H, W\).*got shape \(1, 1, 1, 2, 2\)"):
        viz.make_grid(mc.tensor(images[None, :1]))
