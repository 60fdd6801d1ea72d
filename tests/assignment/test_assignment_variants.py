"""Wrong answers get exactly the points their mistake leaves, and a student's own run predicts the
real grade: for every assignment and a set of deliberate mistakes, the public checks score the
same points in the student's run (``grade .`` in the handout, against ``expected.npz``) as in the
real grade, each multi-output check scores its outputs one by one, and a question that builds on
an earlier one does not lose points for the earlier one's mistake."""
import shutil
from pathlib import Path

import pytest

from minicnn.assignment import build, grade

ROOT = Path(__file__).resolve().parents[2] / "assignments"


def variant(assignment, file, old, new):
    return {"assignment": assignment, "file": file, "old": old, "new": new}


#: Assignment 5's fooling loop, from its copy of the image to its step.
A5_FOOLING_LOOP = """\
    fooled = image.copy()
    for steps in range(max_iterations):
        direction, scores = ascent_direction(model, fooled, target)
        if scores[0].argmax() == target:
            break
        fooled = fooled + learning_rate * direction
"""

#: name: (the mistake, the points each question should get in the real grade)
VARIANTS = {
    "a1-softmax-without-mean": (
        variant(1, "layers.py", "    dscores /= N\n", ""),
        {"q6": 10 * (0.5 + 0.5 + 0 + 0.5) / 4}),           # loss right, dscores wrong; the
                                                          # numerical-gradient check fails
    "a1-lrn-backward-without-the-cross-channel-term": (
        variant(1, "layers.py",
                "    dx = dout * scale ** -beta - (2.0 * alpha * beta / size) * x * incoming\n",
                "    dx = dout * scale ** -beta\n"),
        {"q8": 15 * (1 + 0 + 0.5 + 1 + 0) / 5}),          # every out passes, every dx fails;
                                                          # the numerical-gradient check asserts
    "a2-add-bias-not-summed": (
        variant(2, "functions.py", "        db = g.sum(axis=0)\n", "        db = g\n"),
        {"q3": 20 - 2 * 5 / 2}),                          # db of both AddBias checks: half each
    "a2-softmax-without-mean": (
        variant(2, "functions.py", "        dscores *= g / n\n", "        dscores *= g\n"),
        {"q4": 15 / 2, "q6": 20}),                        # Q6 uses the reference functions
    "a2-matmul-da-wrong": (
        variant(2, "functions.py", "        da = g @ self.b.T\n", "        da = 2 * g @ self.b.T\n"),
        {"q3": 20 - 2 * 5 / 2, "q6": 20}),                # costs once, in Q3 only
    "a2-nesterov-as-plain-momentum": (
        variant(2, "optimizers.py", "            p -= self.lr * (g + self.momentum * v)\n",
                "            p -= self.lr * v\n"),
        {"q7": 15 * (1 + 1 / 3 + 1 + 1 + 0 + 1) / 6}),    # its velocity right on fixed gradients only
    "a2-adam-without-bias-correction": (
        variant(2, "optimizers.py",
                "        m_hat = m / (1 - self.beta1 ** t)\n        v_hat = v / (1 - self.beta2 ** t)\n",
                "        m_hat = m\n        v_hat = v\n"),
        {"q7": 15 * (1 + 1 + 2 / 4 + 1 + 1 + 0) / 6}),    # m and v right on fixed gradients only
    "a3-conv-params-without-bias": (
        variant(3, "counting.py", " + (out_channels if bias else 0)", ""),
        {"q1": 20 * (0 + 2 / 3 + 2 / 3 + 1) / 4}),        # Q2, Q3 and Q7 use the reference
    "a3-batchnorm-dx-without-the-mean-and-variance-paths": (
        variant(3, "blocks.py",
                "    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))\n",
                "    dx = inv_std * dx_hat\n"),
        {"q5": 15 * 2 / 3}),                              # dgamma and dbeta still right
    "a3-running-var-with-the-biased-variance": (
        variant(3, "blocks.py", "x.var(axis=0, ddof=1)", "x.var(axis=0)"),
        {"q6": 10 * (2 / 4 + 1 + 2 / 4 + 2 / 4) / 4}),    # running_var and test_out wrong;
                                                          # test mode with given averages right
    "a3-test-mode-with-the-batch-statistics": (
        variant(3, "blocks.py", "        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta\n",
                "        out, _ = batchnorm_forward(x, gamma, beta, eps)\n"),
        {"q6": 10 * (3 / 4 + 2 / 3 + 3 / 4 + 3 / 4) / 4}), # only the test outputs wrong
    "a3-dense-block-leaves-out-its-input": (
        variant(3, "blocks.py", "        out = mc.concat(features, axis=1)\n",
                "        out = mc.concat(features[1:], axis=1)\n"),
        {"q7": 15 * 4 / 6}),                              # both block checks; layer and count right
    "a3-densenet-count-without-the-transitions": (
        variant(3, "counting.py",
                "            params += 2 * channels + conv_params(channels, out_channels, 1, bias=False)"
                "  # transition\n", ""),
        {"q7": 15 * 4 / 6}),                              # both count checks; the blocks right
    "a4-fine-tune-without-smaller-lr": (
        variant(4, "finetune.py", "all_steps, lr / 10,", "all_steps, lr,"),
        {"q5": 20 * 7 / 8}),                              # 1 of the 8 outputs of each check
    "a4-zero-initialised-head": (
        variant(4, "finetune.py", "    model.head = nn.Linear(model.head.weight.shape[1], num_classes)\n",
                "    model.head = nn.Linear(model.head.weight.shape[1], num_classes)\n"
                "    model.head.weight.data[...] = 0\n"),
        {}),                                              # any initialisation is fine
    "a4-head-only-does-not-freeze": (
        variant(4, "finetune.py", "    set_trainable(model.features, False)\n", ""),
        {"q4": 30 * (1 + 0.5 + 1 + 1) / 4, "q5": 20}),    # Q5 uses the reference head_only
    "a5-saliency-summed-over-channels": (
        variant(5, "visualize.py", "np.abs(gradient.numpy()).max(axis=1)", "np.abs(gradient.numpy()).sum(axis=1)"),
        {"q1": 15 / 3}),                                  # right on the gray network only
    "a5-saliency-by-minicnn-interpret": (
        variant(5, "visualize.py", "    saliency_map = np.abs(gradient.numpy()).max(axis=1)\n",
                "    from minicnn import interpret\n"
                "    saliency_map = interpret.Saliency(model).attribute(mc.Tensor(x), target=target)"
                ".numpy().max(axis=1)\n"),
        {"q1": 0}),                                       # the grader switches minicnn.interpret off
    "a5-occlusion-score-rise-not-drop": (
        variant(5, "visualize.py", "drop = score - target_scores(model(mc.Tensor(occluded)), target).numpy()",
                "drop = target_scores(model(mc.Tensor(occluded)), target).numpy() - score"),
        {"q2": 0}),
    "a5-occlusion-summed-not-averaged": (
        variant(5, "visualize.py", "    heat = total / count\n", "    heat = total\n"),
        {"q2": 20 / 2 / 3}),                              # right where one window covers a pixel
    "a5-grad-cam-without-relu": (
        variant(5, "visualize.py", "cam = np.maximum((alpha * kept[0].numpy()).sum(axis=1), 0)",
                "cam = (alpha * kept[0].numpy()).sum(axis=1)"),
        {"q3": 25 * (1 + 0 + 0 + 1) / 4}),                # the maps; the activation checks still pass
    "a5-fooling-image-changes-the-input": (
        variant(5, "visualize.py", A5_FOOLING_LOOP,
                A5_FOOLING_LOOP.replace("image.copy()", "image").replace("fooled = fooled +", "fooled +=")),
        {"q4": 20 * (1 + 0 + 3 / 4 + 1 + 1) / 5}),        # the public check asserts input_unchanged
}


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    made = {}

    def kit(number):
        if number not in made:
            made[number] = build(ROOT / f"assignment{number}",
                                 tmp_path_factory.mktemp(f"a{number}") / "out")
        return made[number]
    return kit


