"""The grader of Assignment 4: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks. The final grade also runs *hidden* checks (other images, other
settings, other networks) and compares every returned value with the instructor's solution.
``sub.augment`` and ``sub.finetune`` are your files. No data set and no pretrained file is needed:
the checks make their own small images and networks.
"""
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn.assignment import Question, collect_references

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


@q1.hidden
def flip_values(sub):
    flip = np.random.default_rng(12).random(6) < 0.5
    return {"out": sub.augment.hflip(images(11, 6, 3, 5, 4), flip)}


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


@q2.hidden
def crop_values(sub):
    offsets = np.random.default_rng(22).integers(0, 7, (5, 2))
    return {"out": sub.augment.crop(images(21, 5, 2, 6, 7), 3, offsets)}


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


@q3.hidden
def jitter_values(sub):
    rng = np.random.default_rng(32)
    return {"out": sub.augment.color_jitter(images(33, 4, 3, 5, 5), rng.uniform(0.6, 1.4, 4),
                                            rng.uniform(0.6, 1.4, 4))}


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


@q4.public
def replace_head_shape(sub):
    model = small_model(sub, 41)
    old_head = model.head
    sub.finetune.replace_head(model, 3)
    assert model.head is not old_head, "replace_head must put a new layer in model.head"
    out = model(mc.Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32)))
    assert out.shape == (2, 3), f"after replace_head(model, 3) the output is {out.shape}, not (2, 3)"
    return {"shape": np.array(out.shape), "head_weight_shape": np.array(model.head.weight.shape)}


@q4.public
def head_only_freezes_features(sub):
    model = small_model(sub, 42)
    trainable = sub.finetune.head_only(model)
    head_ids = {id(p) for p in model.head.parameters()}
    assert trainable is not None and {id(p) for p in trainable} == head_ids, \
        "head_only must return exactly the head's parameters"
    frozen = [name for name, p in model.named_parameters() if name.startswith("features") and p.requires_grad]
    assert not frozen, f"still trainable after head_only: {frozen}"
    return {"flags": trainable_flags(model)}


@q4.hidden
def head_training_moves_only_the_head(sub):
    model = sub.finetune.replace_head(small_model(sub, 43), 3)
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


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Fine-tuning in two stages", points=20, rtol=1e-4)


@q5.public
def fine_tune_runs(sub):
    model = small_model(sub, 51, num_classes=3)
    x, y = toy_data(52)
    losses = sub.finetune.fine_tune(model, x, y, head_steps=2, all_steps=2, lr=0.05, seed=53)
    assert len(losses) == 4, f"2 + 2 steps should give 4 losses, got {len(losses)}"
    assert all(p.requires_grad for p in model.parameters()), "after fine_tune every parameter is trainable"
    return {"losses": np.array(losses)}


@q5.hidden
def fine_tune_values(sub):
    model = small_model(sub, 54, num_classes=4)
    x, y = toy_data(55, classes=4)
    losses = sub.finetune.fine_tune(model, x, y, head_steps=3, all_steps=2, lr=0.1, seed=56)
    return {"losses": np.array(losses), "conv1": model.features[0].weight.numpy(),
            "head": model.head.weight.numpy()}


QUESTIONS = [q1, q2, q3, q4, q5]

#: Written questions, graded by hand from ``answers.md`` (not part of the automatic total).
WRITTEN = {"w1": ("The table of tricks, filled in and explained", 15),
           "w2": ("When to freeze, when to fine-tune", 5)}


def make_references(sub):
    """The checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
