"""Assignments 1 and 2, their content: the solution of A1's local response normalisation equals
minicnn's ``nn.LocalResponseNorm`` (forward and backward) and the hidden checks' reference cache
is the one the solution builds; A2's optimisers follow minicnn's ``optim.SGD`` (momentum,
Nesterov) and ``optim.Adam`` step for step and refuse bad settings in one line; the hints prompt
derivations instead of handing out formulas; and each README's time estimate counts the lines the
solution really has."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn, optim

ROOT = Path(__file__).resolve().parents[2] / "assignments"


def load(number, name):
    """``assignments/assignmentN/name.py`` as a module of its own (no clash between assignments)."""
    spec = importlib.util.spec_from_file_location(f"a{number}_{name}", ROOT / f"assignment{number}" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layers, a1_grader = load(1, "layers"), load(1, "grader")
optimizers, a2_grader = load(2, "optimizers"), load(2, "grader")


@pytest.mark.parametrize("size, shape, alpha, beta, k", [
    (5, (2, 7, 3, 3), 5e-4, 0.75, 2.0),       # AlexNet's constants
    (5, (2, 7, 3, 3), 1.0, 0.75, 2.0),
    (4, (2, 6, 2, 3), 0.5, 0.75, 1.0),        # even: one more channel before c than after
    (2, (3, 4, 2, 1), 0.8, 0.5, 1.5),
    (9, (2, 4, 2, 2), 2.0, 0.75, 1.0),        # the window wider than the channels
    (1, (2, 3, 2, 2), 1.0, 0.75, 1.0),
])
def test_lrn_solution_equals_minicnns_local_response_norm(size, shape, alpha, beta, k):
    rng = np.random.default_rng(size)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    out, cache = layers.lrn_forward(x, size, alpha=alpha, beta=beta, k=k)
    dx = layers.lrn_backward(dout, cache)
    t = mc.Tensor(x, requires_grad=True)
    expected = nn.LocalResponseNorm(size, alpha, beta, k)(t)
    (expected * mc.Tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-10, atol=1e-13)
    # The hidden backward checks feed lrn_backward the grader's cache: it must be the solution's.
    reference = a1_grader.lrn_reference_cache(x, size, alpha, beta, k)
    assert len(reference) == len(cache) and reference[3:] == cache[3:]
    for mine, theirs in zip(reference[:3], cache[:3]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


class _Theirs:
    """minicnn's optimiser behind the interface of the assignment's (``velocity``/``m``/``v``)."""

    def __init__(self, make, params, **settings):
        self.params, self.optimizer = params, make(params, **settings)

    def step(self):
        self.optimizer.step()

    def state(self, key):
        return [self.optimizer.state[p][key] for p in self.params]


@pytest.mark.parametrize("settings", [dict(lr=0.05, momentum=0.8), dict(lr=0.1, momentum=0.9),
                                      dict(lr=0.05, momentum=0.9, nesterov=True),
                                      dict(lr=0.2, momentum=0.5, nesterov=True),
                                      dict(lr=0.05, momentum=0.0)])
def test_sgd_momentum_follows_minicnns_sgd_step_for_step(settings):
    for seed in (121, 7):
        mine, ours = a2_grader.optimiser_trajectory(optimizers.SGDMomentum, seed, **settings)
        theirs, expected = a2_grader.optimiser_trajectory(
            lambda ps, **s: _Theirs(optim.SGD, ps, **s), seed, **settings)
        assert ours.keys() == expected.keys()
        for key in ours:
            np.testing.assert_allclose(ours[key], expected[key], rtol=1e-13, atol=1e-15, err_msg=key)
        if settings["momentum"]:
            for a, b in zip(mine.velocity, theirs.state("momentum_buffer")):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("settings", [dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6), dict(lr=1e-3),
                                      dict(lr=0.1, betas=(0.5, 0.9), eps=1e-8)])
def test_adam_follows_minicnns_adam_step_for_step(settings):
    for seed in (123, 8):
        mine, ours = a2_grader.optimiser_trajectory(optimizers.Adam, seed, **settings)
        theirs, expected = a2_grader.optimiser_trajectory(
            lambda ps, **s: _Theirs(optim.Adam, ps, **s), seed, **settings)
        for key in ours:
            np.testing.assert_allclose(ours[key], expected[key], rtol=1e-12, atol=1e-15, err_msg=key)
        for a, b in zip(mine.m + mine.v, theirs.state("exp_avg") + theirs.state("exp_avg_sq")):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-18)


def test_an_optimiser_skips_a_parameter_without_gradient_and_counts_its_own_steps():
    a, b = (mc.Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    optimizer = optimizers.Adam([a, b], lr=0.1)
    a.grad = mc.Tensor(np.array([1.0, -1.0]))
    optimizer.step()
    assert optimizer.steps == [1, 0] and np.array_equal(b.numpy(), np.ones(2))
    np.testing.assert_allclose(a.numpy(), [0.9, 1.1], rtol=1e-6)
    optimizer.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("make, message", [
    (lambda ps: optimizers.SGDMomentum(ps, lr=0.0), r"^SGDMomentum: lr must be positive, got 0\.0$"),
    (lambda ps: optimizers.SGDMomentum(ps, lr=0.1, momentum=1.0),
     r"^SGDMomentum: momentum must lie in \[0, 1\), got 1\.0$"),
    (lambda ps: optimizers.SGDMomentum(ps, lr=0.1, momentum=0.0, nesterov=True),
     r"^SGDMomentum: Nesterov's momentum needs a momentum > 0, got 0$"),
    (lambda ps: optimizers.Adam(ps, betas=(0.9, 1.0)),
     r"^Adam: each of betas must lie in \[0, 1\), got \(0\.9, 1\.0\)$"),
    (lambda ps: optimizers.Adam(ps, eps=-1.0), r"^Adam: eps must be >= 0, got -1\.0$"),
    (lambda ps: optimizers.Adam([]), r"^Adam: no parameters to optimise \(an empty list\)$"),
])
def test_bad_optimiser_settings_fail_in_one_line(make, message):
    with pytest.raises(ValueError, match=message):
        make([mc.Tensor(np.ones(2), requires_grad=True)])


def hints(path):
    return re.findall(r"# BEGIN SOLUTION \((?:hint: )?(.*)\)\s*$", path.read_text(), flags=re.M)


def test_the_hints_prompt_the_derivation_instead_of_giving_the_formula():
    given_away = ["y (1 - y)", "y*(1-y)", "1 - y**2", "1 / x", "one_hot", "probs -", "probabilities -",
                  "is its own derivative", "is b, and vice versa"]
    for path in (ROOT / "assignment1" / "layers.py", ROOT / "assignment2" / "functions.py",
                 ROOT / "assignment2" / "optimizers.py"):
        found = hints(path)
        assert found, path
        leaks = [(hint, formula) for hint in found for formula in given_away if formula in hint]
        assert not leaks, (path.name, leaks)


def solution_lines(folder):
    """Lines of code in the solution blocks: neither blank nor comments (the README's count)."""
    count, inside = 0, False
    for path in sorted(folder.glob("*.py")):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("# BEGIN SOLUTION", "# END SOLUTION")):
                inside = stripped.startswith("# BEGIN")
            elif inside and stripped and not stripped.startswith("#"):
                count += 1
    return count


