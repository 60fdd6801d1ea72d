"""The grader of Assignment 2: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks: the gradients your ``backward`` methods return on fixed inputs,
compared with the instructor's solution's (shipped in ``expected.npz``), each gradient by itself
and shape first. A public check that passes here passes in the final grade, with the same points.
The final grade also runs *hidden* checks on other inputs; they are not in your copy. Q6 runs
your network with minicnn's own operations in place of your Functions, so that a mistake in Q1-Q4
costs its points once. (``mc.gradcheck`` tells you *why* a gradient is off: see the notebook.)

``sub.functions``, ``sub.topo``, ``sub.network`` and ``sub.optimizers`` are your files.
"""
from pathlib import Path

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import optim
from minicnn.assignment import Question, collect_references, substitute

TITLE = "Assignment 2: Autograd"
SUBMISSION_FILES = ["functions.py", "topo.py", "network.py", "optimizers.py"]


def random(seed, *shape, positive=False):
    """Float64 standard normal numbers (or uniform in [0.5, 2] with ``positive``), seeded."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)


def tensors(*arrays):
    """float64 tensors that require gradients."""
    return [mc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]


def gradients(op, arrays, upstream_seed):
    """The gradients ``op``'s ``backward`` returns for a random upstream gradient (seeded), called
    directly (forward, then backward, on arrays), one output per input: ``{"d0": ..., "d1": ...}``.

    Each is compared with the solution's by itself, shape first: a gradient that is not shaped
    like its input fails with a message naming both shapes (minicnn's engine would refuse it too).
    """
    function = op()
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    out = function.forward(*arrays)
    result = function.backward(random(upstream_seed, *np.shape(out)))
    if not isinstance(result, tuple):
        result = (result,)
    return {f"d{i}": g for i, g in enumerate(result[:len(arrays)]) if g is not None}


# --------------------------------------------------------------------------------------------
q1 = Question("q1", "Elementwise: Multiply, Exp, Log", points=10)


@q1.public
def multiply_gradients(sub):
    return gradients(sub.functions.Multiply, [random(1, 3, 4), random(2, 3, 4)], 3)


@q1.public
def exp_gradients(sub):
    return gradients(sub.functions.Exp, [random(4, 2, 5)], 5)


@q1.public
def log_gradients(sub):
    return gradients(sub.functions.Log, [random(6, 2, 5, positive=True)], 7)


# BEGIN HIDDEN
@q1.hidden
def multiply_values(sub):
    return gradients(sub.functions.Multiply, [random(11, 2, 3, 4), random(12, 2, 3, 4)], 13)


@q1.hidden
def exp_log_values(sub):
    out = gradients(sub.functions.Exp, [random(14, 6, 2)], 15)
    out.update({f"log_{k}": v for k, v in
                gradients(sub.functions.Log, [random(16, 3, 3, 2, positive=True)], 17).items()})
    return out
# END HIDDEN


# --------------------------------------------------------------------------------------------
q2 = Question("q2", "Activations: ReLU, Sigmoid, Tanh", points=10)


def away_from_zero(x):
    """Move inputs away from ReLU's kink, where the numerical gradient is meaningless."""
    return x + 0.05 * np.sign(x)


@q2.public
def relu_gradients(sub):
    return gradients(sub.functions.ReLU, [away_from_zero(random(21, 4, 5))], 22)


@q2.public
def sigmoid_gradients(sub):
    return gradients(sub.functions.Sigmoid, [random(23, 4, 3)], 24)


@q2.public
def tanh_gradients(sub):
    return gradients(sub.functions.Tanh, [random(25, 4, 3)], 26)


# BEGIN HIDDEN
@q2.hidden
def relu_values(sub):
    return gradients(sub.functions.ReLU, [away_from_zero(random(27, 3, 2, 4))], 28)


@q2.hidden
def sigmoid_tanh_values(sub):
    out = gradients(sub.functions.Sigmoid, [3 * random(29, 5, 2)], 30)
    out.update({f"tanh_{k}": v for k, v in gradients(sub.functions.Tanh, [3 * random(31, 2, 7)], 32).items()})
    return out
# END HIDDEN


# --------------------------------------------------------------------------------------------
q3 = Question("q3", "MatMul and AddBias", points=20)


@q3.public
def matmul_gradients(sub):
    return gradients(sub.functions.MatMul, [random(41, 3, 4), random(42, 4, 2)], 43)


@q3.public
def add_bias_gradients(sub):
    # d1, the bias's gradient, must have the bias's shape (3,): the engine does not sum for you.
    return gradients(sub.functions.AddBias, [random(44, 5, 3), random(45, 3)], 46)


# BEGIN HIDDEN
@q3.hidden
def matmul_values(sub):
    return gradients(sub.functions.MatMul, [random(47, 6, 2), random(48, 2, 5)], 49)


@q3.hidden
def add_bias_values(sub):
    return gradients(sub.functions.AddBias, [random(50, 7, 4), random(51, 4)], 52)
# END HIDDEN


# --------------------------------------------------------------------------------------------
q4 = Question("q4", "Softmax cross-entropy", points=15)


def cross_entropy(sub, scores, labels, upstream=1.0):
    """The loss (forward, written) and ``dscores`` (your backward) for an upstream gradient."""
    function = sub.functions.SoftmaxCrossEntropy()
    loss = function.forward(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64))
    result = function.backward(np.array(upstream))
    dscores = result[0] if isinstance(result, tuple) else result
    return {"loss": loss, "dscores": dscores}


