"""The grader of Assignment 4: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks, whose values are compared with the instructor's solution's (shipped in
``expected.npz``), each by itself: a public check that passes here passes in the final grade, with
the same points. The final grade also runs *hidden* checks (other images, settings, networks);
they are not in your copy. How you initialise the new head does not matter to any check; Q5 uses
reference Q4 functions and checks the two stages (steps, learning rates, seeds, parameters), so a
mistake in Q4 costs points once.
``sub.augment`` and ``sub.finetune`` are your files. No data set and no pretrained file is needed:
the checks make their own small images and networks.
"""
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn.assignment import Challenge, Question, collect_references, substitute

TITLE = "Assignment 4: Training tips"
SUBMISSION_FILES = ["augment.py", "finetune.py"]


def images(seed, *shape):
    """Random images in [0, 1], float64."""
    return np.random.default_rng(seed).random(shape)


def expect_equal(actual, expected, what, tolerance=1e-9):
    expected = np.asarray(expected, dtype=np.float64)
    assert actual is not None, f"{what}: got None (did you assign the result?)"
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: expected shape {expected.shape}, got {actual.shape}"
    error = np.max(np.abs(actual - expected), initial=0.0)
    assert error <= tolerance, f"{what}: off by up to {error:.3g}"


# --------------------------------------------------------------------------------------------
q1 = Question("q1", "Horizontal flip", points=15)

SMALL = np.arange(12.0).reshape(2, 1, 2, 3) / 12        # two 2x3 images


@q1.public
def flip_small_example(sub):
    x = SMALL.copy()
    out = sub.augment.hflip(x, np.array([True, False]))
    expect_equal(out[0, 0], SMALL[0, 0, :, ::-1], "the first image, mirrored")
    expect_equal(out[1], SMALL[1], "the second image, unchanged")
    expect_equal(x, SMALL, "the input (it must not change)")
    return {"out": out}


# BEGIN HIDDEN
@q1.hidden
def flip_values(sub):
    flip = np.random.default_rng(12).random(6) < 0.5
    return {"out": sub.augment.hflip(images(11, 6, 3, 5, 4), flip)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q2 = Question("q2", "Random crop with padding", points=20)


@q2.public
def crop_small_example(sub):
    x = SMALL.copy()
    same = sub.augment.crop(x, 1, np.array([[1, 1], [1, 1]]))
    expect_equal(same, SMALL, "offsets (pad, pad) must give the images back")
    moved = sub.augment.crop(x, 1, np.array([[0, 0], [2, 2]]))
    expected = np.zeros_like(SMALL)
    expected[0, :, 1:, 1:] = SMALL[0, :, :-1, :-1]          # content moved down and right
    expected[1, :, :-1, :-1] = SMALL[1, :, 1:, 1:]          # up and left
    expect_equal(moved, expected, "offsets (0, 0) and (2, 2) with pad 1")
    return {"same": same, "moved": moved}


# BEGIN HIDDEN
@q2.hidden
def crop_values(sub):
    offsets = np.random.default_rng(22).integers(0, 7, (5, 2))
    return {"out": sub.augment.crop(images(21, 5, 2, 6, 7), 3, offsets)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q3 = Question("q3", "Colour jitter", points=15)


@q3.public
def jitter_small_example(sub):
    x = images(31, 3, 1, 4, 4)
    same = sub.augment.color_jitter(x, np.ones(3), np.ones(3))
    expect_equal(same, x, "factors of 1 must change nothing")
    flat = sub.augment.color_jitter(x, np.ones(3), np.zeros(3))
    expect_equal(flat, np.broadcast_to(x.mean(axis=(1, 2, 3), keepdims=True), x.shape),
                 "contrast 0 makes every pixel the image's mean")
    bright = sub.augment.color_jitter(x, np.full(3, 10.0), np.ones(3))
    assert np.max(bright) <= 1.0, "values must be clipped to [0, 1]"
    return {"same": same, "flat": flat, "bright": bright}


# BEGIN HIDDEN
@q3.hidden
def jitter_values(sub):
    rng = np.random.default_rng(32)
    return {"out": sub.augment.color_jitter(images(33, 4, 3, 5, 5), rng.uniform(0.6, 1.4, 4),
                                            rng.uniform(0.6, 1.4, 4))}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q4 = Question("q4", "A new head on frozen features", points=30)


def small_model(sub, seed, num_classes=5):
    mc.manual_seed(seed)
    return sub.finetune.SmallCNN(num_classes=num_classes)


def trainable_flags(model):
    return np.array([p.requires_grad for _, p in model.named_parameters()])


def toy_data(seed, n=40, classes=3):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28)).astype(np.float32), rng.integers(0, classes, n)


def fixed_head(model, seed):
    """Overwrite the head's weights with fixed numbers: how the new head was initialised then does
    not matter to the check (any initialisation is fine)."""
    rng = np.random.default_rng(seed)
    for p in model.head.parameters():
        p.data[...] = 0.05 * rng.standard_normal(p.shape).astype(p.numpy().dtype)
    return model


