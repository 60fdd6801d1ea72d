"""Assignment 3, Q1-Q3: the lecture's numbers, by computation.

Every number the lecture quotes about an architecture -- output shapes, parameter counts,
multiply-accumulates (MACs), receptive fields -- follows from a few formulas. Write them here, then
let them reproduce AlexNet's table, the 3x3-versus-7x7 argument of VGG and the Inception
bottleneck, and count DenseNet-121's parameters. (``minicnn summary alexnet`` and ``minicnn lecture
alexnet-table`` print the same numbers, measured on the real model: use them to check yourself.)

A network is described as a list of layers, each a tuple:

    ("conv", out_channels, kernel, stride, pad)      a square convolution, with bias
    ("pool", kernel, stride)                         max pooling, no padding, no parameters
    ("fc", out_features)                             fully connected, with bias (flattens first)

Sizes are rounded down, as in PyTorch: ``(size + 2 * pad - kernel) // stride + 1``.
"""

#: AlexNet (Krizhevsky et al. 2012, one-GPU version, as in ``minicnn.models.alexnet``), on a
#: 3x227x227 input. The ReLUs, dropout and local response normalisation change no shape and hold no
#: parameters, so they are left out.
ALEXNET = [
    ("conv", 96, 11, 4, 0), ("pool", 3, 2),
    ("conv", 256, 5, 1, 2), ("pool", 3, 2),
    ("conv", 384, 3, 1, 1), ("conv", 384, 3, 1, 1), ("conv", 256, 3, 1, 1), ("pool", 3, 2),
    ("fc", 4096), ("fc", 4096), ("fc", 1000),
]
ALEXNET_INPUT = (3, 227, 227)


# ------------------------------------------------------------------------------------------------
# Q1. Output shapes, parameters and MACs: AlexNet's table
# ------------------------------------------------------------------------------------------------

def conv_params(in_channels, out_channels, kernel, bias=True):
    """Number of parameters of a ``kernel`` x ``kernel`` convolution (weights, plus one bias per
    output channel when ``bias``)."""
    params = None
    # BEGIN SOLUTION (hint: one kernel x kernel x in_channels filter per output channel)
    params = out_channels * in_channels * kernel * kernel + (out_channels if bias else 0)
    # END SOLUTION
    return params


