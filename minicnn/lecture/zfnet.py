"""ZFNet's story (Zeiler & Fergus 2014): look inside a trained network to see what it learned.

A ZFNet-shaped network for 28x28 grey images (:class:`SmallZFNet`: ZFNet's layer pattern -- a 7x7
first layer, a 5x5 second, three 3x3, each of the first two followed by overlapping max-pooling and
local response normalisation, then three fully connected layers with dropout -- at a fraction of its
widths, with stride 1 in the first layers since the image is eight times smaller) is trained briefly
on Fashion-MNIST, with He initialisation and Adam: with minicnn's default initialisation and SGD
(lr 0.02, momentum 0.9) these eight layers without batch norm were still at chance (10% training
accuracy) after an epoch of 20,000 images; He and Adam reach 66% test accuracy after 5,000.
Then, with :mod:`minicnn.interpret` and :mod:`minicnn.viz`:

* **what the first layer learned**: its 7x7 filters (``make_grid``; ZFNet Fig. 2), with the mean
  orientation coherence of the trained and of the initial filters (0: no preferred orientation,
  1: a clean edge or bar; ``filters.orientation``);
* **what a layer responds to**: the feature maps of conv1 (after the ReLU) for one test image;
* **what the classifier looks at**: occlusion maps (ZFNet section 4.2: slide a gray square over the
  image and watch the probability of the true class) and Grad-CAM, for a few test images;
* **measured**: over the first test images, cover one of the 16 7x7 patches of the 28x28 image with
  the mean gray and see how much the true class's probability drops: for the patch occlusion finds
  most important (the largest drop, by construction), the patch saliency ranks first, the patch
  Grad-CAM ranks first (of conv2's 14x14 maps and of conv5's 7x7 ones, after their ReLUs), and a
  random patch (the mean over all 16). A method whose top patch hurts
  much more than a random one points at what the network really uses.
"""
import numpy as np

from .. import backend, viz
from .. import functional as F
from .. import nn
from ..function import no_grad
from ..interpret import LayerActivation, LayerGradCam, Occlusion, Saliency
from ..models.alexnet import PAPER_LRN, fc_head
from ..nn import init
from ..tensor import Tensor
from .common import figure, load_fashion, normalize_transform, tile, train
from .filters import orientation

FULL = dict(train_size=20000, test_size=1000, epochs=2, batch_size=64, lr=1e-3, conv12=(16, 32),
            conv345=(64, 64, 48), hidden=128, measured_images=500)
QUICK = dict(train_size=256, test_size=64, epochs=1, batch_size=32, lr=1e-3, conv12=(8, 8),
             conv345=(8, 8, 8), hidden=16, measured_images=16)
PATCH = 7          # the measured patches: 4x4 of them tile the 28x28 image
SHOWN = 6          # test images in the occlusion and Grad-CAM figures
#: Grad-CAM is measured on the rectified maps (after the ReLU) of conv2 (14x14) and conv5 (7x7, the
#: last conv layer, Grad-CAM's usual choice); the figure shows conv5's.
GRADCAM_LAYERS = {"conv2 (14x14)": 5, "conv5 (7x7)": 13}


class SmallZFNet(nn.Module):
    """ZFNet (``minicnn.models.zfnet``) for 28x28x1 images:

        conv1 7x7 (pad 3)  ReLU  max-pool 3/2  LRN    28 -> 14
        conv2 5x5 (pad 2)  ReLU  max-pool 3/2  LRN    14 -> 7
        conv3, conv4, conv5 3x3 (pad 1), ReLU         7
        max-pool 3/2                                  7 -> 3
        dropout, fc6, ReLU, dropout, fc7, ReLU, fc8
    """

    def __init__(self, num_classes=10, in_channels=1, conv12=(16, 32), conv345=(64, 64, 48), hidden=128,
                 dropout=0.5):
        super().__init__()
        c1, c2 = conv12
        c3, c4, c5 = conv345
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=7, padding=3), nn.ReLU(),                       # conv1
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), nn.LocalResponseNorm(**PAPER_LRN),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(),                                # conv2
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), nn.LocalResponseNorm(**PAPER_LRN),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),                                # conv3
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),                                # conv4
            nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),                                # conv5
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        )
        self.classifier = fc_head(c5 * 3 * 3, hidden, num_classes, dropout)
        for m in self.modules():                        # He initialisation, for ReLU networks
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.kaiming_normal_(m.weight, nonlinearity="relu")
                init.zeros_(m.bias)

    @property
    def conv1(self):
        return self.features[0]

    @property
    def conv5(self):
        return self.features[12]

    def forward(self, x):
        return self.classifier(F.flatten(self.features(x), 1))


