"""Train the network Assignment 5 looks inside: ``SmallCNN`` (``model.py``) on Fashion-MNIST, saved
to ``trained.npz`` (about 30 KB).

    python train.py              # 800 steps on 20,000 images: about 15 s
    python train.py --quick      # 80 steps: a few seconds, a weaker network (what the notebook
                                 # trains when trained.npz is missing)

Everything stays offline: the images come from the local Fashion-MNIST copy (``minicnn.data``).
The notebook and ``explore.py`` call :func:`load_or_train`, which trains when the file is missing.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import minicnn as mc

from model import SmallCNN, accuracy, train_steps

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "trained.npz"
FULL_STEPS, QUICK_STEPS = 800, 80


def load_fashion(train, n, seed=0):
    """``n`` images of the training or test split, shuffled with ``seed``: float32 (n, 1, 28, 28)
    in [0, 1], and int64 labels."""
    from minicnn.data import FashionMNIST
    data = FashionMNIST(train=train)
    keep = np.random.default_rng(seed).permutation(len(data.targets))[:n]
    return data.data[keep].astype(np.float32) / 255.0, np.asarray(data.targets[keep], dtype=np.int64)


def train(steps=FULL_STEPS, n_train=20000, seed=0, log=print):
    """A ``SmallCNN`` trained for ``steps`` steps; logs its test accuracy on 2,000 test images."""
    start = time.perf_counter()
    mc.manual_seed(seed)
    x, y = load_fashion(True, n_train, seed)
    x_test, y_test = load_fashion(False, 2000, seed)
    model = SmallCNN()
    losses = train_steps(model, x, y, steps, seed=seed)
    log(f"trained {steps} steps in {time.perf_counter() - start:.0f} s: final loss "
        f"{np.mean(losses[-20:]):.3f}, test accuracy {accuracy(model, x_test, y_test):.1%}")
    return model


def load_or_train(path=DEFAULT_PATH, quick=False, log=print):
    """The trained ``SmallCNN`` (in eval mode): loaded from ``path``, or trained and saved there
    first (``quick``: 80 steps instead of 800)."""
    path = Path(path)
    if not path.exists():
        log(f"{path.name} not found: training it now")
        mc.save(train(steps=QUICK_STEPS if quick else FULL_STEPS, log=log).state_dict(), path)
    model = SmallCNN()
    model.load_state_dict(mc.load(path))
    return model.eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps instead of {FULL_STEPS}")
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    model = train(steps=QUICK_STEPS if args.quick else FULL_STEPS)
    mc.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