def full_marks(number):
    return {"q1": 10, "q2": 5, "q3": 20, "q4": 25, "q5": 15, "q6": 10, "q7": 10, "q8": 15} if number == 1 \
        else None


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_mistake_costs_exactly_its_points_and_the_local_run_predicts_them(name, kits, tmp_path):
    mistake, expected = VARIANTS[name]
    number = mistake["assignment"]
    built, source = kits(number), ROOT / f"assignment{number}"
    original = (source / mistake["file"]).read_text()
    assert original.count(mistake["old"]) == 1, "the variant no longer matches the solution"
    wrong = original.replace(mistake["old"], mistake["new"])

    handed_in = tmp_path / "handed_in"                 # the solution's files, one of them wrong
    shutil.copytree(source, handed_in)
    (handed_in / mistake["file"]).write_text(wrong)
    real = grade(handed_in, built.grader_dir, quiet=True)

    own = tmp_path / "own"                              # the handout, the same files filled in
    shutil.copytree(built.student_dir, own)
    for path in source.glob("*.py"):
        if not (built.grader_dir / path.name).exists():          # a file students hand in
            shutil.copy(handed_in / path.name, own / path.name)
    local = grade(own, quiet=True)

    scores = {q.name: q.earned for q in real.questions}
    for question, points in scores.items():
        want = expected.get(question, next(q.points for q in real.questions if q.name == question))
        assert points == pytest.approx(want), (question, real.format())
    assert real.earned < real.possible or not expected

    # The student's own run: the public part of the real grade, point for point.
    assert local.expected == "expected.npz"
    assert local.earned == pytest.approx(real.public_earned)
    assert local.possible == pytest.approx(real.public_possible)
    for q_local, q_real in zip(local.questions, real.questions):
        public = sum(c.earned for c in q_real.checks if c.kind == "public")
        assert q_local.earned == pytest.approx(public), (q_local.name, local.format())
        assert [(c.name, c.status) for c in q_local.checks] == \
            [(c.name, c.status) for c in q_real.checks if c.kind == "public"]


