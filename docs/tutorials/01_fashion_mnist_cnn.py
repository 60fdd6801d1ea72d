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
# # Tutorial 1: classify Fashion-MNIST with a CNN, end to end
#
# This notebook trains a small convolutional network on Fashion-MNIST (70,000 grey 28x28 photos
# of clothing, 10 classes) with minicnn, and looks at what it learned:
#
# 1. load the data and look at it;
# 2. build the network layer by layer and read its shape/parameter table;
# 3. write one training step by hand -- the five lines every framework shares;
# 4. train for a few epochs with `minicnn.train.Trainer`;
# 5. evaluate: accuracy, confusion matrix, a few predictions;
# 6. save the weights and load them back.
#
# It is a Python script in "percent" format: open it in Jupyter (with jupytext) or VS Code as a
# notebook, or run it top to bottom with `python docs/tutorials/01_fashion_mnist_cnn.py`.
# With `MINICNN_QUICK=1` in the environment it runs in seconds on a small subset (that is what
# the test suite does); the full run takes a few minutes on a laptop CPU.

# %%
import os
import tempfile
import time

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim
from minicnn.data import DataLoader, DatasetNotFoundError, FashionMNIST, Subset, transforms
from minicnn.summary import summary
from minicnn.train import Trainer, evaluate

QUICK = os.environ.get("MINICNN_QUICK") == "1"
mc.manual_seed(0)  # every random draw of minicnn: initialisation, dropout, shuffling

# %% [markdown]
# ## 1. The data
#
# `FashionMNIST` finds the four IDX files (Debian's `dataset-fashion-mnist` package, `$MINICNN_DATA`,
# `~/.minicnn/data`) or downloads them. The whole split is held in two arrays: `data`, `uint8`
# of shape `(N, 1, 28, 28)` (NCHW), and `targets`, `int64` of shape `(N,)`. If the files cannot be
# found (a machine without the data and without network), this tutorial continues on random
# images -- the code is the same, only the accuracy is meaningless.

# %%
try:
    train_set = FashionMNIST(train=True, download=not QUICK)
    test_set = FashionMNIST(train=False, download=not QUICK)
    classes = FashionMNIST.classes
except DatasetNotFoundError as err:
    print("Fashion-MNIST not found, using random stand-in images:", str(err).splitlines()[0])
    from minicnn.data import ArrayDataset
    rs = np.random.default_rng(0)
    train_set = ArrayDataset(rs.integers(0, 256, (600, 1, 28, 28), dtype=np.uint8), rs.integers(0, 10, 600))
    test_set = ArrayDataset(rs.integers(0, 256, (200, 1, 28, 28), dtype=np.uint8), rs.integers(0, 10, 200))
    classes = [f"class {k}" for k in range(10)]

print(train_set)
print("classes:", classes)
print("images per class:", np.bincount(train_set.targets, minlength=10))

# %% [markdown]
# A small run uses a random subset (the same one every time, for a given seed).

# %%
if QUICK:
    train_set = Subset(train_set, np.random.default_rng(0).choice(len(train_set), 512, replace=False))
    test_set = Subset(test_set, np.arange(min(256, len(test_set))))
print(f"training on {len(train_set)} images, testing on {len(test_set)}")

# %% [markdown]
# A `DataLoader` cuts a data set into shuffled batches: `x` is `float32` `(B, 1, 28, 28)` with
# pixels in [0, 1], `y` is `int64` `(B,)`. Its `transform` is applied to each whole batch; here
# we normalise to zero mean and unit variance with the training set's statistics
# (mean 0.2860, standard deviation 0.3530), which makes the first layer's inputs well scaled.

# %%
normalize = transforms.Normalize([0.2860], [0.3530])
train_loader = DataLoader(train_set, batch_size=64, shuffle=True, transform=normalize)
test_loader = DataLoader(test_set, batch_size=256, transform=normalize)
x, y = next(iter(train_loader))
print(x.shape, x.dtype, y.shape, y.dtype, f"mean {x.numpy().mean():.3f} std {x.numpy().std():.3f}")

# %% [markdown]
# What the images look like (with matplotlib; text otherwise):

# %%
try:
    import matplotlib
    if QUICK:
        matplotlib.use("Agg")  # a quick (test) run draws off-screen
    import matplotlib.pyplot as plt
except ImportError:
    plt = None


def show():
    plt.show() if not QUICK else plt.close("all")


images, labels = test_set.get_batch(np.arange(8))
if plt is not None:
    fig, axes = plt.subplots(1, 8, figsize=(12, 2))
    for ax, img, lab in zip(axes, images, labels):
        ax.imshow(img[0], cmap="gray")
        ax.set_title(classes[lab], fontsize=8)
        ax.axis("off")
    show()
else:
    print("first test images:", [classes[k] for k in labels])

# %% [markdown]
# ## 2. The network
#
# Two convolutional stages (3x3 convolution, batch norm, ReLU, 2x2 max-pooling), then a hidden
# fully connected layer with dropout and the 10-way output -- the design of
# `minicnn.models.fashion_cnn`, written out here so that every layer is visible. Padding 1 keeps
# the 28x28 size through each 3x3 convolution; each pooling halves it: 28 -> 14 -> 7.

# %%
def make_model(c1=32, c2=64, hidden=128):
    return nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.MaxPool2d(2),                                                   # 32 x 14 x 14
        nn.Conv2d(c1, c2, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.MaxPool2d(2),                                                   # 64 x 7 x 7
        nn.Flatten(),
        nn.Dropout(0.25), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(hidden, 10),
    )


model = make_model(*((8, 16, 32) if QUICK else (32, 64, 128)))
rows = summary(model, (1, 28, 28))   # prints the table, returns one dict per layer

