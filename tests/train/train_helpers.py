"""Tiny models and data sets for the training tests (fast on two CPU cores).

Imported by the test modules as ``train_helpers`` (pytest puts this folder on ``sys.path``)."""
from pathlib import Path

import numpy as np
import pytest

from minicnn import nn
from minicnn.data import ArrayDataset, DataLoader

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists()
                                   and not (FASHION_DIR / "train-images-idx3-ubyte").exists(),
                                   reason="Fashion-MNIST not installed in /usr/share/datasets")


def synthetic(n=96, classes=3, size=8, seed=0):
    """Images whose class is which of ``classes`` horizontal bands is bright, plus noise:
    learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, 1, size, size))
    band = size // classes
    for i, c in enumerate(y):
        x[i, :, c * band:(c + 1) * band, :] += 150
    return ArrayDataset(x.astype(np.uint8), y)


class TinyCNN(nn.Module):
    """conv 3x3 (4) + BN + ReLU + max-pool + dropout + linear: every kind of state a run has
    (parameters, batch-norm buffers, dropout randomness)."""

    def __init__(self, num_classes=3, in_channels=1, size=8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2),
                                        nn.Linear(4 * (size // 2) ** 2, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def loaders(train=None, test=None, batch_size=16, transform=None):
    train = train if train is not None else synthetic(96, seed=0)
    test = test if test is not None else synthetic(48, seed=1)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True, transform=transform),
            DataLoader(test, batch_size=32))