def run(ctx):
    from .. import rng
    cfg = ctx.config(QUICK, FULL)
    train_set, test_set, classes = load_fashion(ctx, cfg["train_size"], cfg["test_size"])
    transform = normalize_transform()
    rng.manual_seed(ctx.seed)
    model = SmallZFNet(conv12=cfg["conv12"], conv345=cfg["conv345"], hidden=cfg["hidden"])
    initial = backend.to_numpy(model.conv1.weight.data).copy()
    ctx.print(f"training a ZFNet-shaped network ({model.num_parameters():,} parameters; conv1: "
              f"{initial.shape[0]} filters of 7x7) on {len(train_set)} images ({ctx.data_source}) "
              f"for {cfg['epochs']} epoch(s)")
    from ..data import DataLoader
    from ..optim import Adam
    loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True, drop_last=True, transform=transform)
    test_loader = DataLoader(test_set, batch_size=250, transform=transform)
    opt = Adam(model.parameters(), lr=cfg["lr"])
    history = train(ctx, model, loader, test_loader, epochs=cfg["epochs"], optimizer=opt, label="zfnet",
                    verbose=not ctx.quick)
    model.eval()
    accuracy = history[-1]["test_acc"]
    ctx.print(f"\ntest accuracy {100 * accuracy:.2f}% on {len(test_set)} test images")

    # 1. what the first layer learned
    weights = backend.to_numpy(model.conv1.weight.data)
    coherence = float(np.mean([orientation(w[0])[1] for w in weights]))
    coherence_init = float(np.mean([orientation(w[0])[1] for w in initial]))
    ctx.print(f"conv1 filters: mean orientation coherence {coherence:.2f} after training, "
              f"{coherence_init:.2f} at initialisation (1 = a clean edge or bar)")

    # 2. the images the rest looks at: the first test images
    n = min(cfg["measured_images"], len(test_set))
    raw, labels = test_set.get_batch(np.arange(n))
    x = Tensor(backend.to_device(transform(raw), ctx.device))
    labels = np.asarray(labels, dtype=np.int64)
    probability = lambda batch: F.softmax(model(batch), axis=1)      # noqa: E731  (occlusion in probability)
    with no_grad():
        p = backend.to_numpy(probability(x).data)
    p_true = p[np.arange(n), labels]

    # 3. covering one of the 16 patches: which hurts most, and which do the methods point at?
    drop = backend.to_numpy(Occlusion(probability).attribute(
        x, (1, PATCH, PATCH), strides=(1, PATCH, PATCH), target=labels, perturbations_per_eval=16).data)
    patch_drop = drop[:, 0, ::PATCH, ::PATCH].reshape(n, -1)                 # (n, 16): one value per patch
    cams = {name: backend.to_numpy(LayerGradCam(model, model.features[i]).attribute(
        x, target=labels, upsample_to_input=True).data)[:, 0] for name, i in GRADCAM_LAYERS.items()}
    saliency = backend.to_numpy(Saliency(model).attribute(x, target=labels).data)
    rows = np.arange(n)
    measured = {"occlusion (the largest drop)": patch_drop.max(axis=1),
                "saliency's top patch": patch_drop[rows, _patch_sums(saliency[:, 0]).argmax(axis=1)]}
    for name, cam in cams.items():
        measured[f"Grad-CAM of {name}: top patch"] = patch_drop[rows, _patch_sums(cam).argmax(axis=1)]
    measured["a random patch (mean of all 16)"] = patch_drop.mean(axis=1)
    ctx.print(f"\ncovering one {PATCH}x{PATCH} patch of the 28x28 image with the mean gray, over the first "
              f"{n} test images (p(true class) uncovered: {p_true.mean():.3f} on average):")
    ctx.print(f"{'patch covered':<38} {'drop of p(true)':>15}")
    for name, values in measured.items():
        ctx.print(f"{name:<38} {values.mean():>15.3f}")

    # 4. pictures
    shown = slice(0, min(SHOWN, n))
    titles = [f"{classes[labels[i]]}\np(true) {p_true[i]:.2f}" for i in range(shown.stop)]
    with no_grad():
        acts = LayerActivation(model, model.features[1]).attribute(x[:1])      # conv1 after ReLU
    fine = backend.to_numpy(Occlusion(probability).attribute(
        x[shown], (1, PATCH, PATCH), strides=(1, 2, 2), target=labels[shown], perturbations_per_eval=64).data)
    cam = cams["conv5 (7x7)"][shown]
    _pictures(ctx, weights, acts, x[shown], fine[:, 0], cam, titles, classes[labels[0]])
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "parameters": model.num_parameters(), "test_acc": accuracy, "train_acc": history[-1]["train_acc"],
            "conv1_coherence": coherence, "conv1_coherence_at_init": coherence_init,
            "measured_images": n, "p_true_uncovered": float(p_true.mean()),
            "drop_of_p_true": {name: float(values.mean()) for name, values in measured.items()}}


def _patch_sums(maps):
    """``(n, 28, 28)`` maps -> ``(n, 16)``: each 7x7 patch's total, in the order of Occlusion's windows."""
    n, h, w = maps.shape
    return maps.reshape(n, h // PATCH, PATCH, w // PATCH, PATCH).sum(axis=(2, 4)).reshape(n, -1)


def _pictures(ctx, weights, acts, images, occlusion, cam, titles, first_label):
    if figure(1, 1) is None:  # no matplotlib: plain PNG grids (filters; images over their occlusion maps)
        ctx.save_image(tile(weights[:, 0], ncols=8, pad=2, scale=6), "filters.png")
        pictures = backend.to_numpy(images.data)[:, 0]
        ctx.save_image(tile(np.concatenate([pictures, occlusion]), ncols=len(pictures), pad=2, scale=3),
                       "occlusion.png")
        return
    ctx.save_figure(viz.filters_figure(weights, title=f"conv1: {len(weights)} filters of 7x7"), "filters.png")
    ctx.save_figure(viz.activations_figure(acts, title=f"conv1 maps (after ReLU) of a test image: "
                                                       f"{first_label}"), "activations.png")
    ctx.save_figure(viz.examples_figure(images, list(occlusion), titles,
                                        title=f"occlusion: drop of p(true class) when a {PATCH}x{PATCH} gray "
                                              f"patch covers the pixel (red: large)"), "occlusion.png")
    ctx.save_figure(viz.examples_figure(images, list(cam), titles,
                                        title="Grad-CAM of conv5 (after its ReLU) for the true class"), "gradcam.png")
