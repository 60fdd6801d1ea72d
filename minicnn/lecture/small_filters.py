"""Why VGG stacks 3x3 convolutions: three 3x3 layers vs one 7x7 layer, both C -> C channels.

* receptive field: each 3x3 layer (stride 1) widens it by 2 pixels: 3, 5, 7 -- the same as one 7x7;
* parameters (no biases): 3 x (3*3*C*C) = 27 C^2 against 7*7*C*C = 49 C^2 (45% fewer);
* non-linearities: three ReLUs instead of one (a more discriminative function);
* compute: 27 C^2 vs 49 C^2 MACs per output position, measured here with ``summary``.

Each layer pads by (k-1)/2, so both keep the spatial size and the MACs compare position for position.
"""
from .. import nn
from ..summary import summary
from .common import figure


def stack_of_3x3(channels, n=3):
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU()]
    return nn.Sequential(*layers)


def single_conv(channels, kernel=7):
    return nn.Sequential(nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False), nn.ReLU())


def receptive_field(model):
    """Receptive field (pixels on a side) of one output unit of a Sequential of convs/pools."""
    rf, jump = 1, 1
    for m in model.children():
        k = getattr(m, "kernel_size", None)
        if k is None:
            continue
        k = k[0] if isinstance(k, (tuple, list)) else k
        s = getattr(m, "stride", 1)
        s = (s[0] if isinstance(s, (tuple, list)) else s) or k
        rf += (k - 1) * jump
        jump *= s
    return rf


def describe(model, input_shape):
    rows = summary(model, input_shape, print_fn=None)
    return {"params": sum(p.numel() for p in model.parameters()),
            "macs": sum(r["macs"] for r in rows),
            "receptive_field": receptive_field(model),
            "nonlinearities": sum(1 for r in rows if r["type"] == "ReLU"),
            "conv_layers": sum(1 for r in rows if r["type"] == "Conv2d"),
            "output_shape": list(rows[-1]["output_shape"])}


def run(ctx):
    c = ctx.pick(16, 64)
    size = ctx.pick(16, 56)
    input_shape = (c, size, size)
    stacked = describe(stack_of_3x3(c), input_shape)
    single = describe(single_conv(c), input_shape)
    positions = size * size

    ctx.print(f"C = {c} channels in and out, input {c}x{size}x{size} (padding keeps {size}x{size}); "
              f"no biases\n")
    header = (f"{'':<22} {'receptive field':>15} {'params':>10} {'= x C^2':>8} {'ReLUs':>6} {'MACs':>14} "
              f"{'/ position':>11}")
    ctx.print(header)
    ctx.print("-" * len(header))
    for label, d in (("three 3x3 convs", stacked), ("one 7x7 conv", single)):
        ctx.print(f"{label:<22} {d['receptive_field']:>12}x{d['receptive_field']:<2} {d['params']:>10,} "
                  f"{d['params'] / c ** 2:>8g} {d['nonlinearities']:>6} {d['macs']:>14,} "
                  f"{d['macs'] // positions:>11,}")
    ratio = stacked["params"] / single["params"]
    ctx.print(f"\nsame {stacked['receptive_field']}x{stacked['receptive_field']} receptive field; "
              f"the stack has {100 * (1 - ratio):.0f}% fewer parameters and MACs (27/49 = {27 / 49:.3f}) "
              f"and {stacked['nonlinearities']} non-linearities instead of {single['nonlinearities']}.")

    # The general rule: n stacked 3x3 layers see (2n+1)x(2n+1) with 9n C^2 instead of (2n+1)^2 C^2.
    general = [{"n": n, "receptive_field": 2 * n + 1, "stacked_per_c2": 9 * n, "single_per_c2": (2 * n + 1) ** 2}
               for n in (1, 2, 3, 4, 5)]
    ctx.print("\nn stacked 3x3 layers vs one (2n+1)x(2n+1) layer, parameters / C^2:")
    for g in general:
        rf = f"{g['receptive_field']}x{g['receptive_field']}"
        ctx.print(f"  n={g['n']}: {rf:<6} {g['stacked_per_c2']:>3} vs {g['single_per_c2']:>3}")

    _plot(ctx, stacked, single, c)
    return {"channels": c, "input_shape": list(input_shape), "stacked_3x3": stacked, "single_7x7": single,
            "params_per_c2": {"stacked_3x3": stacked["params"] / c ** 2, "single_7x7": single["params"] / c ** 2},
            "ratio": ratio, "general": general}


def _plot(ctx, stacked, single, c):
    fig = figure(8, 3.5)
    if fig is None:
        return
    axes = fig.subplots(1, 3)
    labels = ["3 x (3x3)", "1 x (7x7)"]
    for ax, key, title in zip(axes, ("params", "macs", "nonlinearities"),
                              (f"parameters (C={c})", "MACs", "non-linearities")):
        ax.bar(labels, [stacked[key], single[key]], color=["C0", "C1"])
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"same {single['receptive_field']}x{single['receptive_field']} receptive field: "
                 f"27C\u00b2 vs 49C\u00b2 parameters")
    ctx.save_figure(fig, "small_filters.png")
