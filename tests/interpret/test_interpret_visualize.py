"""Gradient ascent on the image: fooling images and class visualisation."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import interpret, nn
from minicnn.interpret.visualize import gaussian_blur


def small_net(device="cpu"):
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    return model.double().to(device).eval()


def predict(model, x):
    with mc.no_grad():
        return model(x).numpy()[0]


def test_fooling_image_is_classified_as_the_target_and_stays_close(device, to_device):
    model = small_net(device)
    image = to_device(np.random.default_rng(0).standard_normal((1, 1, 8, 8)))
    before = image.numpy().copy()
    target = (int(predict(model, image).argmax()) + 1) % 5
    with mc.no_grad():
        fooling = interpret.make_fooling_image(model, image, target, learning_rate=0.1)
    assert int(predict(model, fooling).argmax()) == target and fooling.device == device
    assert 0 < np.linalg.norm(fooling.numpy() - before) < 0.5 * np.linalg.norm(before)
    np.testing.assert_array_equal(image.numpy(), before)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(RuntimeError, match="still does not predict class"):
        interpret.make_fooling_image(model, image, target, learning_rate=1e-6, max_iterations=2)
    with pytest.raises(ValueError, match=r"target 9 is outside \[0, 5\)"):
        interpret.make_fooling_image(model, image, 9)


def test_class_visualization_raises_the_target_score_and_repeats_with_the_seed():
    model = small_net()
    mc.manual_seed(1)
    start = predict(model, mc.randn(1, 1, 8, 8).double())[3]
    images = []
    for _ in range(2):
        mc.manual_seed(1)
        images.append(interpret.class_visualization(model, 3, (1, 8, 8), learning_rate=1.0, num_iterations=50,
                                                    blur_every=10, max_jitter=1, value_range=(-2, 2)).numpy())
    np.testing.assert_array_equal(images[0], images[1])
    assert images[0].shape == (1, 1, 8, 8) and images[0].dtype == np.float64
    assert np.abs(images[0]).max() <= 2
    scores = predict(model, mc.tensor(images[0]))
    assert scores[3] > start + 0.9 and scores.argmax() == 3


def test_gaussian_blur_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    a = np.random.default_rng(0).standard_normal((1, 2, 7, 9))
    want = ndimage.gaussian_filter1d(ndimage.gaussian_filter1d(a, 0.5, axis=2), 0.5, axis=3)
    np.testing.assert_allclose(gaussian_blur(a, 0.5), want, atol=1e-12)
