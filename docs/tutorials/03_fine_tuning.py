# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
# Setup: install minicnn where it is missing (Colab), and look for a GPU.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("minicnn") is None:
    # On Colab: install minicnn from its repository (set MINICNN_REPO to your course's copy)
    repo = os.environ.get("MINICNN_REPO", "https://github.com/minicnn/minicnn")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", f"git+{repo}"])
import minicnn
print("GPU available:", minicnn.cuda.is_available())

# %% [markdown]
# # Tutorial 3: fine-tune a pretrained network
#
# Training a CNN from scratch needs many labelled images. When a network has already been trained
# on a related task, its convolutional layers compute features that are useful for the new task
# too, and only the last layer -- the *head*, which maps those features to the classes -- has to
# be learned anew. This notebook does the lecture's recipe with minicnn's helpers:
#
# 1. get a pretrained network: load weights from a file if you have one, or pretrain one quickly
#    (here: on Fashion-MNIST classes 0-4, T-shirt ... coat);
# 2. **replace the head** with a fresh layer for the new classes (`replace_head`, or
#    `load_pretrained(..., num_classes=K)`, which loads and replaces in one go);
# 3. **freeze** the rest (`train_only_head`, or `freeze(model, upto=...)` to keep only the first
#    layers fixed);
# 4. **train the head** on the new task -- classes 5-9 (sandal ... ankle boot) with only 20
#    labelled images per class -- and compare with training the same network from scratch.
#
# `minicnn lecture fine-tune` runs the same comparison as an experiment (with repetitions);
# `minicnn train --pretrained W.npz --num-classes K --train-only head` does it from the command line.
# Set `MINICNN_QUICK=1` for a run of seconds; set `PRETRAINED=path/to/weights.npz` to start from
# your own weights (a `state_dict` saved with `mc.save`, a training checkpoint, or a converted
# torchvision file for the ImageNet models).

# %%
import os
import tempfile

import numpy as np

import minicnn as mc
from minicnn import models, optim
from minicnn.data import ArrayDataset, DataLoader, DatasetNotFoundError, FashionMNIST, Subset, transforms
from minicnn.train import (Trainer, evaluate, find_head, freeze, load_pretrained, train_only_head,
                           trainable_parameters)

QUICK = os.environ.get("MINICNN_QUICK") == "1"
PRETRAINED = os.environ.get("PRETRAINED")
mc.manual_seed(0)

# %% [markdown]
# ## The data: two tasks from one data set
#
# `Subset.of_classes(data, classes, relabel=True)` keeps the images of some classes and renumbers
# their labels 0 .. K-1, so that a K-way head can be trained on them.

# %%
try:
    train_all, test_all = FashionMNIST(train=True, download=not QUICK), FashionMNIST(train=False, download=not QUICK)
except DatasetNotFoundError as err:  # no data on this machine: random stand-in images
    print("Fashion-MNIST not found, using random stand-in images:", str(err).splitlines()[0])
    rs = np.random.default_rng(0)
    train_all = ArrayDataset(rs.integers(0, 256, (1000, 1, 28, 28), dtype=np.uint8), rs.integers(0, 10, 1000),
                             classes=FashionMNIST.classes)
    test_all = ArrayDataset(rs.integers(0, 256, (500, 1, 28, 28), dtype=np.uint8), rs.integers(0, 10, 500),
                            classes=FashionMNIST.classes)

old_train = Subset.of_classes(train_all, [0, 1, 2, 3, 4], relabel=True)   # the pretraining task
new_train = Subset.of_classes(train_all, [5, 6, 7, 8, 9], relabel=True)   # the new task
new_test = Subset.of_classes(test_all, [5, 6, 7, 8, 9], relabel=True)
print("pretraining classes:", old_train.classes)
print("new classes:        ", new_train.classes)

# a small labelled budget for the new task: 20 images per class
per_class = 20
pick = np.random.default_rng(0)
budget = Subset(new_train, np.concatenate([pick.choice(np.flatnonzero(new_train.targets == c), per_class, replace=False)
                                           for c in range(5)]))
if QUICK:
    old_train = Subset(old_train, np.arange(300))
    new_test = Subset(new_test, np.arange(200))
print(f"{len(old_train)} pretraining images; {len(budget)} labelled images for the new task; "
      f"{len(new_test)} test images")

normalize = transforms.Normalize([0.2860], [0.3530])


def loader(data, shuffle=True, batch_size=32):
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, transform=normalize)


def new_model(num_classes):
    if QUICK:
        return models.fashion_cnn(num_classes=num_classes, cfg=[8, "M", 16, "M"], hidden=32)
    return models.fashion_cnn(num_classes=num_classes)


def fit(model, data, epochs, lr=0.05, verbose=False):
    """SGD with momentum on the trainable parameters only; returns the last epoch's record."""
    opt = optim.SGD(trainable_parameters(model), lr=lr, momentum=0.9, weight_decay=5e-4)
    trainer = Trainer(model, opt, loader(data), epochs=epochs, progress=False, verbose=verbose and not QUICK)
    return trainer.fit()[-1]


