"""The Inception module, naive vs with 1x1 bottlenecks (GoogLeNet), on the same input.

The lecture's example: a 28x28x256 input, 128 1x1, 192 3x3 and 96 5x5 filters and a 3x3 max-pool.
The naive module runs the 3x3 and 5x5 convolutions on all 256 input channels (~1,090k parameters,
~854 M MACs); the bottleneck module first reduces the input to 64 channels with 1x1 convolutions
(~330k parameters, ~259 M MACs): the same 672x28x28 output for a third of the cost. Built with
``models.Inception(..., naive=True)`` through :func:`minicnn.models.inception_comparison`.
"""
import time

import numpy as np

from .. import models
from ..backend import to_device
from ..function import no_grad
from ..tensor import Tensor
from .common import figure


def _forward_seconds(module, input_shape, batch, device, repeats=2):
    """Best wall time of a forward pass of ``batch`` inputs (no graph)."""
    x = Tensor(to_device(np.random.default_rng(0).standard_normal((batch,) + tuple(input_shape))
                         .astype(np.float32), device))
    module.to(device)
    module.eval()
    best = float("inf")
    with no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            best = min(best, time.perf_counter() - start)
    return best


def run(ctx):
    input_shape = (256, 28, 28)
    ch = dict(ch1x1=128, ch3x3=192, ch5x5=96, reduce=64)
    result = models.inception_comparison(input_shape, **ch)
    naive, bottle = result["naive"], result["bottleneck"]
    with_proj = models.inception_comparison(input_shape, pool_proj=64, **ch)["bottleneck"]

    ctx.print(f"input {'x'.join(map(str, input_shape))}; 1x1: {ch['ch1x1']}, 3x3: {ch['ch3x3']}, "
              f"5x5: {ch['ch5x5']} filters; bottleneck: 64-channel 1x1 reductions before the 3x3 "
              f"and 5x5\n")
    header = f"{'module':<30} {'params':>11} {'MACs':>15} {'output':>10}"
    ctx.print(header)
    ctx.print("-" * len(header))
    rows = [("naive", naive), ("with 1x1 bottlenecks", bottle),
            ("bottlenecks + pool proj (64)", with_proj)]
    for label, r in rows:
        ctx.print(f"{label:<30} {r['params']:>11,} {r['macs']:>15,} {'x'.join(map(str, r['output_shape'])):>10}")
    params_ratio = naive["params"] / bottle["params"]
    macs_ratio = naive["macs"] / bottle["macs"]
    ctx.print(f"\nnaive / bottleneck: {params_ratio:.2f}x the parameters, {macs_ratio:.2f}x the MACs, "
              f"for the same {'x'.join(map(str, naive['output_shape']))} output.")
    ctx.print("(with a 1x1 projection after the pool branch, as in GoogLeNet, the output depth also "
              f"drops to {with_proj['output_shape'][0]} channels)")

    timing = None
    if not ctx.quick:  # measured forward time of the two modules on a small batch
        batch = 4
        naive_m = models.Inception(256, 128, None, 192, None, 96, None, naive=True)
        bottle_m = models.Inception(256, 128, 64, 192, 64, 96, 0)
        timing = {"batch": batch, "device": ctx.device,
                  "naive_seconds": _forward_seconds(naive_m, input_shape, batch, ctx.device),
                  "bottleneck_seconds": _forward_seconds(bottle_m, input_shape, batch, ctx.device)}
        ctx.print(f"forward time, batch {batch} on {ctx.device}: naive {timing['naive_seconds']:.3f} s, "
                  f"bottleneck {timing['bottleneck_seconds']:.3f} s "
                  f"({timing['naive_seconds'] / timing['bottleneck_seconds']:.1f}x)")

    _plot(ctx, naive, bottle)
    return {"input_shape": list(input_shape), "channels": ch, "naive": naive, "bottleneck": bottle,
            "bottleneck_with_pool_proj": with_proj, "params_ratio": params_ratio,
            "macs_ratio": macs_ratio, "timing": timing}


def _plot(ctx, naive, bottle):
    fig = figure(7, 3.5)
    if fig is None:
        return
    axes = fig.subplots(1, 2)
    labels = ["naive", "bottleneck"]
    axes[0].bar(labels, [naive["params"] / 1e3, bottle["params"] / 1e3], color=["C1", "C0"])
    axes[0].set_title("parameters (thousands)")
    axes[1].bar(labels, [naive["macs"] / 1e6, bottle["macs"] / 1e6], color=["C1", "C0"])
    axes[1].set_title("MACs per image (millions)")
    for ax in axes:
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Inception module on 28x28x256: the same 672-channel output")
    ctx.save_figure(fig, "inception.png")
