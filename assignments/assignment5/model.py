"""The network Assignment 5 looks inside, and how ``train.py`` trains it.

``SmallCNN`` is deliberately plain (no batch norm, no dropout), so that it behaves the same in
training and evaluation mode and every map you draw depends only on the weights and the image:

    features: conv 3x3 (8) - relu - pool 2 - conv 3x3 (16) - relu - pool 2
    head:     flatten - linear (16 * 7 * 7 -> 10)

``model.features[4]`` (the second ReLU, 16 maps of 14x14) is the layer Grad-CAM looks at.
"""
import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim

#: Fashion-MNIST's classes, in label order.
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot"]


class SmallCNN(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, width=8, image_size=28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * (image_size // 4) ** 2, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def train_steps(model, x, y, steps, lr=0.05, batch_size=64, seed=0):
    """``steps`` steps of SGD with momentum 0.9 on random batches of (x, y); returns the losses."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    rng, losses = np.random.default_rng(seed), []
    model.train()
    for _ in range(steps):
        batch = rng.choice(len(x), min(batch_size, len(x)), replace=False)
        loss = F.cross_entropy(model(mc.Tensor(x[batch])), mc.Tensor(y[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def accuracy(model, x, y, batch_size=500):
    """The fraction of ``x`` that ``model`` classifies as ``y``."""
    correct = 0
    with mc.no_grad():
        for first in range(0, len(x), batch_size):
            scores = model(mc.Tensor(x[first:first + batch_size])).numpy()
            correct += int(np.sum(scores.argmax(axis=1) == y[first:first + batch_size]))
    return correct / len(x)
