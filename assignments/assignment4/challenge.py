"""The challenge (ranked, not graded): the best Fashion-MNIST test accuracy in 120 CPU seconds.

Write ``train(images, labels, seconds)``: it receives Fashion-MNIST's 60,000 training images
(``uint8``, shape ``(60000, 1, 28, 28)``, values 0-255) and labels (``int64``, 0-9), and the CPU
seconds left of the budget; it trains any network you like with minicnn and returns a function
``predict(images) -> labels`` (an integer array, one label per image). The grader calls it on
the 10,000 test images, whose labels it keeps to itself, and ranks the class by accuracy.

The budget counts everything the grading process does for you, on one CPU core: starting Python,
loading the data, training and predicting. At the budget the process is killed (no accuracy), so
stop training early enough to predict (a few seconds for a small network). Your ``augment.py``
and ``finetune.py`` are there too: ``from augment import random_augment`` works.

Measure yourself (the same budget, on your machine; the grader's may be slower or faster)::

    python challenge.py
"""
import time

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim

#: The CPU budget of the final run (the grading kit's ``CHALLENGE`` decides it).
CPU_SECONDS = 120


def train(images, labels, seconds):
    """Train on ``images`` (uint8, (N, 1, 28, 28)) and ``labels`` (int64, (N,)) within ``seconds``
    CPU seconds; return ``predict(images) -> labels``."""
    # BEGIN SOLUTION (hint: time.process_time() tells how much CPU time is used; leave some for predict)
    # Baseline: two conv-bn-relu-pool stages, SGD with momentum, steps until the CPU time is up.
    stop = time.process_time() + seconds - 15          # keep 15 s for predicting 10,000 images
    mc.manual_seed(2024)                                # the same start every run
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    scaled = images.astype(np.float32) / 255.0
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    draw = np.random.default_rng(2024)
    model.train()                                       # batch norm: batch statistics
    while time.process_time() < stop:
        batch = draw.integers(0, len(scaled), 64)       # 64 images, with replacement
        loss = F.cross_entropy(model(mc.Tensor(scaled[batch])), mc.Tensor(labels[batch]))
        optimizer.zero_grad()                           # then one step of SGD
        loss.backward()                                 # with momentum
        optimizer.step()                                # on every parameter
    model.eval()                                        # batch norm: running statistics

    def predict(test_images):
        found = []
        with mc.no_grad():                              # no graph needed to predict
            for first in range(0, len(test_images), 500):
                chunk = test_images[first:first + 500].astype(np.float32) / 255.0
                found.append(model(mc.Tensor(chunk)).numpy().argmax(axis=1))
        return np.concatenate(found)
    return predict
    # END SOLUTION


if __name__ == "__main__":
    from minicnn.data import FashionMNIST
    start = time.process_time()
    training, test = FashionMNIST(train=True), FashionMNIST(train=False)
    predict = train(training.data, np.asarray(training.targets), CPU_SECONDS - time.process_time())
    predicted = np.asarray(predict(test.data))
    used = time.process_time() - start
    print(f"test accuracy {np.mean(predicted == test.targets):.2%} in {used:.1f} CPU seconds "
          f"(budget {CPU_SECONDS}){'  OVER THE BUDGET' if used > CPU_SECONDS else ''}")