@q4.public
def cross_entropy_uniform(sub):
    # All-zero scores: the loss is log(10) and every row of dscores sums to 0.
    return cross_entropy(sub, np.zeros((4, 10)), [0, 1, 2, 3])


@q4.public
def cross_entropy_small_example(sub):
    return cross_entropy(sub, random(61, 4, 3), [0, 2, 1, 2], upstream=1.5)


# BEGIN HIDDEN
@q4.hidden
def cross_entropy_values(sub):
    labels = np.random.default_rng(63).integers(0, 6, 9)
    return cross_entropy(sub, 4 * random(62, 9, 6), labels, upstream=2.5)
# END HIDDEN


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Topological order", points=10)


class Node:
    """A node of a test graph: compared by identity, as ``topological_order`` must."""

    def __init__(self, label):
        self.label = label

    def __repr__(self):
        return f"Node({self.label!r})"


def short(items, limit=12):
    items = list(items)
    return repr(items) if len(items) <= limit else f"{items[:limit]!r}[:{limit}] (of {len(items)})"


def check_order(sub, edges, output):
    """Run ``topological_order`` on the graph ``{label: [parent labels]}``; asserts that the
    order is valid and returns what it found."""
    nodes = {label: Node(label) for label in edges}
    parents = {id(nodes[label]): [nodes[p] for p in ps] for label, ps in edges.items()}
    order = sub.topo.topological_order(nodes[output], lambda node: parents[id(node)])
    assert isinstance(order, list), f"topological_order must return a list, got {type(order).__name__}"
    labels = [getattr(node, "label", node) for node in order]
    reachable, todo = set(), [output]
    while todo:
        label = todo.pop()
        if label not in reachable:
            reachable.add(label)
            todo.extend(edges[label])
    assert len(labels) == len(set(labels)), f"a node appears more than once: {short(labels)}"
    assert set(labels) == reachable, \
        f"expected the {len(reachable)} reachable nodes once each, got {short(labels)}"
    position = {label: i for i, label in enumerate(labels)}
    late = [(p, n) for n in labels for p in edges[n] if position[p] > position[n]]
    assert not late, f"{late[0][0]} feeds {late[0][1]} but comes after it in {short(labels)}"
    return {"count": len(labels), "last_is_output": labels[-1] == output, "misplaced": len(late)}


