"""Assignment 4, Q4-Q5: fine-tuning a pretrained network.

``SmallCNN`` (written) is a feature extractor (``features``: two conv-bn-relu-pool stages) and a
classifier (``head``: one linear layer). ``pretrain.py`` trains it on Fashion-MNIST classes 0-4
(t-shirt, trouser, pullover, dress, coat) and saves ``pretrained.npz``; here you reuse it for
classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with few labels:

1. load the pretrained weights;
2. replace the head by a new one for the new classes (Q4);
3. freeze the features and train only the head (Q4);
4. unfreeze everything and train the whole network a little more, with a smaller learning rate
   (Q5).

A parameter is frozen by ``p.requires_grad = False``: autograd then computes no gradient for it,
and the optimiser skips it.
"""
import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim


class SmallCNN(nn.Module):
    """conv 3x3 (8) - bn - relu - pool 2 - conv 3x3 (16) - bn - relu - pool 2 - linear."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        self.head = nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def train_steps(model, parameters, x, y, steps, lr, batch_size=32, seed=0, augment=None):
    """``steps`` steps of SGD with momentum on ``parameters`` only, batches drawn from (x, y) with a
    generator seeded by ``seed``; ``augment(batch, rng)`` (optional) transforms each batch.
    Returns the training losses."""
    optimizer = optim.SGD(list(parameters), lr=lr, momentum=0.9)
    rng, losses = np.random.default_rng(seed), []
    model.train()
    for _ in range(steps):
        batch = rng.choice(len(x), min(batch_size, len(x)), replace=False)
        images = x[batch] if augment is None else augment(x[batch], rng)
        loss = F.cross_entropy(model(mc.Tensor(images.astype(np.float32))), mc.Tensor(y[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# ------------------------------------------------------------------------------------------------
# Q4. A new head, frozen features
# ------------------------------------------------------------------------------------------------

def replace_head(model, num_classes):
    """Give ``model`` a new, freshly initialised head (``nn.Linear``) with ``num_classes`` outputs
    and the same number of inputs as the old one; returns the model."""
    # BEGIN SOLUTION (hint: the old head's weight has shape (out_features, in_features))
    model.head = nn.Linear(model.head.weight.shape[1], num_classes)
    # END SOLUTION
    return model


def set_trainable(module, trainable):
    """Set ``requires_grad`` of every parameter of ``module`` (and its sub-modules) to ``trainable``."""
    # BEGIN SOLUTION (hint: module.parameters() lists them all)
    for p in module.parameters():
        p.requires_grad = trainable
    # END SOLUTION


def head_only(model):
    """Freeze ``model.features``, make ``model.head`` trainable; return the list of the parameters
    that are now trainable (for the optimiser)."""
    trainable = None
    # BEGIN SOLUTION (hint: set_trainable twice, then the head's parameters)
    set_trainable(model.features, False)
    set_trainable(model.head, True)
    trainable = list(model.head.parameters())
    # END SOLUTION
    return trainable


# ------------------------------------------------------------------------------------------------
# Q5. Fine-tune in two stages
# ------------------------------------------------------------------------------------------------

def fine_tune(model, x, y, head_steps, all_steps, lr, seed=0, augment=None):
    """Train the head alone for ``head_steps`` steps with learning rate ``lr``, then unfreeze every
    parameter and train all of them for ``all_steps`` steps with ``lr / 10``. Use
    :func:`train_steps` for both stages, with ``seed`` for the first and ``seed + 1`` for the
    second, passing ``augment`` on. Returns the losses of both stages, in one list."""
    losses = []
    # BEGIN SOLUTION (hint: head_only gives the first stage's parameters; set_trainable on the whole model unfreezes it)
    losses = train_steps(model, head_only(model), x, y, head_steps, lr, seed=seed, augment=augment)
    set_trainable(model, True)
    losses += train_steps(model, model.parameters(), x, y, all_steps, lr / 10,
                          seed=seed + 1, augment=augment)
    # END SOLUTION
    return losses


def accuracy(model, x, y, batch_size=500):
    model.eval()
    correct = 0
    with mc.no_grad():
        for first in range(0, len(x), batch_size):
            scores = model(mc.Tensor(x[first:first + batch_size].astype(np.float32))).numpy()
            correct += int(np.sum(scores.argmax(axis=1) == y[first:first + batch_size]))
    model.train()
    return correct / len(x)
