"""Transfer learning with few labels: fine-tune a pretrained network's head vs train from scratch.

1. Pretrain ``models.fashion_cnn`` on Fashion-MNIST classes 0-4 (T-shirt, trouser, pullover,
   dress, coat: all 30,000 training images) as a 5-way classifier.
2. The new task: classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), relabelled 0-4, with a
   small labelled budget: 50 images per class (and, for comparison, 10).
3. Compare, on the 5,000 test images of classes 5-9:
   * *head only*: the pretrained network with a new, freshly initialised 5-way output layer
     (``minicnn.train.replace_head``), everything else frozen (``train_only_head``): the conv
     layers are a fixed feature extractor and only a linear classifier is learned;
   * *from scratch*: the same architecture, randomly initialised, every layer trained on the
     small budget;
   * *fine-tune all* (for reference): the pretrained network with a new head, every layer trained.

Every method gets the same number of SGD steps on its budget, and each comparison is repeated over
a few draws of the labelled images (and of the new head); the mean, the range and the final
training accuracy are reported: with 250 images, one run is noisy.

Note that the new classes are footwear and bags while the pretraining classes are garments: how
well frozen features transfer depends on how related the tasks are, which is what the numbers of
this experiment are about.
"""
import numpy as np

from .. import models
from ..data import DataLoader, Subset
from ..train import evaluate, replace_head, train_only_head, trainable_parameters
from .common import figure, load_fashion, normalize_transform, per_class_subset, random_subset, train

FULL = dict(pretrain_size=30000, pretrain_epochs=3, per_class=50, extra_budgets=(10,), finetune_steps=300,
            batch_size=25, lr=0.02, test_size=None, repeats=3, cfg=None, hidden=128)
QUICK = dict(pretrain_size=200, pretrain_epochs=1, per_class=8, extra_budgets=(), finetune_steps=4,
             batch_size=20, lr=0.02, test_size=100, repeats=1, cfg=[4, "M", 8, "M"], hidden=16)
OLD, NEW = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def build(cfg, num_classes=5):
    return models.fashion_cnn(num_classes=num_classes, cfg=cfg["cfg"], hidden=cfg["hidden"])


def run(ctx):
    from .. import rng
    cfg = ctx.config(QUICK, FULL, epochs="pretrain_epochs", size="pretrain_size")
    train_set, test_set, classes = load_fashion(ctx)
    transform = normalize_transform()

    old_train = random_subset(Subset.of_classes(train_set, OLD, relabel=True), cfg["pretrain_size"], ctx.seed)
    old_test = random_subset(Subset.of_classes(test_set, OLD, relabel=True), cfg["test_size"] or 2000, ctx.seed + 1)
    new_train_all = Subset.of_classes(train_set, NEW, relabel=True)
    new_test = random_subset(Subset.of_classes(test_set, NEW, relabel=True), cfg["test_size"], ctx.seed + 1)
    names = lambda ks: ", ".join(classes[k] for k in ks)  # noqa: E731

    # 1. pretraining
    ctx.print(f"1. pretraining models.fashion_cnn on classes 0-4 ({names(OLD)}): {len(old_train)} images "
              f"({ctx.data_source}), {cfg['pretrain_epochs']} epoch(s)")
    rng.manual_seed(ctx.seed)
    pretrained = build(cfg)
    train(ctx, pretrained, DataLoader(old_train, batch_size=64, shuffle=True, transform=transform), None,
          epochs=cfg["pretrain_epochs"], lr=0.05, momentum=0.9, weight_decay=5e-4, label="pretrain",
          verbose=not ctx.quick)
    pre_acc = evaluate(pretrained, DataLoader(old_test, batch_size=250, transform=transform),
                       device=ctx.device, topk=(1,))["top1"]
    ctx.print(f"   pretrained network: {100 * pre_acc:.2f}% test accuracy on classes 0-4 ({len(old_test)} images)")
    weights = pretrained.state_dict()

    # 2-3. the new task, for each labelled budget
    test_loader = DataLoader(new_test, batch_size=250, transform=transform)
    labels = {"head_only": "pretrained, head only (frozen)", "scratch": "from scratch (all layers)",
              "fine_tune_all": "pretrained, all layers"}
    budgets = [cfg["per_class"]] + [b for b in cfg["extra_budgets"] if b != cfg["per_class"]]
    by_budget = {}
    for per_class in budgets:
        ctx.print(f"\n2. new task: classes 5-9 ({names(NEW)}), {per_class} labelled images per class; "
                  f"{cfg['finetune_steps']} steps of batch {min(cfg['batch_size'], 5 * per_class)}, "
                  f"SGD lr {cfg['lr']} momentum 0.9; test on {len(new_test)} images; {cfg['repeats']} "
                  f"draw(s) of the labelled images")
        by_budget[per_class] = _compare(ctx, cfg, per_class, weights, new_train_all, test_loader, transform)
        summary = by_budget[per_class]
        ctx.print(f"\n{per_class} labels per class:")
        ctx.print(f"{'method':<32} {'trainable':>10} {'test acc (mean)':>16} {'min':>7} {'max':>7} {'train acc':>10}")
        for method, r in summary.items():
            ctx.print(f"{labels[method]:<32} {r['trainable_params']:>10,} {100 * r['mean']:>15.2f}% "
                      f"{100 * min(r['accuracies']):>6.2f}% {100 * max(r['accuracies']):>6.2f}% "
                      f"{100 * r['train_acc_mean']:>9.2f}%")
        diff = summary["head_only"]["mean"] - summary["scratch"]["mean"]
        ctx.print(f"head only vs from scratch: {100 * diff:+.2f} points")

    summary = by_budget[cfg["per_class"]]
    diff = summary["head_only"]["mean"] - summary["scratch"]["mean"]
    _plot(ctx, by_budget, labels)
    return {"config": cfg, "old_classes": OLD, "new_classes": NEW, "pretrain_test_acc": pre_acc,
            "labelled_images": cfg["per_class"] * len(NEW), "results": summary,
            "head_only_minus_scratch": diff,
            "by_budget": {str(k): v for k, v in by_budget.items()}}


