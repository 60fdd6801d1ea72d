"""Issue 29's "must hold": PyTorch's "What is torch.nn really?" tutorial runs with only ``torch``
replaced by ``minicnn`` and learns as it does in PyTorch. Its code is in
``what_is_torch_nn_really.py``; the data are 28x28 images made here: ten classes, each a blurred
random pattern plus noise, so that the logistic models and the CNNs all have something to learn."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.utils.data import DataLoader, TensorDataset

from what_is_torch_nn_really import run

EPOCHS = 3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((10, 7, 7))
    patterns = np.kron(coarse, np.ones((4, 4))).reshape(10, 784)        # blocks of 4x4 pixels

    def make(n):
        y = rng.integers(0, 10, n)
        x = 0.5 * patterns[y] + 0.5 * rng.standard_normal((n, 784))
        return x.astype(np.float32), y.astype(np.int64)

    x_train, y_train = make(1200)
    x_valid, y_valid = make(300)
    w0 = (rng.standard_normal((784, 10)) / math.sqrt(784)).astype(np.float32)
    return x_train, y_train, x_valid, y_valid, w0


def _minicnn_run():
    mc.manual_seed(0)
    return run(mc, nn, F, optim, TensorDataset, DataLoader, *_data(), epochs=EPOCHS)


def test_the_tutorial_runs_and_learns_with_minicnn():
    log = _minicnn_run()
    assert log["start"] > 2.0                                   # about log(10) at the start
    for stage in ("scratch", "module", "linear", "cnn", "sequential"):
        assert log[stage] < 0.5 * log["start"], (stage, log)
    assert log["scratch_acc"] > 0.9


def test_it_learns_as_it_does_in_pytorch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TorchLoader, TensorDataset as TorchDataset
    torch.manual_seed(0)
    theirs = run(torch, torch.nn, torch.nn.functional, torch.optim, TorchDataset, TorchLoader,
                 *_data(), epochs=EPOCHS)
    mine = _minicnn_run()
    # Same first weights, same batches, same updates: the same numbers, to float32 rounding.
    for stage in ("start", "scratch", "scratch_acc", "module"):
        assert mine[stage] == pytest.approx(theirs[stage], rel=1e-4, abs=1e-5), stage
    # Random initialisation and shuffling differ between the frameworks: both learn.
    for stage in ("linear", "cnn", "sequential"):
        assert max(mine[stage], theirs[stage]) < 0.5 * theirs["start"], (stage, mine, theirs)
