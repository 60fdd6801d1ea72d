"""Time to accuracy: seconds until the default model reaches 90% test accuracy on Fashion-MNIST.

    python benchmarks/train_fashion.py [--quick] [--json OUT] [--threads 2] [--no-torch]

The recipe is `minicnn train`'s default for ``fashion_cnn`` (SGD, Nesterov momentum 0.9, lr 0.05,
weight decay 5e-4, batch 128, cosine schedule over the epochs). Test accuracy is measured after
every epoch; the clock counts training and evaluation. With PyTorch installed, the same recipe runs
on a PyTorch twin of the same network (same initial weights, same batches) for comparison.
``--quick`` trains on 10,000 images for 2 epochs with an 85% target, in about a minute.
"""
import argparse
import math
import time

import _common  # noqa: F401  (pins threads before numpy loads)
from _common import add_common_arguments, load_torch, machine, print_table, write_json

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import models, optim
from minicnn.data import FashionMNIST


def batches(images, labels, batch, rng):
    order = rng.permutation(len(images))
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        yield images[idx], labels[idx]


def run(framework, train, test, epochs, target, torch=None):
    mc.manual_seed(0)
    model = models.get("fashion_cnn")
    x_train, y_train = train
    x_test, y_test = test
    steps = epochs * math.ceil(len(x_train) / 128)
    lr0 = 0.05
    if framework == "torch":
        from _torch_mirror import mirror
        net = mirror(model, torch)
        opt = torch.optim.SGD(net.parameters(), lr=lr0, momentum=0.9, nesterov=True, weight_decay=5e-4)

        def train_step(xb, yb):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            opt.step()

        def accuracy():
            net.eval()
            with torch.no_grad():
                pred = np.concatenate([net(torch.from_numpy(x_test[i:i + 1000])).argmax(1).numpy()
                                       for i in range(0, len(x_test), 1000)])
            net.train()
            return float((pred == y_test).mean())
    else:
        net = model
        opt = optim.SGD(net.parameters(), lr=lr0, momentum=0.9, nesterov=True, weight_decay=5e-4)

        def train_step(xb, yb):
            opt.zero_grad()
            F.cross_entropy(net(mc.Tensor(xb)), yb).backward()
            opt.step()

        def accuracy():
            net.eval()
            with mc.no_grad():
                pred = np.concatenate([net(mc.Tensor(x_test[i:i + 1000])).data.argmax(1)
                                       for i in range(0, len(x_test), 1000)])
            net.train()
            return float((pred == y_test).mean())

    def set_lr(lr):  # both optimizers keep their rate in param_groups
        for g in opt.param_groups:
            g["lr"] = lr

    rng = np.random.default_rng(0)
    step, start, history, reached = 0, time.perf_counter(), [], None
    for epoch in range(1, epochs + 1):
        for xb, yb in batches(x_train, y_train, 128, rng):
            set_lr(0.5 * lr0 * (1 + math.cos(math.pi * step / steps)))  # cosine, per step
            train_step(xb, yb)
            step += 1
        acc = accuracy()
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "test_acc": acc, "seconds": elapsed})
        print(f"  {framework:<8} epoch {epoch}: test accuracy {acc:.4f} at {elapsed:.0f} s", flush=True)
        if reached is None and acc >= target:
            reached = elapsed
            break
    return {"framework": framework, "seconds_to_target": reached, "history": history}


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
    results = [run("minicnn", (x_train, y_train), (x_test, y_test), epochs, target)]
    if torch is not None:
        results.append(run("torch", (x_train, y_train), (x_test, y_test), epochs, target, torch))
    rows = [[r["framework"], f"{target:.0%}",
             f"{r['seconds_to_target']:.0f} s" if r["seconds_to_target"] else "not reached",
             f"{r['history'][-1]['test_acc']:.4f}", len(r["history"])] for r in results]
    print()
    print_table(["framework", "target", "time to target", "last test acc", "epochs"], rows)
    write_json(args.json, {"machine": machine(), "epochs": epochs, "target": target, "results": results})


if __name__ == "__main__":
    main()
