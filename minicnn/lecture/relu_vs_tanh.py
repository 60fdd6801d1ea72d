"""ReLU vs tanh (Krizhevsky et al. 2012, Fig. 1): "a four-layer convolutional neural network with
ReLUs reaches a 25% training error rate on CIFAR-10 six times faster than an equivalent network
with tanh neurons".

Here the same small CNN (conv 5x5 - act - pool - conv 5x5 - act - pool - FC - act - FC, no batch
norm, PyTorch's default initialisation, the same seed) is trained once with ReLU and once with
tanh on Fashion-MNIST, by plain SGD with the same learning rate and the same batches. The training
error is recorded every few steps (the error on the batches of those steps, as the paper's curve)
and the experiment reports how many steps each network needs to reach 25%, 20% and 15% training
error, and their ratio.

The argument for ReLU: tanh saturates -- for large inputs its derivative vanishes, so units far
from 0 learn slowly -- while ReLU's derivative is 1 wherever the unit is active. Whether that makes
a difference depends on how far into saturation the tanh units are driven (initialisation, input
scale, depth, learning rate): on this small network and data set, with normalised inputs and
PyTorch's default initialisation, the measured gap is small (see the JSON's
``speedup_tanh_over_relu``), which is itself worth discussing next to the paper's figure.
"""
import math

from .. import nn
from ..data import DataLoader
from ..optim import SGD
from .common import StepsLoader, figure, first_reaching, load_fashion, normalize_transform, train

FULL = dict(train_size=10000, epochs=5, batch_size=32, lr=0.01, momentum=0.0, log_every=10, smooth=5,
            widths=(16, 32), hidden=64)
QUICK = dict(train_size=256, epochs=1, batch_size=32, lr=0.01, momentum=0.0, log_every=2, smooth=2,
             widths=(4, 8), hidden=16)
TARGETS = (0.25, 0.20, 0.15)


class SmallCNN(nn.Module):
    """conv5x5(c1) - act - maxpool - conv5x5(c2) - act - maxpool - FC(hidden) - act - FC(10)."""

    def __init__(self, activation="relu", widths=(16, 32), hidden=64, num_classes=10, in_channels=1):
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        c1, c2 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), act(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), act(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), act(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def run(ctx):
    from .. import rng
    cfg = ctx.config(QUICK, FULL)
    train_set, _, _ = load_fashion(ctx, cfg["train_size"], 100)
    bs, every = cfg["batch_size"], cfg["log_every"]
    steps_per_epoch = math.ceil(len(train_set) / bs)
    rounds = max(1, cfg["epochs"] * steps_per_epoch // every)
    ctx.print(f"data: {len(train_set)} training images ({ctx.data_source}); SGD lr {cfg['lr']}, "
              f"momentum {cfg['momentum']}, batch {bs}, {rounds * every} steps "
              f"({rounds * every / steps_per_epoch:.1f} epochs); training error every {every} steps, "
              f"a target counts as reached when the error over the last {cfg['smooth'] * every} steps is below it")

    runs = {}
    for act in ("relu", "tanh"):
        rng.manual_seed(ctx.seed)  # the same initial draw and the same batches for both
        model = SmallCNN(act, cfg["widths"], cfg["hidden"])
        loader = StepsLoader(DataLoader(train_set, batch_size=bs, shuffle=True,
                                        transform=normalize_transform()), every)
        opt = SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
        history = train(ctx, model, loader, None, epochs=rounds, optimizer=opt, label=act,
                        verbose=False)
        errors = [1 - r["train_acc"] for r in history]
        k = cfg["smooth"]  # the error of the last k * every steps: one batch's error is noisy
        smoothed = [sum(errors[max(0, i - k + 1):i + 1]) / len(errors[max(0, i - k + 1):i + 1])
                    for i in range(len(errors))]
        reach = {}
        for t in TARGETS:
            i = first_reaching(smoothed, t)
            reach[f"{t:g}"] = None if i is None else (i + 1) * every
        runs[act] = {"steps": [(i + 1) * every for i in range(len(errors))], "train_error": errors,
                     "train_error_smoothed": smoothed, "steps_to_target": reach,
                     "final_train_error": smoothed[-1], "seconds": sum(r["seconds"] for r in history)}
        ctx.print(f"{act}: training error {100 * smoothed[-1]:.1f}% over the last {k * every} of "
                  f"{rounds * every} steps; "
                  + ", ".join(f"{100 * float(t):.0f}% reached at "
                              f"{'step ' + str(s) if s is not None else 'never'}" for t, s in reach.items()))

    ctx.print(f"\n{'target training error':<22} {'ReLU steps':>11} {'tanh steps':>11} {'tanh / ReLU':>12}")
    speedup = {}
    for t in TARGETS:
        key = f"{t:g}"
        r, h = runs["relu"]["steps_to_target"][key], runs["tanh"]["steps_to_target"][key]
        if r is not None and h is not None:
            speedup[key] = h / r
            ratio = f"{h / r:.1f}x"
        elif r is not None:
            speedup[key] = None
            ratio = f"> {rounds * every / r:.1f}x"
        elif h is not None:
            speedup[key] = None
            ratio = f"< {h / (rounds * every):.1f}x"
        else:
            speedup[key] = None
            ratio = "-"
        ctx.print(f"{100 * t:>20.0f}%  {r if r is not None else 'never':>11} "
                  f"{h if h is not None else 'never':>11} {ratio:>12}")
    _plot(ctx, runs, steps_per_epoch)
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "steps_per_epoch": steps_per_epoch, "targets": list(TARGETS), "runs": runs,
            "speedup_tanh_over_relu": speedup}


def _plot(ctx, runs, steps_per_epoch):
    fig = figure(7, 4.2)
    if fig is None:
        return
    ax = fig.subplots()
    styles = {"relu": ("-", "C0", "ReLU"), "tanh": ("--", "C3", "tanh")}
    for act, r in runs.items():
        ls, color, label = styles[act]
        ax.plot(r["steps"], [100 * e for e in r["train_error"]], ls, color=color, alpha=0.3, lw=0.8)
        ax.plot(r["steps"], [100 * e for e in r["train_error_smoothed"]], ls, color=color, label=label)
    ax.axhline(25, color="gray", lw=0.8, ls=":")
    ax.set(xlabel=f"SGD steps ({steps_per_epoch} per epoch)", ylabel="training error (%)",
           title="the same CNN with ReLU and with tanh units", ylim=(0, 100))
    ax.grid(True, alpha=0.3)
    ax.legend()
    ctx.save_figure(fig, "relu_vs_tanh.png")
