"""Assignment 4, Q6: measure what each trick changes.

The task: Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with only
``--per-class`` labelled training images per class (50 by default), tested on 1,000 images. Each
row of the table trains the same ``SmallCNN`` for the same number of steps, changing one thing:

    scratch               random initialisation, no augmentation
    scratch + flip        ... with your hflip
    scratch + crop        ... with your crop (2 pixels of padding)
    scratch + jitter      ... with your color_jitter (factors in [0.7, 1.3])
    scratch + all         ... all three
    head only             the pretrained features, frozen; a new head trained alone
    head, then all        your fine_tune: head alone, then everything with lr / 10
    head, then all + aug  the same, with all three augmentations

    python experiments.py            # about a minute on two cores (plus pretraining if needed)
    python experiments.py --quick    # seconds: checks that it runs, the numbers mean nothing

It prints the table (Markdown) for ``answers.md``. Numbers vary with ``--seed``: run two or three
seeds before you conclude anything from a difference of a point or two.
"""
import argparse

import numpy as np

import minicnn as mc

from augment import random_augment
from finetune import SmallCNN, accuracy, fine_tune, head_only, replace_head, train_steps
from pretrain import load_fashion, load_or_make

AUGMENTATIONS = {
    "none": None,
    "flip": lambda x, rng: random_augment(x, rng, flip=True),
    "crop": lambda x, rng: random_augment(x, rng, flip=False, crop_pad=2),
    "jitter": lambda x, rng: random_augment(x, rng, flip=False, jitter=0.3),
    "all": lambda x, rng: random_augment(x, rng, flip=True, crop_pad=2, jitter=0.3),
}


def run(per_class=50, steps=200, lr=0.05, seed=0, quick=False, log=print):
    classes = [5, 6, 7, 8, 9]
    x, y, x_test, y_test = load_fashion(classes, 5 * per_class, 1000, seed)
    rows = []

    def record(name, model, losses):
        rows.append({"setting": name, "final_train_loss": float(np.mean(losses[-20:])),
                     "test_acc": accuracy(model, x_test, y_test)})
        log(f"{name:<22} test accuracy {rows[-1]['test_acc']:.1%}")

    for name in ("none", "flip", "crop", "jitter", "all"):
        mc.manual_seed(seed)
        model = SmallCNN(num_classes=5)
        losses = train_steps(model, model.parameters(), x, y, steps, lr, seed=seed,
                             augment=AUGMENTATIONS[name])
        record("scratch" if name == "none" else f"scratch + {name}", model, losses)

    def pretrained():
        mc.manual_seed(seed)
        return replace_head(load_or_make(quick=quick, log=log), len(classes))

    model = pretrained()
    record("head only", model, train_steps(model, head_only(model), x, y, steps, lr, seed=seed))
    for name, augment in (("head, then all", None), ("head, then all + aug", AUGMENTATIONS["all"])):
        model = pretrained()
        record(name, model, fine_tune(model, x, y, steps // 2, steps - steps // 2, lr, seed=seed,
                                      augment=augment))
    return rows


def markdown(rows):
    lines = ["| setting | final training loss | test accuracy |", "|---|---|---|"]
    lines += [f"| {r['setting']} | {r['final_train_loss']:.3f} | {r['test_acc']:.1%} |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, 10 labels per class")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        rows = run(per_class=10, steps=20, seed=args.seed, quick=True)
    else:
        rows = run(per_class=args.per_class, steps=args.steps, seed=args.seed)
    print()
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
