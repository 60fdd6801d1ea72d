"""The grader of Assignment 3: questions, points, public checks and hidden checks.

Run it yourself at any time::

    python grader.py            (or: minicnn assignment grade .)

to run the *public* checks: the lecture's numbers, shapes and gradients, compared with the
instructor's solution's (shipped in ``expected.npz``), each value by itself: a public check that
passes here passes in the final grade, with the same points. The final grade also runs *hidden*
checks on other architectures, blocks and inputs; they are not in your copy. Q2, Q3 and Q7's
parameter count use a reference ``conv_params`` (counted on a real ``nn.Conv2d``), and Q7's dense
block the dense layer of ``minicnn.models.densenet``, so a mistake in one part costs points once.
``sub.counting`` and ``sub.blocks`` are your files.
"""
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import nn
from minicnn.assignment import Question, collect_references, substitute
from minicnn.models.densenet import _DenseLayer as ReferenceDenseLayer

TITLE = "Assignment 3: Architectures"
SUBMISSION_FILES = ["counting.py", "blocks.py"]


def random(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def counted_conv_params(in_channels, out_channels, kernel, bias=True):
    """Q1's ``conv_params``, by counting the parameters of a real convolution: Q2 and Q3 use this
    instead of yours, so that a mistake in Q1 costs its points once."""
    layer = nn.Conv2d(in_channels, out_channels, kernel, bias=bias)
    return sum(int(p.numpy().size) for p in layer.parameters())


def with_reference_q1(sub):
    return substitute(sub.counting, conv_params=counted_conv_params)


STACK_KEYS = ("kernel", "single_params", "single_relus", "stack_params", "stack_relus")
COST_KEYS = ("macs", "out_channels", "params")


def pick(result, keys, prefix=""):
    """The values of ``keys`` in the dict ``result`` (other keys are ignored; a missing one is
    simply not returned, and fails by itself)."""
    assert isinstance(result, dict), f"expected a dict, got {type(result).__name__}"
    return {prefix + key: result[key] for key in keys if key in result}


def table_arrays(rows):
    """The rows of ``layer_table`` as arrays: output sizes (padded with zeros), params, MACs."""
    assert isinstance(rows, list) and rows, f"layer_table must return a non-empty list, got {rows!r}"
    shapes = np.zeros((len(rows), 3), dtype=np.int64)
    for i, row in enumerate(rows):
        shape = tuple(row["output_shape"])
        shapes[i, :len(shape)] = shape
    return {"shapes": shapes, "params": np.array([r["params"] for r in rows], dtype=np.int64),
            "macs": np.array([r["macs"] for r in rows], dtype=np.int64)}


# --------------------------------------------------------------------------------------------
q1 = Question("q1", "Shapes, parameters, MACs: AlexNet's table", points=20)


@q1.public
def conv_params_examples(sub):
    found = [sub.counting.conv_params(3, 96, 11), sub.counting.conv_params(64, 64, 3, bias=False)]
    assert found == [34944, 36864], f"conv_params: expected [34944, 36864], got {found}"
    return {"params": np.array(found)}


@q1.public
def alexnet_totals(sub):
    # conv1's output is (96, 55, 55); AlexNet has 62,378,344 parameters, 94% of them in the fc
    # layers. Shapes, parameters and MACs are scored separately.
    c = sub.counting
    return table_arrays(c.layer_table(c.ALEXNET, c.ALEXNET_INPUT))


# BEGIN HIDDEN
@q1.hidden
def another_network(sub):
    layers = [("conv", 32, 5, 2, 2), ("pool", 2, 2), ("conv", 48, 3, 1, 0), ("conv", 64, 3, 2, 1),
              ("pool", 3, 2), ("fc", 100), ("fc", 7)]
    return table_arrays(sub.counting.layer_table(layers, (3, 97, 83)))


@q1.hidden
def fc_only(sub):
    return table_arrays(sub.counting.layer_table([("fc", 30), ("fc", 5)], (2, 4, 6)))
# END HIDDEN


# --------------------------------------------------------------------------------------------
q2 = Question("q2", "Receptive fields: 3x3 stacks against 7x7", points=10)


@q2.public
def three_3x3_see_like_one_7x7(sub):
    # Three stacked 3x3 convolutions see 7 pixels, with 27C^2 parameters against 49C^2.
    c = sub.counting
    field = c.receptive_field([(3, 1)] * 3)
    with with_reference_q1(sub):
        result = c.stack_versus_single(64)
    return {"field": field, **pick(result, STACK_KEYS)}


# BEGIN HIDDEN
@q2.hidden
def strided_fields(sub):
    c = sub.counting
    fields = [c.receptive_field(layers) for layers in
              ([(7, 2), (3, 2), (3, 1), (3, 1)], [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1)], [(1, 1)],
               [(2, 2)] * 5)]
    return {"fields": np.array(fields)}