def layer_table(layers, input_shape):
    """One row per layer of ``layers`` (see the module docstring) applied to ``input_shape``
    ``(C, H, W)``: a list of dicts with the keys

        "kind"          "conv", "pool" or "fc"
        "output_shape"  (C, H, W) for conv and pool, (features,) for fc
        "params"        number of parameters (weights and biases)
        "macs"          multiply-accumulates per image: every output value of a conv costs
                        in_channels * kernel * kernel MACs, of an fc layer in_features MACs;
                        pooling counts 0 (it does comparisons, not multiplications)
    """
    rows = []
    # BEGIN SOLUTION (hint: carry the current shape through the loop; an fc layer sees C * H * W inputs)
    shape = tuple(input_shape)
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, out_channels, kernel, stride, pad = layer
            c, h, w = shape
            h_out, w_out = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
            shape = (out_channels, h_out, w_out)
            params = conv_params(c, out_channels, kernel)
            macs = out_channels * h_out * w_out * c * kernel * kernel
        elif kind == "pool":
            _, kernel, stride = layer
            c, h, w = shape
            shape = (c, (h - kernel) // stride + 1, (w - kernel) // stride + 1)
            params = macs = 0
        elif kind == "fc":
            in_features = 1
            for n in shape:
                in_features *= n
            shape = (layer[1],)
            params = in_features * layer[1] + layer[1]
            macs = in_features * layer[1]
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
        rows.append({"kind": kind, "output_shape": shape, "params": params, "macs": macs})
    # END SOLUTION
    return rows


# ------------------------------------------------------------------------------------------------
# Q2. Receptive fields: three 3x3 convolutions against one 7x7
# ------------------------------------------------------------------------------------------------

def receptive_field(layers):
    """The receptive field (in input pixels, along one axis) of one output cell of a stack of
    layers, each given as ``(kernel, stride)``, first layer first.

    One 3x3 layer sees 3 pixels; each further layer with kernel k adds (k - 1) times the distance,
    in input pixels, between two neighbouring cells of its input (the product of the strides of the
    layers before it).
    """
    field = None
    # BEGIN SOLUTION (hint: keep two numbers, the field so far and the jump between neighbouring cells)
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    # END SOLUTION
    return field


def stack_versus_single(channels, n=3, small=3):
    """VGG's argument: ``n`` stacked ``small`` x ``small`` convolutions (``channels`` in and out,
    stride 1, no bias) against the one convolution that sees as far.

    Returns a dict: ``"kernel"`` (the single convolution's kernel size, same receptive field),
    ``"stack_params"``, ``"single_params"`` and ``"stack_relus"``/``"single_relus"`` (the number of
    non-linearities, one after each convolution).
    """
    result = None
    # BEGIN SOLUTION (hint: receptive_field and conv_params do the work)
    kernel = receptive_field([(small, 1)] * n)
    result = {"kernel": kernel,
              "stack_params": n * conv_params(channels, channels, small, bias=False),
              "single_params": conv_params(channels, channels, kernel, bias=False),
              "stack_relus": n, "single_relus": 1}
    # END SOLUTION
    return result


# ------------------------------------------------------------------------------------------------
# Q3. Inception: the naive module against the one with 1x1 bottlenecks
# ------------------------------------------------------------------------------------------------

def inception_cost(input_shape, ch1x1, ch3x3, ch5x5, reduce=None):
    """Parameters, MACs and output channels of an Inception module on ``input_shape`` (C, H, W).

    Four parallel branches, all keeping H x W (``same`` padding), concatenated along channels:
    a 1x1 convolution (``ch1x1`` filters), a 3x3 (``ch3x3``), a 5x5 (``ch5x5``) and a 3x3 max-pool
    (stride 1; it keeps the C input channels). All convolutions have biases.

    With ``reduce=None`` (the naive module) the 3x3 and 5x5 convolutions see all C input channels.
    With ``reduce=r`` a 1x1 convolution down to ``r`` channels comes first in each of those two
    branches (two separate 1x1 convolutions), and the 3x3 and 5x5 see ``r`` channels.

    Returns a dict ``{"params": ..., "macs": ..., "out_channels": ...}``.
    """
    result = None
    # BEGIN SOLUTION (hint: list the convolutions as (in, out, kernel); every one runs at all H x W positions)
    c, h, w = input_shape
    if reduce is None:
        convs = [(c, ch1x1, 1), (c, ch3x3, 3), (c, ch5x5, 5)]
    else:
        convs = [(c, ch1x1, 1), (c, reduce, 1), (reduce, ch3x3, 3), (c, reduce, 1), (reduce, ch5x5, 5)]
    result = {"params": sum(conv_params(i, o, k) for i, o, k in convs),
              "macs": sum(h * w * o * i * k * k for i, o, k in convs),
              "out_channels": ch1x1 + ch3x3 + ch5x5 + c}
    # END SOLUTION
    return result


# ------------------------------------------------------------------------------------------------
# Q7. DenseNet's parameter count
# ------------------------------------------------------------------------------------------------

def densenet_params(growth_rate, block_config, num_init_features, bn_size=4, compression=0.5,
                    num_classes=1000, in_channels=3):
    """Number of parameters of an ImageNet DenseNet-BC (Huang et al. 2017, Table 1; torchvision's
    and ``minicnn.models.DenseNet``'s layout), in order:

    - stem: a 7x7 convolution ``in_channels`` -> ``num_init_features`` (no bias), batch norm
      (then ReLU and max-pooling: no parameters);
    - one dense block per entry of ``block_config`` (its number of layers), each layer a
      ``DenseLayer`` of ``blocks.py``: batch norm, 1x1 convolution to ``bn_size * growth_rate``,
      batch norm, 3x3 convolution to ``growth_rate``, no biases; a block adds
      ``layers * growth_rate`` channels;
    - between two blocks (not after the last) a transition layer: batch norm, a 1x1 convolution
      (no bias) down to ``floor(channels * compression)`` channels (then 2x2 average pooling);
    - after the last block a batch norm, then the classifier: fully connected, with bias.

    A batch norm on C channels has 2C parameters (gamma and beta; its running averages are
    buffers, not parameters). The image size does not matter. DenseNet-121 is
    ``densenet_params(32, (6, 12, 24, 16), 64)``: 7,978,856 parameters.
    """
    if not 0 < compression <= 1:
        raise ValueError(f"densenet_params: expected 0 < compression <= 1, got {compression}")
    if not block_config or min(block_config) < 1:
        raise ValueError(f"densenet_params: expected at least one block of at least one layer, "
                         f"got block_config={block_config}")
    params = None
    # BEGIN SOLUTION (hint: follow the channel count through the network; conv_params does the convolutions)
    width = bn_size * growth_rate                       # the channels between a layer's two convs
    channels = num_init_features
    params = conv_params(in_channels, channels, 7, bias=False) + 2 * channels            # stem
    for block, num_layers in enumerate(block_config):
        for _ in range(num_layers):
            params += 2 * channels + conv_params(channels, width, 1, bias=False)         # BN, 1x1
            params += 2 * width + conv_params(width, growth_rate, 3, bias=False)         # BN, 3x3
            channels += growth_rate
        if block < len(block_config) - 1:
            out_channels = int(channels * compression)
            params += 2 * channels + conv_params(channels, out_channels, 1, bias=False)  # transition
            channels = out_channels
    params += 2 * channels + channels * num_classes + num_classes     # last BN, classifier
    # END SOLUTION
    return params


if __name__ == "__main__":
    rows = layer_table(ALEXNET, ALEXNET_INPUT)
    total_params, total_macs = sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
    print(f"{'layer':<6} {'output':>14} {'params':>12} {'MACs':>15}")
    for r in rows:
        print(f"{r['kind']:<6} {'x'.join(map(str, r['output_shape'])):>14} {r['params']:>12,} {r['macs']:>15,}")
    print(f"total  {'':>14} {total_params:>12,} {total_macs:>15,}")
    print(stack_versus_single(64))
    print("naive", inception_cost((256, 28, 28), 128, 192, 96))
    print("bottleneck", inception_cost((256, 28, 28), 128, 192, 96, reduce=64))
    print(f"DenseNet-121: {densenet_params(32, (6, 12, 24, 16), 64):,} parameters")
