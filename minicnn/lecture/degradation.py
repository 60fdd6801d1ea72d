"""The degradation problem (He et al. 2016, Fig. 1 and Fig. 6): a deeper *plain* network trains
worse than a shallower one -- its *training* error is higher, so this is not overfitting -- while
the residual versions of the same networks do not degrade.

Four CIFAR-style networks (``models.plain20``, ``plain56``, ``resnet20``, ``resnet56``, built by
``models.resnet_cifar`` at half width, see below: the same layers, with or without identity
shortcuts, batch norm in both) are trained on a subset of
Fashion-MNIST (28x28x1; the global average pooling makes them accept it) with the same recipe;
the figure shows training error dashed and test error solid against iterations, as the lecture's.

A second figure looks at the gradients at initialisation: one forward/backward pass on one batch,
then the norm of each conv weight's gradient against its depth. Printed for each net: the ratio
of the first conv layer's gradient norm to the last one's, and the spread (max/min) over all conv
layers. A ratio far from 1 means that the gradient changes magnitude as it travels back through
the layers. With batch norm the plain nets' gradients do not vanish -- as He et al. note, BN keeps
them healthy in that sense -- they *grow* exponentially towards the input (deep BN nets are known
to have exploding gradients at initialisation), while through the shortcuts the residual nets'
gradients keep roughly the same size in every block.

Sized for a two-core CPU: 10,000 training images, 3 epochs (468 steps), 8-16-32 filters instead of
the paper's 16-32-64 (a quarter of the compute, the same depth, which is what the experiment is
about); 17 to 30 minutes on a two-core CPU (17 measured on a lightly loaded machine; ``--subset``,
``--epochs`` to change it). The progress lines count *rounds* (two per epoch, each followed by an
evaluation), so 3 epochs show as ``round 1/6`` ... ``round 6/6``.
The same recipe for all four: SGD with momentum, the learning rate warmed up from 0.01 to 0.1 over
the first half epoch (as He et al. do for their deepest net), then a cosine decay.

Measured with seed 0 (training error on 1,000 training images in eval mode / test error on 1,000
test images): plain20 15.2% / 16.0%, plain56 43.9% / 45.5%, resnet20 14.4% / 16.0%, resnet56
12.4% / 15.3%. Gradient norm ratio first/last conv at initialisation: plain20 15, plain56 3,430,
resnet20 2.8, resnet56 48 (12.5 without the stem conv; plain56: 2,900).
"""
import math
import time

import numpy as np

from .. import backend, models, nn
from ..data import DataLoader
from ..optim.lr_scheduler import CosineAnnealingLR, LinearWarmup, SequentialLR
from ..optim import SGD
from ..tensor import Tensor
from .common import StepsLoader, figure, load_fashion, normalize_transform, random_subset, train

FULL = dict(depths=(20, 56), widths=(8, 16, 32), train_size=10000, test_size=1000, epochs=3,
            batch_size=64, lr=0.1, rounds_per_epoch=2, grad_batch=32)
QUICK = dict(depths=(8, 14), widths=(4, 4, 8), train_size=64, test_size=32, epochs=1,
             batch_size=32, lr=0.1, rounds_per_epoch=2, grad_batch=8)


def build(depth, residual, widths, seed):
    from .. import rng
    rng.manual_seed(seed)  # every net starts from the same random stream
    return models.resnet_cifar(depth, num_classes=10, in_channels=1, shortcut=residual, widths=widths)


