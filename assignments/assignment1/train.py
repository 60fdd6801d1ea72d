"""Train a small CNN on Fashion-MNIST with the layers you wrote in ``layers.py``.

    python train.py --quick          # 1000 training images, 3 epochs: a few seconds
    python train.py                  # all 60000 images, 5 epochs: about a minute per epoch
    python train.py --quick --synthetic   # no data set needed: a toy problem of striped images

The network (about 9,000 parameters)::

    input (N, 1, 28, 28)
    conv 3x3, 8 filters, pad 1  -> relu -> max pool 2x2     (N, 8, 14, 14)
    conv 3x3, 16 filters, pad 1 -> relu -> max pool 2x2     (N, 16, 7, 7)
    affine 784 -> 10                                        (N, 10) class scores
    softmax loss

trained by stochastic gradient descent with momentum. Nothing here is new: the forward pass calls
your ``*_forward`` functions in order, the backward pass calls your ``*_backward`` functions in the
reverse order, passing each one the gradient the next layer returned. That is all backpropagation
is. After two or three epochs on the full data set this network reaches about 88% test accuracy.
"""
import argparse
import time

import numpy as np

import layers

#: Mean and standard deviation of Fashion-MNIST pixels (scaled to [0, 1]).
PIXEL_MEAN, PIXEL_STD = 0.286, 0.353


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------

def load_fashion_mnist(root=None):
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 1, 28, 28) and int64 labels."""
    from minicnn.data import FashionMNIST

    train, test = FashionMNIST(root=root, train=True), FashionMNIST(root=root, train=False)
    return train.data, train.targets, test.data, test.targets


def make_synthetic(n, seed=0):
    """A toy stand-in for Fashion-MNIST: class k is a bright horizontal bar at row 2k + 4, in noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 60, (n, 1, 28, 28))
    for k in range(10):
        x[y == k, 0, 2 * k + 4:2 * k + 6, 4:24] += 150
    return x.astype(np.uint8), y.astype(np.int64)


def normalize(images):
    """uint8 images to float64 with about zero mean and unit variance."""
    return (images.astype(np.float64) / 255.0 - PIXEL_MEAN) / PIXEL_STD


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------

def init_params(seed=0):
    """He initialisation: weights drawn with variance 2 / fan_in, biases zero."""
    rng = np.random.default_rng(seed)

    def he(*shape):
        fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {"w1": he(8, 1, 3, 3), "b1": np.zeros(8),
            "w2": he(16, 8, 3, 3), "b2": np.zeros(16),
            "w3": he(10, 16 * 7 * 7), "b3": np.zeros(10)}


def conv_functions(kind):
    """The forward and backward convolution to use: ``"im2col"`` (fast) or ``"naive"`` (slow)."""
    if kind == "naive":
        return layers.conv_forward_naive, layers.conv_backward_naive
    return layers.conv_forward_im2col, layers.conv_backward_im2col


def scores_and_caches(params, x, conv="im2col", dropout=0.0, train=False, seed=None):
    """The forward pass: class scores (N, 10) and the caches of every layer, in order.

    With ``dropout > 0``, your ``dropout_forward`` (Q7) runs before the affine layer (active only
    when ``train``; ``seed`` draws its mask).
    """
    conv_forward, _ = conv_functions(conv)
    h, c1 = conv_forward(x, params["w1"], params["b1"], stride=1, pad=1)
    h, r1 = layers.relu_forward(h)
    h, p1 = layers.max_pool_forward(h, size=2, stride=2)
    h, c2 = conv_forward(h, params["w2"], params["b2"], stride=1, pad=1)
    h, r2 = layers.relu_forward(h)
    h, p2 = layers.max_pool_forward(h, size=2, stride=2)
    drop = None
    if dropout > 0:
        h, drop = layers.dropout_forward(h, dropout, train=train, seed=seed)
    scores, a3 = layers.affine_forward(h, params["w3"], params["b3"])
    return scores, (c1, r1, p1, c2, r2, p2, drop, a3)