@q4.public
def replace_head_shape(sub):
    model = small_model(sub, 41)
    old_head = model.head
    sub.finetune.replace_head(model, 3)
    out = model(mc.Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32)))
    return {"shape": np.array(out.shape), "head_weight_shape": np.array(model.head.weight.shape),
            "new_layer": model.head is not old_head}


@q4.public
def head_only_freezes_features(sub):
    model = small_model(sub, 42)
    trainable = sub.finetune.head_only(model)
    head_ids = {id(p) for p in model.head.parameters()}
    returned = {id(p) for p in trainable} if trainable is not None else set()
    return {"flags": trainable_flags(model), "returns_the_head": returned == head_ids}


# BEGIN HIDDEN
@q4.hidden
def head_training_moves_only_the_head(sub):
    model = fixed_head(sub.finetune.replace_head(small_model(sub, 43), 3), 47)
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    x, y = toy_data(44)
    losses = sub.finetune.train_steps(model, sub.finetune.head_only(model), x, y, 3, lr=0.1, seed=45)
    changed = np.array([not np.array_equal(before[name], p.numpy()) for name, p in model.named_parameters()])
    return {"changed": changed, "losses": np.array(losses), "head": model.head.weight.numpy()}


@q4.hidden
def set_trainable_values(sub):
    model = small_model(sub, 46)
    sub.finetune.set_trainable(model, False)
    all_frozen = trainable_flags(model)
    sub.finetune.set_trainable(model.features[4], True)       # the second conv only
    return {"all_frozen": all_frozen, "one_layer": trainable_flags(model)}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Fine-tuning in two stages", points=20, rtol=1e-4)


def reference_head_only(model):
    """Q4's ``head_only``, used by Q5 instead of yours (a mistake in Q4 costs its points once)."""
    model.requires_grad_(True)
    model.features.requires_grad_(False)
    return list(model.head.parameters())


def reference_set_trainable(module, trainable):
    module.requires_grad_(trainable)


class Recorder:
    """Stands in for ``train_steps``: records every call (what fine_tune asked for) and returns
    made-up losses, so that Q5 checks the two stages themselves in a moment."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, model, parameters, x, y, steps, lr, batch_size=32, seed=0, augment=None):
        parameters = list(parameters)
        all_ids = [id(p) for p in model.parameters()]
        head_ids = {id(p) for p in model.head.parameters()}
        self.calls.append({
            "steps": steps, "lr": lr, "seed": seed, "augment": augment,
            "head_only": {id(p) for p in parameters} == head_ids,
            "everything": sorted(id(p) for p in parameters) == sorted(all_ids),
            "all_trainable": all(p.requires_grad for p in model.parameters())})
        return [float(len(self.calls) * 10 + i) for i in range(steps)]


def two_stages(sub, head_steps, all_steps, lr, seed):
    """Run ``fine_tune`` with the reference Q4 functions and a recording ``train_steps``; one
    output per thing the two stages must get right."""
    model = small_model(sub, seed, num_classes=3)
    x, y = toy_data(seed + 1)
    recorder = Recorder(model)
    augment = lambda batch, rng: batch                         # noqa: E731 (passed on as is)
    with substitute(sub.finetune, head_only=reference_head_only, train_steps=recorder,
                    set_trainable=reference_set_trainable):
        losses = sub.finetune.fine_tune(model, x, y, head_steps=head_steps, all_steps=all_steps,
                                        lr=lr, seed=seed, augment=augment)
    calls = recorder.calls
    result = {"stages": len(calls), "losses": np.array(losses, dtype=np.float64)}
    if len(calls) == 2:
        first, second = calls
        result.update(
            steps=np.array([first["steps"], second["steps"]]),
            lrs=np.array([first["lr"], second["lr"]], dtype=np.float64),
            seeds=np.array([first["seed"], second["seed"]]),
            augment_passed_on=first["augment"] is augment and second["augment"] is augment,
            first_trains_the_head=first["head_only"],
            second_trains_everything=second["everything"] and second["all_trainable"])
    return result


@q5.public
def fine_tune_stages(sub):
    return two_stages(sub, head_steps=2, all_steps=3, lr=0.05, seed=53)


# BEGIN HIDDEN
@q5.hidden
def fine_tune_other_stages(sub):
    return two_stages(sub, head_steps=4, all_steps=1, lr=0.2, seed=57)
# END HIDDEN


QUESTIONS = [q1, q2, q3, q4, q5]

#: Written questions, graded by hand from ``answers.md`` (not part of the automatic total).
WRITTEN = {"w1": ("The table of tricks, filled in and explained", 15),
           "w2": ("When to freeze, when to fine-tune", 5)}


#: The open-ended challenge: ranked by ``grade-all --leaderboard``, no points (see README.md).
CHALLENGE = Challenge("challenge.py", cpu_seconds=120,
                      title="Best Fashion-MNIST test accuracy in 120 CPU seconds")


def make_references(sub):
    """The checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