@q5.public
def diamond_graph(sub):
    #   a -> b -> d,  a -> c -> d:  a feeds two nodes
    return check_order(sub, {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, "d")


@q5.public
def minicnn_graph(sub):
    f = sub.functions
    x = mc.Tensor(np.ones((2, 3)), requires_grad=True)
    e = f.Exp()(x)
    loss = f.SoftmaxCrossEntropy()(f.Multiply()(e, e), mc.Tensor(np.array([0, 1])))
    names = [type(fn).__name__ for fn in sub.topo.backward_order(loss)]
    assert names == ["SoftmaxCrossEntropy", "Multiply", "Exp"], f"backward order: {names}"
    return {"count": len(names)}


# BEGIN HIDDEN
@q5.hidden
def wide_graph(sub):
    edges = {0: [1, 2, 3], 1: [4, 5], 2: [4, 6], 3: [6, 7], 4: [8], 5: [8], 6: [8, 7], 7: [8], 8: [],
             9: [0]}
    return check_order(sub, edges, 9)


@q5.hidden
def deep_graph(sub):
    depth = 3000                              # deeper than Python's recursion limit
    edges = {i: ([i + 1, i + 2] if i + 2 <= depth else [depth] if i < depth else []) for i in range(depth + 1)}
    return check_order(sub, edges, 0)
# END HIDDEN


# --------------------------------------------------------------------------------------------
q6 = Question("q6", "A two-layer network through the engine", points=20)


class _Reference:
    """A stand-in for one of your Functions, made of minicnn's own operations: Q6 checks the
    network (how ``scores`` wires the Functions, ``train_step``), not Q1-Q4 again."""

    def __init__(self, apply):
        self.apply = apply

    def __call__(self):
        return self.apply


REFERENCE_FUNCTIONS = {
    "MatMul": _Reference(lambda a, b: a @ b),
    "AddBias": _Reference(lambda x, b: x + b),
    "ReLU": _Reference(F.relu), "Sigmoid": _Reference(F.sigmoid), "Tanh": _Reference(F.tanh),
    "SoftmaxCrossEntropy": _Reference(F.cross_entropy),
}


def reference_network(sub):
    """``sub.network`` with minicnn's operations in place of the Functions of ``functions.py``."""
    activations = {"relu": REFERENCE_FUNCTIONS["ReLU"], "sigmoid": REFERENCE_FUNCTIONS["Sigmoid"],
                   "tanh": REFERENCE_FUNCTIONS["Tanh"]}
    return substitute(sub.network, ACTIVATIONS=activations, **REFERENCE_FUNCTIONS)


def network_gradients(sub, activation, seed):
    with reference_network(sub) as net:
        model = net.TwoLayerNet(6, 5, 4, activation=activation, seed=seed, dtype=np.float64)
        x = mc.Tensor(random(seed + 1, 7, 6))
        y = mc.Tensor(np.random.default_rng(seed + 2).integers(0, 4, 7))
        total = model.loss(x, y)
        total.backward()
    out = {"loss": total.numpy()}
    for name, p in zip(["w1", "b1", "w2", "b2"], model.parameters()):
        if p.grad is not None:                  # a parameter scores() does not use: not returned
            out[name] = p.grad
    return out


@q6.public
def network_tanh_gradients(sub):
    return network_gradients(sub, "tanh", 71)


@q6.public
def network_learns(sub):
    with reference_network(sub) as net:
        x_train, y_train, x_test, y_test = net.load_data(300, 200, synthetic=True, seed=3)
        model = net.TwoLayerNet(784, 32, 10, seed=4)
        history = net.train(model, x_train, y_train, x_test, y_test, epochs=2, batch_size=32,
                            lr=0.02, log=lambda message: None)
    # After 2 epochs on an easy problem the test accuracy is above 60%.
    return {"learned": history[-1]["test_acc"] > 0.6}


# BEGIN HIDDEN
@q6.hidden
def network_relu_values(sub):
    return network_gradients(sub, "relu", 81)


@q6.hidden
def network_sigmoid_values(sub):
    return network_gradients(sub, "sigmoid", 91)


@q6.hidden
def train_step_values(sub):
    with reference_network(sub) as net:
        model = net.TwoLayerNet(6, 5, 3, seed=101, dtype=np.float64)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        x, y = mc.Tensor(random(102, 8, 6)), mc.Tensor(np.arange(8) % 3)
        losses = [net.train_step(model, optimizer, x, y) for _ in range(3)]
    return {"losses": np.array(losses), "w1": model.w1.numpy(), "b2": model.b2.numpy()}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q7 = Question("q7", "Optimisers from their update formulas", points=15)


def fixed_gradient_steps(optimiser_class, gradients, **settings):
    """Start one parameter at [1, 2] and take one step per gradient of ``gradients`` (given, not
    computed: the numbers can be followed by hand). Returns the parameter after each step."""
    p = tensors([1.0, 2.0])[0]
    optimiser = optimiser_class([p], **settings)
    after = []
    for g in gradients:
        p.grad = mc.Tensor(np.array(g, dtype=np.float64))
        optimiser.step()
        after.append(p.numpy().copy())
    return optimiser, after


@q7.public
def sgd_momentum_small_example(sub):
    # lr 0.1, momentum 0.9, gradients [1, -1] then [1, 1]:
    # v = [1, -1], p = [0.9, 2.1]; then v = [1.9, 0.1], p = [0.71, 2.09].
    optimiser, (p1, p2) = fixed_gradient_steps(sub.optimizers.SGDMomentum, [[1, -1], [1, 1]],
                                               lr=0.1, momentum=0.9)
    return {"p1": p1, "p2": p2, "velocity": optimiser.velocity[0]}


@q7.public
def nesterov_small_example(sub):
    # The same with nesterov=True: the velocities are the same, the steps are not:
    # p = [1, 2] - 0.1 * ([1, -1] + 0.9 * [1, -1]) = [0.81, 2.19], then p = [0.539, 2.081].
    optimiser, (p1, p2) = fixed_gradient_steps(sub.optimizers.SGDMomentum, [[1, -1], [1, 1]],
                                               lr=0.1, momentum=0.9, nesterov=True)
    return {"p1": p1, "p2": p2, "velocity": optimiser.velocity[0]}


@q7.public
def adam_small_example(sub):
    # lr 0.1, gradients of very different sizes, [0.001, -100] then [0.003, 100]. The first step
    # moves each parameter by lr (p = [0.900001, 2.1]): the bias corrections make m_hat / sqrt(v_hat)
    # = g / |g| at t = 1 (up to eps), whatever the size of g. After the second step
    # m = [0.00039, 1.0], v = [9.999e-9, 19.99] and p = [0.80822, 2.09474].
    optimiser, (p1, p2) = fixed_gradient_steps(sub.optimizers.Adam, [[1e-3, -100], [3e-3, 100]],
                                               lr=0.1)
    return {"p1": p1, "p2": p2, "m": optimiser.m[0], "v": optimiser.v[0]}


# BEGIN HIDDEN
def optimiser_trajectory(optimiser_class, seed, steps=10, **settings):
    """Ten steps on two parameters of a noisy quadratic (each gradient depends on where the
    parameter is): the parameters after the first step and after the last, and the state. The
    references are the solution's, which equal minicnn's ``optim.SGD`` / ``optim.Adam``."""
    rng = np.random.default_rng(seed)
    params = tensors(rng.standard_normal((3, 4)), rng.standard_normal(5))
    curvature = [rng.uniform(0.1, 3.0, p.shape) for p in params]
    noise = [rng.standard_normal((steps, *p.shape)) for p in params]
    optimiser = optimiser_class(params, **settings)
    out = {}
    for t in range(steps):
        for p, c, n in zip(params, curvature, noise):
            p.grad = mc.Tensor(c * p.numpy() + n[t])
        optimiser.step()
        if t == 0:
            out.update({f"p{i}_step1": p.numpy().copy() for i, p in enumerate(params)})
    out.update({f"p{i}_step{steps}": p.numpy() for i, p in enumerate(params)})
    return optimiser, out


@q7.hidden
def sgd_momentum_trajectory(sub):
    optimiser, out = optimiser_trajectory(sub.optimizers.SGDMomentum, 121, lr=0.05, momentum=0.8)
    return {**out, "velocity0": optimiser.velocity[0], "velocity1": optimiser.velocity[1]}


@q7.hidden
def nesterov_trajectory(sub):
    optimiser, out = optimiser_trajectory(sub.optimizers.SGDMomentum, 122, lr=0.05, momentum=0.9,
                                          nesterov=True)
    return {**out, "velocity0": optimiser.velocity[0], "velocity1": optimiser.velocity[1]}


@q7.hidden
def adam_trajectory(sub):
    optimiser, out = optimiser_trajectory(sub.optimizers.Adam, 123, lr=0.02, betas=(0.8, 0.99),
                                          eps=1e-6)
    return {**out, "m0": optimiser.m[0], "v0": optimiser.v[0], "m1": optimiser.m[1], "v1": optimiser.v[1]}
# END HIDDEN


QUESTIONS = [q1, q2, q3, q4, q5, q6, q7]

#: Written questions, graded by hand from ``answers.md`` (not part of the automatic total).
WRITTEN = {"w1": ("The order of the backward walk", 10), "w2": ("Reading the gradients", 5)}


def make_references(sub):
    """The checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