# %% [markdown]
# The convolutions have no bias because the batch norm right after them adds one. Note where the
# parameters are -- in the first fully connected layer -- and where the multiply-accumulates are:
# in the convolutions (AlexNet has the same split, see `minicnn lecture alexnet-table`).

# %%
conv_macs = sum(r["macs"] for r in rows if r["type"] == "Conv2d")
print(f"convolutions: {100 * conv_macs / sum(r['macs'] for r in rows):.0f}% of the MACs; "
      f"linear layers: {100 * sum(r['params'] for r in rows if r['type'] == 'Linear') / sum(r['params'] for r in rows):.0f}% "
      f"of the parameters")

# %% [markdown]
# ## 3. One training step, by hand
#
# Forward, loss, clear the old gradients, backward, update. `F.cross_entropy` takes the raw
# scores (logits) and the integer labels and averages over the batch. Before any training the
# loss is about ln(10) = 2.30: the network guesses uniformly.

# %%
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
model.train()
logits = model(mc.Tensor(x))            # (64, 10): forward, recording the graph
loss = F.cross_entropy(logits, y)       # a 0-d tensor
optimizer.zero_grad()
loss.backward()                         # fills p.grad for every parameter
optimizer.step()                        # p -= lr * (momentum-smoothed) gradient
print(f"loss {loss.item():.3f} (ln 10 = {np.log(10):.3f}); "
      f"first conv gradient norm {np.linalg.norm(model[0].weight.grad):.4f}")

# %% [markdown]
# ## 4. Training with `Trainer`
#
# `Trainer` runs that step over every batch, evaluates on the test set after each epoch, logs a
# line per epoch and (given an `out_dir`) writes `metrics.json` and a checkpoint. A cosine
# schedule, stepped after every batch, lowers the learning rate smoothly to 0 by the end.

# %%
epochs = 1 if QUICK else 5
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
run_dir = tempfile.mkdtemp(prefix="minicnn-tutorial1-")
trainer = Trainer(model, optimizer, train_loader, test_loader, scheduler=scheduler,
                  scheduler_interval="step", epochs=epochs, out_dir=run_dir, classes=classes,
                  progress=not QUICK, verbose=True)
start = time.perf_counter()
history = trainer.fit()
print(f"{time.perf_counter() - start:.0f} s; files in {run_dir}: {sorted(os.listdir(run_dir))}")

# %% [markdown]
# `history` holds one record per epoch (the same as `metrics.json`). Training accuracy is the
# average over the epoch's batches, while the weights were still changing, in training mode
# (dropout on); test accuracy is measured after the epoch, in evaluation mode.

# %%
for r in history:
    print(f"epoch {r['epoch']}: train acc {100 * r['train_acc']:.2f}%  test acc {100 * r['test_acc']:.2f}%  "
          f"({r['images_per_second']:.0f} images/s)")
if plt is not None:
    ep = [r["epoch"] for r in history]
    plt.plot(ep, [100 * (1 - r["train_acc"]) for r in history], "--", label="training error")
    plt.plot(ep, [100 * (1 - r["test_acc"]) for r in history], "-", label="test error")
    plt.xlabel("epoch")
    plt.ylabel("error (%)")
    plt.legend()
    show()

# %% [markdown]
# ## 5. Evaluation
#
# `evaluate` runs the model in eval mode without building a graph and returns the loss, top-1 and
# top-5 accuracy and the confusion matrix (rows: true class; the `Trainer` printed it above with
# `format_confusion`). The usual confusions on Fashion-MNIST are among shirt, T-shirt, pullover
# and coat.

# %%
result = evaluate(model, test_loader)
print(f"test accuracy {100 * result['top1']:.2f}%, top-5 {100 * result['top5']:.2f}%, loss {result['loss']:.3f}")
recall = result["confusion"].diagonal() / np.maximum(result["confusion"].sum(axis=1), 1)
for k in np.argsort(recall):
    print(f"{classes[k]:>12}: {100 * recall[k]:5.1f}% recognised")
confusion = result["confusion"].astype(float)
np.fill_diagonal(confusion, 0)
t, p = np.unravel_index(confusion.argmax(), confusion.shape)
print(f"most frequent mistake: {classes[t]} taken for {classes[p]} ({int(confusion[t, p])} times)")

# %% [markdown]
# Predictions for single images: softmax turns the logits into probabilities.

# %%
model.eval()
with mc.no_grad():
    probs = F.softmax(model(mc.Tensor(normalize(images))), axis=1).numpy()
for k in range(len(images)):
    guess = int(probs[k].argmax())
    print(f"{classes[labels[k]]:>12} -> {classes[guess]:<12} ({100 * probs[k, guess]:.0f}%)")

# %% [markdown]
# ## 6. Save and load
#
# `state_dict()` maps parameter and buffer names to NumPy arrays; `mc.save` writes them to a
# `.npz` file (no pickling), `mc.load` reads them back, and `load_state_dict` copies them into a
# freshly built model of the same architecture.

# %%
path = os.path.join(run_dir, "fashion_cnn_weights.npz")
mc.save(model.state_dict(), path)
copy = make_model(*((8, 16, 32) if QUICK else (32, 64, 128)))
copy.load_state_dict(mc.load(path))
copy.eval()
with mc.no_grad():
    same = np.allclose(copy(mc.Tensor(normalize(images))).numpy(),
                       model(mc.Tensor(normalize(images))).numpy())
print("reloaded model gives the same outputs:", same)
assert same

# %% [markdown]
# Next: `minicnn train` does all of this from the command line (`minicnn train --epochs 8`), and
# tutorial 2 shows how to write a layer of your own.