def test_the_un_summed_bias_gradient_is_named_by_its_shape(kits, tmp_path):
    handed_in = tmp_path / "a2"
    shutil.copytree(ROOT / "assignment2", handed_in)
    functions = handed_in / "functions.py"
    functions.write_text(functions.read_text().replace("db = g.sum(axis=0)", "db = g"))
    report = grade(handed_in, kits(2).grader_dir, quiet=True)
    q3 = next(q for q in report.questions if q.name == "q3")
    assert q3.earned == 15 and q3.status == "partial"
    add_bias = next(c for c in q3.checks if c.name == "add_bias_gradients")
    assert add_bias.message.startswith("d1: shape (5, 3), expected (3,)"), add_bias.message


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5], ids=lambda n: f"assignment{n}")
def test_solution_full_marks_student_copy_zero_and_no_hidden_check_in_the_handout(number, kits):
    built, source = kits(number), ROOT / f"assignment{number}"
    real = grade(source, built.grader_dir, quiet=True)
    assert real.earned == real.possible == (110 if number == 1 else 100)
    assert grade(built.student_dir, built.grader_dir, quiet=True).earned == 0
    kit_grader = (built.grader_dir / "grader.py").read_text()
    student_grader = (built.student_dir / "grader.py").read_text()
    assert "@q1.hidden" in kit_grader and ".hidden" not in student_grader
    hidden = [c.name for q in real.questions for c in q.checks if c.kind == "hidden"]
    for path in built.student_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [name for name in hidden if name.encode() in data], path.name
