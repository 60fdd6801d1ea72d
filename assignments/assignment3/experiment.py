"""Assignment 3, Q8: the degradation problem, on two CPU cores in about a minute.

He et al. (2016) observed that a deeper *plain* network can train worse than a shallower one --
higher *training* error, so it is not overfitting -- and that the same network with identity
shortcuts does not. Here the same experiment, scaled down: four networks built from your
``BasicBlock``

    plain-shallow   residual-shallow    (stem + 1 block per stage)
    plain-deep      residual-deep       (stem + 6 blocks per stage)

with two stages (8 channels at 14x14, 16 channels at 7x7), trained with the same recipe (SGD
with momentum, batch 64) on 2,000 Fashion-MNIST images downsampled to 14x14. It prints, every few
steps, the training loss of each network, and at the end its training and test error, and
writes ``degradation.json`` (and ``degradation.png`` with matplotlib).

The errors are measured in test mode (``model.eval()``), where batch norm uses its running
averages. Those average over 150 steps of weights that kept changing, so before measuring, 50
batches go through each network in training mode without a gradient step ("precise batch norm"):
the running averages then describe the final weights. ``--no-refresh`` skips that (W3 asks why
the errors change).

    python experiment.py               # about a minute on two cores
    python experiment.py --quick       # seconds: checks that it runs, the numbers mean nothing
    python experiment.py --seed 1      # another initialisation and batch order (default 0)
    python experiment.py --no-refresh  # errors with the running averages left from training

Questions W2 and W3 of the README ask you to explain the results.
"""
import argparse
import json
import time

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim

from blocks import BasicBlock


class SmallResNet(nn.Module):
    """stem conv 3x3 (8) - ``blocks`` BasicBlocks (8, 14x14) - ``blocks`` BasicBlocks (16, 7x7,
    the first with stride 2) - global average pool - linear (10 classes)."""

    def __init__(self, blocks, residual, width=8):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        layers = [BasicBlock(width, width, residual=residual) for _ in range(blocks)]
        layers.append(BasicBlock(width, 2 * width, stride=2, residual=residual))
        layers += [BasicBlock(2 * width, 2 * width, residual=residual) for _ in range(blocks - 1)]
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(2 * width, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.head(x.mean(axis=(2, 3)))


def load_data(n_train, n_test, synthetic=False):
    """Fashion-MNIST downsampled to 14x14 (2x2 averages), normalised float32, int64 labels."""
    if synthetic:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, n_train + n_test)
        x = rng.standard_normal((len(y), 1, 14, 14)).astype(np.float32)
        x[np.arange(len(y)), 0, y, :] += 2.0
        return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    from minicnn.data import FashionMNIST
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)

    def small(images):
        x = images.astype(np.float32) / 255.0
        x = x.reshape(len(x), 1, 14, 2, 14, 2).mean(axis=(3, 5))
        return (x - 0.286) / 0.353
    return (small(train.data[:n_train]), train.targets[:n_train].astype(np.int64),
            small(test.data[:n_test]), test.targets[:n_test].astype(np.int64))


def error_rate(model, x, y, batch_size=500):
    model.eval()
    wrong = 0
    with mc.no_grad():
        for first in range(0, len(x), batch_size):
            scores = model(mc.Tensor(x[first:first + batch_size])).numpy()
            wrong += int(np.sum(scores.argmax(axis=1) != y[first:first + batch_size]))
    model.train()
    return wrong / len(x)


def refresh_batch_norm(model, x, batches=50, batch_size=64, seed=0):
    """Run ``batches`` random training batches through ``model`` in training mode, without
    gradients or weight updates: each batch norm's running averages (momentum 0.1) move towards
    the statistics of the *final* weights, until 0.9 ** 50, under 1%, of the old estimate is left."""
    rng = np.random.default_rng(seed)
    model.train()
    with mc.no_grad():
        for _ in range(batches):
            model(mc.Tensor(x[rng.choice(len(x), batch_size, replace=False)]))


def train_one(model, x, y, steps, batch_size=64, lr=0.05, seed=0, every=10):
    """SGD with momentum for ``steps`` steps; returns the smoothed training loss every ``every``."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    rng = np.random.default_rng(seed)
    curve, running = [], []
    model.train()
    for step in range(1, steps + 1):
        batch = rng.choice(len(x), batch_size, replace=False)
        loss = F.cross_entropy(model(mc.Tensor(x[batch])), mc.Tensor(y[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if step % every == 0 or step == steps:          # the last point may average fewer steps
            curve.append((step, float(np.mean(running))))
            running = []
    return curve


def run(blocks=(1, 6), n_train=2000, n_test=1000, steps=150, synthetic=False, seed=0, refresh=True,
        refresh_batches=50, log=print):
    x_train, y_train, x_test, y_test = load_data(n_train, n_test, synthetic)
    results = {}
    for depth in blocks:
        for residual in (False, True):
            name = f"{'residual' if residual else 'plain'}-{depth}"
            mc.manual_seed(seed)
            model = SmallResNet(depth, residual)
            start = time.perf_counter()
            curve = train_one(model, x_train, y_train, steps, seed=seed)
            if refresh:
                refresh_batch_norm(model, x_train, batches=refresh_batches, seed=seed + 1)
            results[name] = {
                "blocks_per_stage": depth, "residual": residual,
                "weight_layers": 4 * depth + 2,
                "curve": curve, "seed": seed, "refreshed_batch_norm": refresh,
                "train_error": error_rate(model, x_train[:1000], y_train[:1000]),
                "test_error": error_rate(model, x_test, y_test),
                "seconds": time.perf_counter() - start}
            r = results[name]
            log(f"{name:<12} {r['weight_layers']:>3} weight layers: final loss {curve[-1][1]:.3f}, "
                f"train error {r['train_error']:.1%}, test error {r['test_error']:.1%} "
                f"({r['seconds']:.0f} s)")
    return results


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        steps, losses = zip(*r["curve"])
        ax.plot(steps, losses, "-" if r["residual"] else "--", label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run: seconds")
    parser.add_argument("--synthetic", action="store_true", help="no data set needed")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights and the order of the batches (default 0)")
    parser.add_argument("--no-refresh", action="store_true",
                        help="measure the errors with the running averages left from training")
    parser.add_argument("--out", default=".", help="folder for degradation.json/.png")
    args = parser.parse_args(argv)
    common = dict(synthetic=args.synthetic, seed=args.seed, refresh=not args.no_refresh)
    if args.quick:
        results = run(blocks=(1, 2), n_train=256, n_test=128, steps=args.steps or 10, refresh_batches=10,
                      **common)
    else:
        results = run(steps=args.steps or 150, **common)
    with open(f"{args.out}/degradation.json", "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    plot(results, f"{args.out}/degradation.png")
    return results


if __name__ == "__main__":
    main()
