"""Time to accuracy: seconds until the default model reaches 90% test accuracy on Fashion-MNIST.

    python benchmarks/train_fashion.py [--device cpu|cuda] [--quick] [--epochs N] [--json OUT]
                                       [--threads 2] [--no-torch]

The recipe is `minicnn train`'s default for ``fashion_cnn`` (SGD, Nesterov momentum 0.9, lr 0.05,
weight decay 5e-4, batch 128, cosine schedule over the epochs). Test accuracy is measured after
every epoch; the clock counts training and evaluation, and each epoch's training time is also
recorded alone (``train_seconds``; the table gives the median, the first epoch aside). With
PyTorch installed, the same recipe runs on a PyTorch twin of the same network (same initial
weights, same batches, same device) for comparison. On ``--device cuda`` the data sets live on
the GPU: batches are gathered there and nothing is read back during an epoch (the label checks
wait for its end, as in ``Trainer``). ``--quick`` trains on 10,000 images for 2 epochs with an
85% target, in about a minute on two CPU cores.
"""
import argparse
import math
import statistics
import time

import _common  # (pins threads before numpy loads)
from _common import add_common_arguments, load_torch, machine, print_table, write_json

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, checks, models, optim
from minicnn.data import FashionMNIST


def run(framework, train, test, epochs, target, device="cpu", torch=None):
    """Train ``fashion_cnn`` with the recipe on ``device``; the data sets are copied there once,
    each epoch's shuffled order once, and each batch is gathered there (no host copy per step).
    Returns the time to ``target`` and, per epoch, the test accuracy, the seconds so far and
    the seconds of that epoch's training alone (the device synchronised at its end)."""
    mc.manual_seed(0)
    model = models.get("fashion_cnn")
    (x_train, y_train), (x_test, y_test) = train, test
    steps = epochs * math.ceil(len(x_train) / 128)
    lr0 = 0.05
    if framework == "torch":
        from _torch_mirror import mirror
        dev = "cuda" if device == "cuda" else "cpu"
        net = mirror(model, torch).to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=lr0, momentum=0.9, nesterov=True, weight_decay=5e-4)
        put = lambda a: torch.from_numpy(a).to(dev)  # noqa: E731
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

        def train_step(xb, yb):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()

        def hits(xb, yb):
            return (net(xb).argmax(1) == yb).sum()

        def evaluate(xs, ys):
            net.eval()
            with torch.no_grad():
                total = sum(hits(xs[i:i + 1000], ys[i:i + 1000]) for i in range(0, len(ys), 1000))
            net.train()
            return int(total.item()) / len(ys)
    else:
        net = model.to(device)
        opt = optim.SGD(net.parameters(), lr=lr0, momentum=0.9, nesterov=True, weight_decay=5e-4)
        put = lambda a: backend.to_device(a, device)  # noqa: E731
        sync = lambda: _common.sync(device)  # noqa: E731

        def train_step(xb, yb):
            opt.zero_grad()
            F.cross_entropy(net(mc.Tensor(xb)), yb).backward()
            opt.step()

        def evaluate(xs, ys):
            net.eval()
            with mc.no_grad():
                total = sum((net(mc.Tensor(xs[i:i + 1000])).data.argmax(1) == ys[i:i + 1000]).sum()
                            for i in range(0, len(ys), 1000))
            net.train()
            return int(total) / len(ys)  # the one read-back of the evaluation

    x_train, y_train, x_test, y_test = (put(a) for a in (x_train, y_train, x_test, y_test))
    rng = np.random.default_rng(0)
    step, start, history, reached = 0, time.perf_counter(), [], None
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        order = put(rng.permutation(len(y_train)))  # the same batches in both frameworks
        with checks.deferred_checks():  # label checks at the epoch's end, not a sync per step
            for i in range(0, len(y_train), 128):
                for g in opt.param_groups:  # cosine, per step
                    g["lr"] = 0.5 * lr0 * (1 + math.cos(math.pi * step / steps))
                idx = order[i:i + 128]
                train_step(x_train[idx], y_train[idx])
                step += 1
        sync()
        train_seconds = time.perf_counter() - epoch_start
        acc = evaluate(x_test, y_test)
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "test_acc": acc, "seconds": elapsed, "train_seconds": train_seconds})
        print(f"  {framework:<8} epoch {epoch}: test accuracy {acc:.4f} at {elapsed:.1f} s "
              f"(training {train_seconds:.2f} s)", flush=True)
        if reached is None and acc >= target:
            reached = elapsed
            break
    return {"framework": framework, "device": device, "seconds_to_target": reached, "history": history}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch = load_torch(args)
    train_set, test_set = FashionMNIST(train=True), FashionMNIST(train=False)
    x_train = train_set.data.astype(np.float32) / 255.0
    x_test = test_set.data.astype(np.float32) / 255.0
    y_train, y_test = train_set.targets, test_set.targets
    if args.quick:
        x_train, y_train = x_train[:10000], y_train[:10000]
    epochs = args.epochs or (2 if args.quick else 8)
    target = 0.85 if args.quick else 0.90
    data = (x_train, y_train), (x_test, y_test)
    results = []
    for framework in ["minicnn"] + (["torch"] if torch is not None else []):
        results.append(run(framework, *data, epochs, target, args.device, torch))
        write_json(args.json, {"machine": machine(), "device": args.device, "epochs": epochs, "target": target,
                               "results": results})  # after each framework: a time limit keeps what ran
    rows = [[r["framework"], r["device"], f"{target:.0%}",
             f"{r['seconds_to_target']:.0f} s" if r["seconds_to_target"] else "not reached",
             f"{r['history'][-1]['test_acc']:.4f}", len(r["history"]),
             f"{median_epoch(r):.2f} s"] for r in results]
    print()
    print_table(["framework", "device", "target", "time to target", "last test acc", "epochs",
                 "training s/epoch"], rows)


def median_epoch(result):
    """The median training time of an epoch, the first (compiling kernels, warming caches) aside
    when there are others."""
    times = [h["train_seconds"] for h in result["history"]]
    return statistics.median(times[1:] or times)


if __name__ == "__main__":
    main()