def _compare(ctx, cfg, per_class, weights, new_train_all, test_loader, transform):
    """Head only / from scratch / fine-tune all on ``per_class`` labels per class, ``repeats``
    times; returns ``{method: {accuracies, mean, std, train_acc_mean, trainable_params}}``."""
    from .. import rng
    methods = ("head_only", "scratch", "fine_tune_all")
    accs, train_accs, trainable = {m: [] for m in methods}, {m: [] for m in methods}, {}
    for rep in range(cfg["repeats"]):
        budget = per_class_subset(new_train_all, per_class, ctx.seed + 100 + rep)
        for method in methods:
            rng.manual_seed(ctx.seed + 100 + rep)
            model = build(cfg)
            if method != "scratch":
                model.load_state_dict(weights)
                replace_head(model, 5)          # a fresh 5-way output layer
                if method == "head_only":
                    train_only_head(model)      # freeze everything else
            trainable[method] = sum(p.numel() for p in trainable_parameters(model))
            loader = DataLoader(budget, batch_size=min(cfg["batch_size"], len(budget)), shuffle=True,
                                transform=transform)
            epochs = max(1, round(cfg["finetune_steps"] / len(loader)))   # the same number of steps for every budget
            history = train(ctx, model, loader, None, epochs=epochs, lr=cfg["lr"], momentum=0.9,
                            weight_decay=5e-4, verbose=False)
            acc = evaluate(model, test_loader, device=ctx.device, topk=(1,))["top1"]
            accs[method].append(acc)
            train_accs[method].append(history[-1]["train_acc"])
            ctx.print(f"   draw {rep + 1}: {method:<14} {100 * acc:6.2f}%  "
                      f"({trainable[method]:,} trainable parameters)")
    out = {}
    for method in methods:
        a = np.array(accs[method])
        out[method] = {"accuracies": a.tolist(), "mean": float(a.mean()), "std": float(a.std()),
                       "train_acc_mean": float(np.mean(train_accs[method])),
                       "trainable_params": trainable[method]}
    return out


def _plot(ctx, by_budget, labels):
    fig = figure(8, 4.2)
    if fig is None:
        return
    ax = fig.subplots()
    budgets = sorted(by_budget)
    methods = list(by_budget[budgets[0]])
    width = 0.8 / len(budgets)
    for j, per_class in enumerate(budgets):
        summary = by_budget[per_class]
        xs = [i + (j - (len(budgets) - 1) / 2) * width for i in range(len(methods))]
        means = [100 * summary[m]["mean"] for m in methods]
        ax.bar(xs, means, width=width * 0.95, label=f"{per_class} labels per class",
               alpha=0.6 + 0.4 * j / max(1, len(budgets) - 1))
        for x, m, mean in zip(xs, methods, means):
            accs = [100 * a for a in summary[m]["accuracies"]]
            ax.plot([x] * len(accs), accs, "k.", ms=5)
            ax.text(x, mean + 1.5, f"{mean:.1f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(methods)), [labels[m].replace(", ", ",\n") for m in methods])
    ax.set(ylabel="test accuracy on classes 5-9 (%)", ylim=(0, 105),
           title="new classes 5-9 from few labels (dots: the individual draws)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    ctx.save_figure(fig, "fine_tune.png")