@q2.hidden
def other_stacks(sub):
    c = sub.counting
    with with_reference_q1(sub):
        a, b = c.stack_versus_single(32, n=2, small=5), c.stack_versus_single(10, n=4)
    return {**pick(a, STACK_KEYS, "a_"), **pick(b, STACK_KEYS, "b_")}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q3 = Question("q3", "Inception: naive against bottleneck", points=10)


@q3.public
def lecture_inception(sub):
    # The lecture's numbers: 1,089,952 parameters naive, 330,272 with the bottleneck; both
    # output 672 channels.
    c = sub.counting
    with with_reference_q1(sub):
        naive = c.inception_cost((256, 28, 28), 128, 192, 96)
        bottleneck = c.inception_cost((256, 28, 28), 128, 192, 96, reduce=64)
    return {**pick(naive, COST_KEYS, "naive_"), **pick(bottleneck, COST_KEYS, "bottleneck_")}


# BEGIN HIDDEN
@q3.hidden
def other_inception(sub):
    c = sub.counting
    with with_reference_q1(sub):
        naive = c.inception_cost((192, 14, 12), 64, 96, 32)
        bottleneck = c.inception_cost((192, 14, 12), 64, 96, 32, reduce=24)
    return {**pick(naive, COST_KEYS, "naive_"), **pick(bottleneck, COST_KEYS, "bottleneck_")}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q4 = Question("q4", "Residual blocks", points=20)


def run_block(block, x, seed):
    """Forward (training mode) and backward of a float64 ``block`` with a random upstream
    gradient; returns the output, the input's gradient and the first conv's weight gradient."""
    block.double()
    x = mc.Tensor(x, requires_grad=True)
    out = block(x)
    out.backward(random(seed, *out.shape))
    return {"out": out.numpy(), "dx": x.grad, "dconv1": block.conv1.weight.grad}


@q4.public
def basic_block_shapes(sub):
    mc.manual_seed(41)
    same = sub.blocks.BasicBlock(4, 4)
    result = run_block(same, random(42, 2, 4, 6, 6), 43)
    assert result["out"].shape == (2, 4, 6, 6), f"BasicBlock(4, 4): output {result['out'].shape}"
    assert result["out"].min() >= 0, "a block ends with a ReLU: no negative outputs"
    mc.manual_seed(44)
    down = sub.blocks.BasicBlock(4, 8, stride=2)
    shape = run_block(down, random(45, 2, 4, 6, 6), 46)["out"].shape
    assert shape == (2, 8, 3, 3), f"BasicBlock(4, 8, stride=2) on (2, 4, 6, 6): output {shape}"
    return result


@q4.public
def shortcut_carries_the_input(sub):
    # With the last batch norm's scale at 0, the residual branch adds nothing: the block is
    # relu(x + 0) = relu(x) (for the identity shortcut), and the plain block outputs 0.
    mc.manual_seed(47)
    block = sub.blocks.BasicBlock(3, 3)
    block.bn2.weight.data[...] = 0
    x = random(48, 2, 3, 5, 5)
    result = run_block(block, x, 49)
    assert np.allclose(result["out"], np.maximum(x, 0)), \
        "with bn2's scale at 0, a residual block must output relu(x)"
    mc.manual_seed(47)
    plain = sub.blocks.BasicBlock(3, 3, residual=False)
    plain.bn2.weight.data[...] = 0
    assert np.allclose(run_block(plain, x, 49)["out"], 0), "a plain block with bn2 scale 0 outputs 0"
    return result


@q4.public
def bottleneck_shape(sub):
    mc.manual_seed(50)
    block = sub.blocks.Bottleneck(8, 4, stride=2)
    result = run_block(block, random(51, 2, 8, 6, 6), 52)
    assert result["out"].shape == (2, 16, 3, 3), f"Bottleneck(8, 4, stride=2): output {result['out'].shape}"
    return result


# BEGIN HIDDEN
@q4.hidden
def basic_block_values(sub):
    mc.manual_seed(61)
    return run_block(sub.blocks.BasicBlock(3, 6, stride=2), random(62, 3, 3, 7, 5), 63)


@q4.hidden
def plain_block_values(sub):
    mc.manual_seed(64)
    return run_block(sub.blocks.BasicBlock(5, 5, residual=False), random(65, 2, 5, 4, 4), 66)