def loss_and_grads(params, x, y, conv="im2col", dropout=0.0, seed=None):
    """Forward and backward pass on one batch: ``(loss, grads, scores)``."""
    _, conv_backward = conv_functions(conv)
    scores, (c1, r1, p1, c2, r2, p2, drop, a3) = scores_and_caches(params, x, conv, dropout,
                                                                   train=True, seed=seed)
    loss, d = layers.softmax_loss(scores, y)
    grads = {}
    d, grads["w3"], grads["b3"] = layers.affine_backward(d, a3)
    if drop is not None:
        d = layers.dropout_backward(d, drop)
    d = layers.max_pool_backward(d, p2)
    d = layers.relu_backward(d, r2)
    d, grads["w2"], grads["b2"] = conv_backward(d, c2)
    d = layers.max_pool_backward(d, p1)
    d = layers.relu_backward(d, r1)
    _, grads["w1"], grads["b1"] = conv_backward(d, c1)
    return loss, grads, scores


def accuracy(params, x, y, batch_size=500, conv="im2col"):
    """Fraction of correctly classified images, in batches to bound memory."""
    correct = 0
    for start in range(0, len(x), batch_size):
        scores, _ = scores_and_caches(params, normalize(x[start:start + batch_size]), conv)
        correct += int(np.sum(scores.argmax(axis=1) == y[start:start + batch_size]))
    return correct / len(x)


def sgd_momentum(params, grads, velocity, lr, momentum=0.9):
    """One step of SGD with momentum: ``v = momentum * v - lr * g``; ``p += v``."""
    for name in params:
        velocity[name] = momentum * velocity.get(name, 0.0) - lr * grads[name]
        params[name] += velocity[name]


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------

def train(x_train, y_train, x_test, y_test, epochs=5, batch_size=64, lr=0.01, seed=0,
          conv="im2col", max_steps=None, dropout=0.0, log=print):
    """Train the network; returns ``(params, history)``, one history record per epoch."""
    params, velocity = init_params(seed), {}
    rng = np.random.default_rng(seed)
    history, step = [], 0
    for epoch in range(1, epochs + 1):
        start, losses, correct = time.perf_counter(), [], 0
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            x, y = normalize(x_train[batch]), y_train[batch]
            loss, grads, scores = loss_and_grads(params, x, y, conv, dropout, seed=seed * 100003 + step)
            sgd_momentum(params, grads, velocity, lr)
            losses.append(loss)
            correct += int(np.sum(scores.argmax(axis=1) == y))
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        seen = min(len(order), step * batch_size) if epoch == 1 else len(order)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                  "train_acc": correct / max(1, min(seen, len(order))),
                  "test_acc": accuracy(params, x_test, y_test, conv=conv),
                  "seconds": time.perf_counter() - start}
        history.append(record)
        log(f"epoch {epoch}: loss {record['train_loss']:.3f}, train accuracy "
            f"{record['train_acc']:.1%}, test accuracy {record['test_acc']:.1%} "
            f"({record['seconds']:.1f} s)")
        if max_steps is not None and step >= max_steps:
            break
    return params, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1000 training and 500 test images, 3 epochs (seconds)")
    parser.add_argument("--synthetic", action="store_true",
                        help="a toy data set of striped images instead of Fashion-MNIST")
    parser.add_argument("--data", default=None, help="folder holding the Fashion-MNIST files")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--conv", choices=["im2col", "naive"], default="im2col",
                        help="which of your convolutions to use (naive is very slow)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout probability before the last layer (your Q7; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.synthetic:
        (x_train, y_train), (x_test, y_test) = make_synthetic(6000, 1), make_synthetic(1000, 2)
    else:
        try:
            x_train, y_train, x_test, y_test = load_fashion_mnist(args.data)
        except Exception as error:
            parser.exit(1, f"could not load Fashion-MNIST: {error}\n"
                           f"(use --data FOLDER, or --synthetic to try the code without it)\n")
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:1000], y_train[:1000], x_test[:500], y_test[:500]
    epochs = args.epochs or (3 if args.quick else 5)
    print(f"training on {len(x_train)} images, testing on {len(x_test)}, {epochs} epochs")
    _, history = train(x_train, y_train, x_test, y_test, epochs=epochs, batch_size=args.batch_size,
                       lr=args.lr, seed=args.seed, conv=args.conv, max_steps=args.max_steps,
                       dropout=args.dropout)
    return history


if __name__ == "__main__":
    main()