# %% [markdown]
# ## 1. A pretrained network
#
# With `PRETRAINED` set, its weights are loaded; otherwise a network is trained on the five old
# classes and saved with `mc.save(model.state_dict(), path)` -- exactly the kind of file you
# would download or share.

# %%
weights_path = PRETRAINED
if weights_path is None:
    pretrained = new_model(num_classes=5)
    record = fit(pretrained, old_train, epochs=1 if QUICK else 2, verbose=True)
    print(f"pretraining: {100 * record['train_acc']:.1f}% training accuracy on the old classes")
    weights_path = os.path.join(tempfile.mkdtemp(prefix="minicnn-tutorial3-"), "pretrained.npz")
    mc.save(pretrained.state_dict(), weights_path)
print("pretrained weights:", weights_path, f"({len(mc.load(weights_path))} arrays)")

# %% [markdown]
# ## 2. Replace the head
#
# The *head* is the model's last `Linear` layer (`classifier.5` here; `fc` in a ResNet,
# `classifier.6` in AlexNet/VGG). `load_pretrained(model, path, num_classes=5)` loads every weight
# -- the old head included, so the load is strict and catches a wrong file -- and then replaces
# the head with a freshly initialised 5-way layer. Doing it by hand is `model.load_state_dict(...)`
# followed by `replace_head(model, 5)`.

# %%
model = new_model(num_classes=5)
load_pretrained(model, weights_path, num_classes=5)
head_name, head = find_head(model)
print("head:", head_name, "weight", tuple(head.weight.shape))   # a new (5, hidden) layer
# by hand, the same thing: model.load_state_dict(mc.load(weights_path)); replace_head(model, 5)

# %% [markdown]
# ## 3. Freeze
#
# A frozen parameter has `requires_grad=False`: autograd computes no gradient for it -- and builds
# no graph through a frozen prefix of the network at all, so the backward pass is cheap -- and the
# optimizer, given `trainable_parameters(model)`, does not see it. `train_only_head(model)`
# freezes everything but the head.

# %%
train_only_head(model)
total = sum(p.numel() for p in model.parameters())
train_n = sum(p.numel() for p in trainable_parameters(model))
print(f"trainable: {train_n:,} of {total:,} parameters")
for name, p in model.named_parameters():
    print(f"  {name:<24} {'trainable' if p.requires_grad else 'frozen'}")

# %% [markdown]
# ## 4. Train the head, and compare with training from scratch
#
# Three ways to use 100 labelled images:
#
# * **head only**: the pretrained features, frozen, and a new linear classifier on top;
# * **fine-tune all**: start from the pretrained weights but train every layer (with a smaller
#   learning rate, so as not to destroy the features; `freeze(model, upto="features.1")` would
#   keep the first conv block -- conv and batch norm -- fixed and train the rest);
# * **from scratch**: the same network, randomly initialised.

# %%
epochs = 3 if QUICK else 30
test_loader = loader(new_test, shuffle=False, batch_size=250)
results = {}

fit(model, budget, epochs)
results["head only (frozen features)"] = evaluate(model, test_loader)["top1"]

mc.manual_seed(1)
model = new_model(num_classes=5)
load_pretrained(model, weights_path, num_classes=5)
fit(model, budget, epochs, lr=0.01)
results["fine-tune all layers"] = evaluate(model, test_loader)["top1"]

mc.manual_seed(1)
scratch = new_model(num_classes=5)
fit(scratch, budget, epochs)
results["from scratch"] = evaluate(scratch, test_loader)["top1"]

for name, acc in results.items():
    print(f"{name:<28} {100 * acc:6.2f}% test accuracy on the new classes")

# %% [markdown]
# Which way wins depends on how related the two tasks are and on how many labels there are --
# the lecture's rule of thumb is "little data and a similar task: train the head; more data or a
# different task: fine-tune more layers". Here the tasks are not that similar: the pretraining
# classes are garments, the new ones mostly footwear and bags, so features tuned to tell a
# pullover from a coat are not the best ones for a sandal. In our runs of
# `minicnn lecture fine-tune` (the same network, 50 labels per class, three draws each),
# fine-tuning all layers came first (94.4% on average), training from scratch second (92.5%)
# and the frozen features with a new head last (88.3%); with 10 labels per class: 89.1%, 88.5%
# and 79.1%. The pretrained weights help as a *starting point*; frozen, they are too specific.
#
# A last look at `freeze(model, upto=...)`: it freezes every parameter up to and including the
# named layer, and returns their names.

# %%
model = new_model(num_classes=5)
frozen = freeze(model, upto="features.1")       # the first conv and its batch norm
print("frozen:", frozen)
print("still trainable:", [n for n, p in model.named_parameters() if p.requires_grad])