@pytest.mark.parametrize("number", [1, 2])
def test_the_time_estimate_counts_the_solutions_lines(number):
    folder = ROOT / f"assignment{number}"
    readme = (folder / "README.md").read_text()
    time = re.search(r"\*\*Time:\*\* about (\d+) hours: the (?:instructor's )?solution(?:'s code)? is (\d+) lines",
                     readme)
    assert time, f"assignment{number}/README.md: no time estimate from the solution's lines"
    hours, lines = int(time.group(1)), int(time.group(2))
    assert lines == solution_lines(folder)
    written = 1.5 if number == 2 else 0.0          # A2 adds its written questions
    assert hours == round(lines / 10 + written)


def test_the_w2_notebook_cell_is_the_full_run_of_network_py():
    """W2 asks about ``python network.py --epochs 1 --seed S``: the notebook's cell must train
    what that command trains (the same data sizes, network and seeds)."""
    import json
    cells = json.loads((ROOT / "assignment2" / "assignment2.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "first-epoch loss mean" in "".join(c["source"]))
    assert "network.load_data(20000, 5000)" in source and "for seed in [0, 1, 2]" in source
    assert "TwoLayerNet(784, 100, 10, activation=activation, seed=seed)" in source
    network = (ROOT / "assignment2" / "network.py").read_text()
    assert "n_train, n_test = (2000, 1000) if args.quick else (20000, 5000)" in network
    assert 'parser.add_argument("--hidden", type=int, default=100)' in network
    assert "TwoLayerNet(784, args.hidden, 10, activation=args.activation, seed=args.seed)" in network

