"""Make the "pretrained" network of Assignment 4: ``SmallCNN`` trained on Fashion-MNIST classes
0-4 (t-shirt, trouser, pullover, dress, coat), saved to ``pretrained.npz`` (about 40 KB).

    python pretrain.py               # 600 steps on 10,000 images: about a minute, ~88% accuracy
    python pretrain.py --quick       # 60 steps: seconds (a weaker start, for trying things out)

Everything stays offline: the images come from the local Fashion-MNIST copy (``minicnn.data``).
The other scripts call :func:`load_or_make` and make the file when it is missing.
"""
import argparse
from pathlib import Path

import numpy as np

import minicnn as mc

from finetune import SmallCNN, accuracy, train_steps

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "pretrained.npz"


def load_fashion(classes, n_train, n_test, seed=0):
    """Images of ``classes`` as float32 (N, 1, 28, 28) in [0, 1] and labels renumbered 0, 1, ...
    (the first ``n_train`` training and ``n_test`` test images of those classes, shuffled)."""
    from minicnn.data import FashionMNIST
    out = []
    for train, n in ((True, n_train), (False, n_test)):
        data = FashionMNIST(train=train)
        keep = np.flatnonzero(np.isin(data.targets, classes))
        keep = np.random.default_rng(seed).permutation(keep)[:n]
        labels = np.searchsorted(np.asarray(classes), data.targets[keep]).astype(np.int64)
        out += [data.data[keep].astype(np.float32) / 255.0, labels]
    return out


def pretrain(steps=600, n_train=10000, seed=0, log=print):
    mc.manual_seed(seed)
    x, y, x_test, y_test = load_fashion([0, 1, 2, 3, 4], n_train, 2000, seed)
    model = SmallCNN(num_classes=5)
    train_steps(model, model.parameters(), x, y, steps, lr=0.05, batch_size=64, seed=seed)
    log(f"pretrained on classes 0-4: test accuracy {accuracy(model, x_test, y_test):.1%} "
        f"after {steps} steps")
    return model


def load_or_make(path=DEFAULT_PATH, quick=False, log=print):
    """The pretrained ``SmallCNN``: loaded from ``path``, or trained and saved there first."""
    path = Path(path)
    model = SmallCNN(num_classes=5)
    if not path.exists():
        log(f"{path.name} not found: pretraining it now")
        mc.save(pretrain(steps=60 if quick else 600, log=log).state_dict(), path)
    model.load_state_dict(mc.load(path))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 steps instead of 600")
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    model = pretrain(steps=60 if args.quick else 600)
    mc.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