def gradient_norms(model, x, y, device):
    """Norm of every conv weight's gradient after one forward/backward pass (training mode)."""
    from ..functional import cross_entropy
    model.train()
    model.zero_grad()
    loss = cross_entropy(model(Tensor(backend.to_device(x, device))), backend.to_device(y, device))
    loss.backward()
    norms = [float(np.linalg.norm(backend.to_numpy(m.weight.grad.data).ravel()))
             for _, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    model.zero_grad()
    return norms


def run(ctx):
    cfg = ctx.config(QUICK, FULL)
    train_set, test_set, _ = load_fashion(ctx, cfg["train_size"], cfg["test_size"])
    transform = normalize_transform()
    bs = cfg["batch_size"]
    steps_per_epoch = math.ceil(len(train_set) / bs)
    rounds = cfg["epochs"] * cfg["rounds_per_epoch"]
    steps_per_round = max(1, steps_per_epoch // cfg["rounds_per_epoch"])
    total_steps = rounds * steps_per_round
    test_loader = DataLoader(test_set, batch_size=256, transform=transform)
    train_eval_loader = DataLoader(random_subset(train_set, cfg["test_size"], ctx.seed + 2),
                                   batch_size=256, transform=transform)
    gx, gy = next(iter(DataLoader(train_set, batch_size=cfg["grad_batch"], transform=transform)))

    ctx.print(f"data: {len(train_set)} training / {len(test_set)} test images ({ctx.data_source}); "
              f"widths {cfg['widths']}, batch {bs}, SGD momentum 0.9, lr {cfg['lr']} (linear warm-up from "
              f"{cfg['lr'] / 10:g} over the first {min(steps_per_round, total_steps - 1)} steps, then cosine to 0), "
              f"weight decay 1e-4, {cfg['epochs']} epoch(s) = {total_steps} steps, "
              f"evaluated every {steps_per_round} steps: {rounds} rounds per net (the progress "
              f"lines count rounds)")
    nets = [(f"{'resnet' if residual else 'plain'}{d}", d, residual)
            for residual in (False, True) for d in cfg["depths"]]
    results = {}
    for name, depth, residual in nets:
        model = build(depth, residual, cfg["widths"], ctx.seed)
        model.to(ctx.device)
        norms = gradient_norms(model, gx, gy, ctx.device)
        ctx.print(f"\n{name}: {sum(p.numel() for p in model.parameters()):,} parameters; "
                  f"gradient norm at init, first conv / last conv = {norms[0] / norms[-1]:.3g}")
        loader = StepsLoader(DataLoader(train_set, batch_size=bs, shuffle=True, transform=transform),
                             steps_per_round)
        opt = SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=1e-4)
        warmup = min(steps_per_round, total_steps - 1)  # lr/10 -> lr over the first round, then cosine to 0
        sched = SequentialLR(opt, [LinearWarmup(opt, start_factor=0.1, total_iters=warmup),
                                   CosineAnnealingLR(opt, T_max=total_steps - warmup)], milestones=[warmup])
        start, cpu_start = time.perf_counter(), time.process_time()
        history = train(ctx, model, loader, test_loader, epochs=rounds, optimizer=opt, scheduler=sched,
                        scheduler_interval="step", label=name)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        from ..train import evaluate
        final_train = evaluate(model, train_eval_loader, device=ctx.device, topk=(1,))["top1"]
        curve = [{"step": (i + 1) * steps_per_round, "epoch": (i + 1) * steps_per_round / steps_per_epoch,
                  "train_error": 1 - r["train_acc"], "test_error": 1 - r["test_acc"]}
                 for i, r in enumerate(history)]
        results[name] = {"depth": depth, "residual": residual,
                         "params": sum(p.numel() for p in model.parameters()),
                         "curve": curve, "final_train_error": 1 - final_train,
                         "final_running_train_error": curve[-1]["train_error"],
                         "final_test_error": curve[-1]["test_error"], "train_seconds": seconds,
                         "train_cpu_seconds": cpu_seconds,
                         "grad_norms": norms, "grad_ratio_first_last": norms[0] / norms[-1],
                         "grad_spread_max_min": max(norms) / min(norms)}

    shallow, deep = cfg["depths"]
    ctx.print(f"\n{'net':<10} {'train err (last round)':>22} {'train err (eval)':>17} {'test err':>9} "
              f"{'grad first/last':>16} {'grad max/min':>13} {'time':>8}")
    for name, r in results.items():
        ctx.print(f"{name:<10} {100 * r['final_running_train_error']:>21.2f}% {100 * r['final_train_error']:>16.2f}% "
                  f"{100 * r['final_test_error']:>8.2f}% {r['grad_ratio_first_last']:>16.3g} "
                  f"{r['grad_spread_max_min']:>13.3g} {r['train_seconds']:>7.0f}s")
    p_s, p_d = results[f"plain{shallow}"], results[f"plain{deep}"]
    r_s, r_d = results[f"resnet{shallow}"], results[f"resnet{deep}"]
    checks = {"plain_deeper_trains_worse": p_d["final_train_error"] > p_s["final_train_error"],
              "residual_deeper_not_worse": r_d["final_train_error"] <= r_s["final_train_error"] + 0.005,
              "plain_gradient_spread_larger": p_d["grad_spread_max_min"] > r_d["grad_spread_max_min"]}
    ctx.print(f"\nplain{deep} vs plain{shallow}: training error {100 * p_d['final_train_error']:.2f}% vs "
              f"{100 * p_s['final_train_error']:.2f}%  -> "
              + ("degradation: the deeper plain net trains worse" if checks["plain_deeper_trains_worse"]
                 else "no degradation in this run"))
    ctx.print(f"resnet{deep} vs resnet{shallow}: training error {100 * r_d['final_train_error']:.2f}% vs "
              f"{100 * r_s['final_train_error']:.2f}%  -> "
              + ("the deeper residual net is not worse" if checks["residual_deeper_not_worse"]
                 else "the deeper residual net is worse in this run"))
    ctx.print(f"gradient norms at init (first/last conv): plain{deep} {p_d['grad_ratio_first_last']:.3g}, "
              f"resnet{deep} {r_d['grad_ratio_first_last']:.3g}; spread over the layers (max/min): "
              f"plain{deep} {p_d['grad_spread_max_min']:.3g}, resnet{deep} {r_d['grad_spread_max_min']:.3g}")

    _plot_errors(ctx, results, cfg["depths"])
    _plot_grads(ctx, results)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    config.update(steps_per_epoch=steps_per_epoch, steps_per_round=steps_per_round, total_steps=total_steps,
                  optimizer="SGD momentum 0.9, weight decay 1e-4; lr warm-up (x0.1 -> x1) over the first "
                            "round, then cosine to 0, per step")
    return {"config": config, "nets": results, "checks": checks}


def _plot_errors(ctx, results, depths):
    fig = figure(11, 4.2)
    if fig is None:
        return
    axes = fig.subplots(1, 2, sharey=True)
    colors = {depths[0]: "C0", depths[1]: "C3"}
    for ax, residual, title in zip(axes, (False, True), ("plain networks", "residual networks (ResNet)")):
        for name, r in results.items():
            if r["residual"] != residual:
                continue
            steps = [c["step"] for c in r["curve"]]
            color = colors[r["depth"]]
            ax.plot(steps, [100 * c["train_error"] for c in r["curve"]], "--", color=color,
                    label=f"{name} train")
            ax.plot(steps, [100 * c["test_error"] for c in r["curve"]], "-", color=color,
                    label=f"{name} test")
        ax.set(title=title, xlabel="iterations")
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.suptitle("dashed: training error, solid: test error")
    ctx.save_figure(fig, "degradation.png")


def _plot_grads(ctx, results):
    fig = figure(7, 4.2)
    if fig is None:
        return
    ax = fig.subplots()
    depths = sorted({r["depth"] for r in results.values()})
    for name, r in results.items():
        norms = r["grad_norms"]
        color = "C0" if r["depth"] == depths[0] else "C3"
        ax.semilogy(range(1, len(norms) + 1), norms, "-" if r["residual"] else "--", marker=".", color=color,
                    alpha=1.0 if r["residual"] else 0.8,
                    label=f"{name} (first/last {r['grad_ratio_first_last']:.3g})")
    ax.set(xlabel="conv layer (1 = next to the input)", ylabel="|| dL/dW || at initialisation",
           title="gradient norm of each conv layer, one batch, at initialisation")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ctx.save_figure(fig, "gradient_norms.png")
