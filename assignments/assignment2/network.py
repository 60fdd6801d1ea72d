"""Assignment 2, Q6: a two-layer network built from *your* functions, trained by minicnn's engine.

    scores = AddBias(MatMul(act(AddBias(MatMul(x, w1), b1)), w2), b2)
    loss   = SoftmaxCrossEntropy(scores, y)

Nothing here computes a gradient by hand: ``loss.backward()`` walks the graph your ``Function``
calls recorded and calls your ``backward`` methods in reverse topological order; ``optim.SGD``
then updates the weights. Run it::

    python network.py --quick        # 2,000 Fashion-MNIST images, a few seconds
    python network.py                # 20,000 images, about a minute
    python network.py --synthetic    # no data set needed
"""
import argparse
import time

import numpy as np

import minicnn as mc
from minicnn import optim

from functions import AddBias, MatMul, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class TwoLayerNet:
    """``input_size -> hidden_size -> activation -> num_classes``, weights He-initialised.

    ``w1`` is (input_size, hidden_size) and ``w2`` (hidden_size, num_classes): the layout of
    ``x @ w``. All four parameters are ``mc.Tensor``s with ``requires_grad=True``.
    """

    def __init__(self, input_size, hidden_size, num_classes, activation="relu", seed=0,
                 dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.activation = ACTIVATIONS[activation]
        self.w1 = mc.Tensor((rng.standard_normal((input_size, hidden_size))
                             * np.sqrt(2.0 / input_size)).astype(dtype), requires_grad=True)
        self.b1 = mc.Tensor(np.zeros(hidden_size, dtype=dtype), requires_grad=True)
        self.w2 = mc.Tensor((rng.standard_normal((hidden_size, num_classes))
                             * np.sqrt(2.0 / hidden_size)).astype(dtype), requires_grad=True)
        self.b2 = mc.Tensor(np.zeros(num_classes, dtype=dtype), requires_grad=True)

    def parameters(self):
        return [self.w1, self.b1, self.w2, self.b2]

    def scores(self, x):
        """Class scores (N, num_classes) of ``x``, a tensor (N, input_size), as a tensor."""
        scores = None
        # BEGIN SOLUTION (hint: apply your Functions: MatMul()(x, self.w1), AddBias(), self.activation(), ...)
        hidden = self.activation()(AddBias()(MatMul()(x, self.w1), self.b1))
        scores = AddBias()(MatMul()(hidden, self.w2), self.b2)
        # END SOLUTION
        return scores

    def loss(self, x, y):
        """The mean cross-entropy of the scores of ``x`` against the labels ``y`` (an int tensor)."""
        return SoftmaxCrossEntropy()(self.scores(x), y)


def train_step(model, optimizer, x, y):
    """One step of training on the batch ``(x, y)`` (tensors); returns the loss as a float."""
    loss = None
    # BEGIN SOLUTION (hint: clear the old gradients, compute the loss, backward, step)
    optimizer.zero_grad()         # else this step's gradients add to the last step's
    loss = model.loss(x, y)
    loss.backward()
    optimizer.step()
    # END SOLUTION
    return float(loss.item())


def accuracy(model, x, y):
    """Fraction of the rows of the array ``x`` whose highest score is the label in ``y``."""
    with mc.no_grad():
        scores = model.scores(mc.Tensor(x)).numpy()
    return float(np.mean(scores.argmax(axis=1) == y))


def load_data(n_train, n_test, synthetic=False, seed=0):
    """``(x_train, y_train, x_test, y_test)``: float32 rows of 784 pixels, int64 labels."""
    if synthetic:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((10, 784)).astype(np.float32)
        def sample(n):
            y = rng.integers(0, 10, n)
            return (centres[y] + 2.0 * rng.standard_normal((n, 784))).astype(np.float32), y
        return (*sample(n_train), *sample(n_test))
    from minicnn.data import FashionMNIST
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)

    def rows(images):
        return ((images.reshape(len(images), -1) / 255.0 - 0.286) / 0.353).astype(np.float32)
    return (rows(train.data[:n_train]), train.targets[:n_train].astype(np.int64),
            rows(test.data[:n_test]), test.targets[:n_test].astype(np.int64))


def train(model, x_train, y_train, x_test, y_test, epochs=3, batch_size=64, lr=0.05, seed=0,
          log=print, optimizer=None):
    """Mini-batch training; returns one record per epoch. ``optimizer`` defaults to minicnn's SGD
    with momentum 0.9 and the rate ``lr``; pass one of ``optimizers.py`` (Q7) to use yours."""
    if optimizer is None:
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    rng, history = np.random.default_rng(seed), []
    for epoch in range(1, epochs + 1):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            losses.append(train_step(model, optimizer, mc.Tensor(x_train[batch]),
                                     mc.Tensor(y_train[batch])))
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                  "test_acc": accuracy(model, x_test, y_test),
                  "seconds": time.perf_counter() - start}
        history.append(record)
        log(f"epoch {epoch}: loss {record['train_loss']:.3f}, test accuracy "
            f"{record['test_acc']:.1%} ({record['seconds']:.1f} s)")
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 2 epochs")
    parser.add_argument("--synthetic", action="store_true", help="a toy data set, no download")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights and the order of the batches")
    args = parser.parse_args(argv)
    n_train, n_test = (2000, 1000) if args.quick else (20000, 5000)
    data = load_data(n_train, n_test, synthetic=args.synthetic)
    model = TwoLayerNet(784, args.hidden, 10, activation=args.activation, seed=args.seed)
    return train(model, *data, epochs=args.epochs or (2 if args.quick else 5), lr=args.lr,
                 seed=args.seed)


if __name__ == "__main__":
    main()