@q4.hidden
def bottleneck_values(sub):
    mc.manual_seed(67)
    identity = run_block(sub.blocks.Bottleneck(8, 2), random(68, 2, 8, 5, 5), 69)
    mc.manual_seed(70)
    projected = run_block(sub.blocks.Bottleneck(6, 3, stride=2), random(71, 2, 6, 5, 4), 72)
    return {**identity, **{f"projected_{k}": v for k, v in projected.items()}}
# END HIDDEN


# --------------------------------------------------------------------------------------------
q5 = Question("q5", "Batch norm's backward pass", points=15)


def numerical_gradient(f, x, dout, h=1e-5):
    """Central differences of ``sum(f(x) * dout)`` with respect to ``x`` (changed and restored)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = np.sum(f(x) * dout)
        x[index] = old - h
        minus = np.sum(f(x) * dout)
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


def batchnorm_gradients(sub, x, gamma, beta, dout):
    _, cache = sub.blocks.batchnorm_forward(x, gamma, beta)
    gradients = sub.blocks.batchnorm_backward(dout, cache)
    return {name: value for name, value in zip(("dx", "dgamma", "dbeta"), gradients)
            if value is not None}


@q5.public
def batchnorm_gradcheck(sub):
    # dx, dgamma and dbeta are scored one by one (compare each with numerical_gradient below
    # to see which is off).
    x, gamma, beta, dout = 2 + 3 * random(81, 6, 4), random(82, 4), random(83, 4), random(84, 6, 4)
    return batchnorm_gradients(sub, x, gamma, beta, dout)


# BEGIN HIDDEN
@q5.hidden
def batchnorm_values(sub):
    return batchnorm_gradients(sub, -1 + 0.5 * random(91, 9, 7), random(92, 7), random(93, 7),
                               random(94, 9, 7))


@q5.hidden
def batchnorm_unit_scale(sub):
    # gamma = 1, beta = 0: the plain normalisation, on a batch of 5.
    x, dout = random(95, 5, 3), random(96, 5, 3)
    return batchnorm_gradients(sub, x, np.ones(3), np.zeros(3), dout)
# END HIDDEN


# --------------------------------------------------------------------------------------------
q6 = Question("q6", "Batch norm in training and test mode: running averages", points=10)


def batchnorm_sequence(sub, batches, test_batch, gamma, beta, momentum=0.1, eps=1e-5):
    """Training mode on each of ``batches`` in turn, from running averages 0 and 1 (a fresh
    layer's), then test mode on ``test_batch``: every training output, the running averages after
    every step, and the test output (scored one by one)."""
    running_mean, running_var = np.zeros(len(gamma)), np.ones(len(gamma))
    outs, means, variances = [], [], []
    for x in batches:
        out, running_mean, running_var = sub.blocks.batchnorm(
            x, gamma, beta, running_mean, running_var, True, momentum=momentum, eps=eps)
        outs.append(out)
        means.append(running_mean)
        variances.append(running_var)
    test_out, _, _ = sub.blocks.batchnorm(test_batch, gamma, beta, running_mean, running_var, False,
                                          momentum=momentum, eps=eps)
    return {"train_out": np.stack(outs), "running_mean": np.stack(means),
            "running_var": np.stack(variances), "test_out": test_out}


def channels_last(images):
    """(N, C, H, W) -> (N * H * W, C): each channel's values over the batch and the pixels."""
    return images.transpose(0, 2, 3, 1).reshape(-1, images.shape[1])


@q6.public
def running_averages_over_batches(sub):
    # Three training batches, then test mode: nn.BatchNorm1d(4) does the same (train(), then
    # eval()). The outputs, running means, running variances and test outputs score by themselves.
    batches = [1 + 2 * random(seed, 8, 4) for seed in (101, 102, 103)]
    return batchnorm_sequence(sub, batches, random(104, 3, 4), random(105, 4), random(106, 4))


@q6.public
def test_mode_on_one_example(sub):
    # One example: training mode cannot normalise it (its variance is 0), test mode can, with
    # the running averages, which it leaves unchanged.
    running_mean, running_var = random(107, 4), 0.5 + random(108, 4) ** 2
    out, mean, var = sub.blocks.batchnorm(random(109, 1, 4), random(110, 4), random(111, 4),
                                          running_mean.copy(), running_var.copy(), False)
    assert np.shape(out) == (1, 4), f"test mode on a (1, 4) batch: output of shape {np.shape(out)}"
    return {"out": out, "running_mean": mean, "running_var": var}


# BEGIN HIDDEN
@q6.hidden
def other_momentum_and_eps(sub):
    batches = [random(seed, 5, 3) * 3 - 1 for seed in (121, 122, 123, 124)]
    return batchnorm_sequence(sub, batches, random(125, 6, 3), random(126, 3), random(127, 3),
                              momentum=0.3, eps=1e-3)


@q6.hidden
def image_channels(sub):
    # nn.BatchNorm2d: each channel's N * H * W values form the batch (unbiased: m / (m - 1)).
    batches = [channels_last(2 + random(seed, 2, 3, 4, 4)) for seed in (131, 132, 133)]
    return batchnorm_sequence(sub, batches, channels_last(random(134, 1, 3, 2, 2)), random(135, 3),
                              random(136, 3))
# END HIDDEN


# --------------------------------------------------------------------------------------------
q7 = Question("q7", "DenseNet: the dense block and the parameter count", points=15)


def run_dense(module, x, seed):
    """Forward (training mode) and backward of a float64 dense layer or block with a random
    upstream gradient: the output and the input's gradient."""
    module.double()
    x = mc.Tensor(x, requires_grad=True)
    out = module(x)
    out.backward(random(seed, *out.shape))
    return {"out": out.numpy(), "dx": x.grad}


@q7.public
def dense_layer_shape(sub):
    mc.manual_seed(141)
    layer = sub.blocks.DenseLayer(6, 3)
    result = run_dense(layer, random(142, 2, 6, 5, 5), 143)
    assert result["out"].shape == (2, 3, 5, 5), \
        f"DenseLayer(6, growth_rate=3) on (2, 6, 5, 5): output {result['out'].shape}, expected (2, 3, 5, 5)"
    return {**result, "dconv1": layer.conv1.weight.grad}


@q7.public
def dense_block_concatenates(sub):
    # The block's own layers are a reference DenseLayer here (Q7's layer is scored above).
    x = random(145, 2, 4, 5, 5)
    with substitute(sub.blocks, DenseLayer=ReferenceDenseLayer):
        mc.manual_seed(144)
        block = sub.blocks.DenseBlock(3, 4, growth_rate=2)
        result = run_dense(block, x, 146)
    assert result["out"].shape == (2, 10, 5, 5), \
        f"DenseBlock(3, 4, growth_rate=2) on (2, 4, 5, 5): output {result['out'].shape}, expected (2, 10, 5, 5)"
    assert np.array_equal(result["out"][:, :4], x), \
        "a dense block's output starts with its input, unchanged, in the first in_channels channels"
    return result


@q7.public
def densenet121_params(sub):
    with with_reference_q1(sub):
        params = sub.counting.densenet_params(32, (6, 12, 24, 16), 64)
    assert params == 7978856, f"DenseNet-121: expected 7,978,856 parameters, got {params}"
    return {"params": params}


# BEGIN HIDDEN
@q7.hidden
def dense_layer_values(sub):
    mc.manual_seed(151)
    layer = sub.blocks.DenseLayer(5, 4, bn_size=2)
    return {**run_dense(layer, random(152, 3, 5, 4, 6), 153), "dconv1": layer.conv1.weight.grad}


@q7.hidden
def dense_block_values(sub):
    with substitute(sub.blocks, DenseLayer=ReferenceDenseLayer):
        mc.manual_seed(154)
        block = sub.blocks.DenseBlock(4, 3, growth_rate=3, bn_size=2)
        return run_dense(block, random(155, 2, 3, 6, 5), 156)


@q7.hidden
def other_densenets(sub):
    # DenseNet-161, -169, -201 and a small one: each scored by itself.
    configs = {"densenet161": ((48, (6, 12, 36, 24), 96), {}),
               "densenet169": ((32, (6, 12, 32, 32), 64), {}),
               "densenet201": ((32, (6, 12, 48, 32), 64), {}),
               "small": ((12, (3, 4, 5), 16), dict(bn_size=2, compression=0.7, num_classes=10, in_channels=1))}
    with with_reference_q1(sub):
        return {name: sub.counting.densenet_params(*args, **kwargs) for name, (args, kwargs) in configs.items()}
# END HIDDEN


QUESTIONS = [q1, q2, q3, q4, q5, q6, q7]

#: Written questions, graded by hand from ``answers.md`` (not part of the automatic total).
WRITTEN = {"w1": ("Where the parameters and the compute are", 5),
           "w2": ("The degradation experiment: explain the curves", 10),
           "w3": ("Batch norm at test time", 5)}


def make_references(sub):
    """The checks' outputs on ``sub`` (the instructor's solution, when building)."""
    return collect_references(QUESTIONS, sub)


if __name__ == "__main__":
    from minicnn.assignment import grade
    grade(Path(__file__).resolve().parent)
