"""Assignment 5: your methods on the trained network, and the numbers the written questions ask for.

    python explore.py            # about 20 s (plus 15 s of training the first time): prints the
                                 # numbers, saves maps.png, fooling.png, filters.png, classes.png

The notebook calls the same functions. Everything uses *your* ``visualize.py``.
"""
import argparse
import time

import numpy as np

import minicnn as mc
import visualize
from model import CLASSES
from train import load_fashion, load_or_train


def one_per_class(seed=0):
    """The first test image of each class (in a fixed shuffle): 10 images, labels 0-9."""
    x, y = load_fashion(False, 2000, seed)
    first = [int(np.flatnonzero(y == c)[0]) for c in range(10)]
    return x[first], y[first]


def upsample(cam, size):
    """A coarse map (N, h, w) repeated to (N, size, size) (h divides size)."""
    factor = size // cam.shape[-1]
    return np.repeat(np.repeat(cam, factor, axis=1), factor, axis=2)


def all_maps(model, x, target):
    """Saliency, occlusion (4x4 window, stride 2) and Grad-CAM at the second ReLU, each (N, 28, 28),
    and the seconds each took."""
    maps, seconds = {}, {}
    for name, method in [("saliency", lambda: visualize.saliency(model, x, target)),
                         ("occlusion", lambda: visualize.occlusion(model, x, target, window=4, stride=2)),
                         ("grad-cam", lambda: upsample(visualize.grad_cam(model, model.features[4], x, target),
                                                       x.shape[-1]))]:
        start = time.perf_counter()
        maps[name] = method()
        seconds[name] = time.perf_counter() - start
    return maps, seconds


def on_the_garment(heat, x, threshold=0.1):
    """The share of each map's positive mass that lies on the garment (pixels brighter than
    ``threshold``), averaged over the images; and the garment's share of the image's area."""
    garment = x[:, 0] > threshold
    positive = np.maximum(heat, 0)
    share = (positive * garment).sum(axis=(1, 2)) / np.maximum(positive.sum(axis=(1, 2)), 1e-12)
    return float(share.mean()), float(garment.mean())


def agreement(a, b):
    """The correlation of two maps, image by image, averaged."""
    return float(np.mean([np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(a, b)]))


def fool_all(model, x, y, learning_rate=0.1):
    """Fool each image into the next class, (y + 1) % 10: the steps, and the largest pixel change."""
    steps, changes = [], []
    for image, label in zip(x, y):
        fooled, taken = visualize.fooling_image(model, image[None], int((label + 1) % 10),
                                                learning_rate=learning_rate, max_iterations=500)
        steps.append(taken)
        changes.append(float(np.abs(fooled - image[None]).max()))
    return np.array(steps), np.array(changes)


def class_images(model, classes, num_iterations=100, seed=0):
    """One class visualisation per class, and the softmax probability the model gives it."""
    images, probabilities = [], []
    for c in classes:
        image = visualize.class_visualization(model, c, (1, 28, 28), np.random.default_rng(seed + c),
                                              learning_rate=1.0, num_iterations=num_iterations,
                                              blur_every=10, max_jitter=2)
        with mc.no_grad():
            scores = model(mc.Tensor(image.astype(np.float32))).numpy()[0]
        p = np.exp(scores - scores.max())
        images.append(image[0, 0])
        probabilities.append(float(p[c] / p.sum()))
    return np.array(images), np.array(probabilities)


def maps_figure(x, y, predicted, maps):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(x), 1 + len(maps), figsize=(2 * (1 + len(maps)), 2 * len(x)), squeeze=False)
    for i in range(len(x)):
        axes[i, 0].imshow(x[i, 0], cmap="gray")
        axes[i, 0].set_title(f"{CLASSES[y[i]]} -> {CLASSES[predicted[i]]}", fontsize=8)
        for j, (name, heat) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(x[i, 0], cmap="gray")
            axes[i, j].imshow(heat[i], cmap="jet", alpha=0.5)
            axes[i, j].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def pictures_figure(pictures, titles, cmap="gray"):
    """Pictures side by side; with ``cmap="bwr"`` white is 0 (red positive, blue negative)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(pictures), figsize=(1.6 * len(pictures), 2), squeeze=False)
    limit = float(np.abs(np.asarray(pictures)).max()) if cmap == "bwr" else None
    for ax, picture, title in zip(axes[0], pictures, titles):
        ax.imshow(picture, cmap=cmap, vmin=-limit if limit else None, vmax=limit)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="train the quick network if none is saved")
    args = parser.parse_args(argv)
    model = load_or_train(quick=args.quick)
    x, y = one_per_class()
    predicted = visualize.predict(model, x)
    print(f"the 10 test images: {int((predicted == y).sum())} of 10 classified right")

    maps, seconds = all_maps(model, x, y)
    print("\nW1. the maps (for each image's true class)")
    for name, heat in maps.items():
        share, area = on_the_garment(heat, x)
        print(f"  {name:9s}: {share:5.1%} of the positive mass on the garment (the garment is {area:.0%} "
              f"of the image); {seconds[name] * 1000:6.1f} ms for 10 images")
    print(f"  correlation: saliency-occlusion {agreement(maps['saliency'], maps['occlusion']):.2f}, "
          f"saliency-grad-cam {agreement(maps['saliency'], maps['grad-cam']):.2f}, "
          f"occlusion-grad-cam {agreement(maps['occlusion'], maps['grad-cam']):.2f}")
    occlusion = maps["occlusion"]
    print(f"  occlusion: the largest drop averages {occlusion.max(axis=(1, 2)).mean():.2f}; on "
          f"{int((occlusion.min(axis=(1, 2)) < 0).sum())} of 10 images covering some patch raises the score "
          f"(by up to {-occlusion.min():.2f})")
    maps_figure(x, y, predicted, maps).savefig("maps.png")

    steps, changes = fool_all(model, x, y)
    print("\nW2. fooling each image into the next class (learning rate 0.1)")
    print(f"  steps: median {np.median(steps):.0f} (from {steps.min()} to {steps.max()}); largest pixel "
          f"change: median {np.median(changes):.2f} (from {changes.min():.2f} to {changes.max():.2f}), "
          f"pixels in [0, 1]")
    fooled, _ = visualize.fooling_image(model, x[:1], int((y[0] + 1) % 10), learning_rate=0.1, max_iterations=500)
    pictures_figure([x[0, 0], fooled[0, 0], 10 * (fooled - x[:1])[0, 0] + 0.5],
                    [CLASSES[y[0]], f"-> {CLASSES[(y[0] + 1) % 10]}", "difference x10"]).savefig("fooling.png")

    images, probabilities = class_images(model, range(10))
    print("\nW3. class visualisations (100 steps each): the model's probability for the class")
    print("  " + ", ".join(f"{CLASSES[c]} {p:.2f}" for c, p in enumerate(probabilities)))
    print(f"  their pixels range from {images.min():.1f} to {images.max():.1f} (Fashion-MNIST's: 0 to 1)")
    pictures_figure(images, CLASSES).savefig("classes.png")
    weights = model.features[0].weight.numpy()[:, 0]
    pictures_figure(weights, [f"filter {k}" for k in range(len(weights))], cmap="bwr").savefig("filters.png")
    print("\nsaved maps.png, fooling.png, classes.png, filters.png")


if __name__ == "__main__":
    main()
