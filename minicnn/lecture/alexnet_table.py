"""AlexNet's layer table: where the parameters are, and where the compute is.

The summary of ``models.alexnet()`` on a 227x227x3 input, one row per layer, with each layer's
share of the parameters and of the multiply-accumulates (MACs). The lecture's point:

* the three fully connected layers hold ~94% of the 62,378,344 parameters (fc6 alone, 9216 x 4096,
  holds 60%): that is where the memory goes and where the network overfits (hence dropout);
* the five conv layers hold ~6% of the parameters but do ~95% of the 1.1 G MACs per image: every
  filter is applied at every position, a fully connected weight is used once per image.
"""
from .. import models
from ..summary import summary
from .common import figure

WEIGHT_LAYERS = ("Conv2d", "Linear")


def run(ctx):
    input_shape = (3, 227, 227)
    model = models.alexnet()
    rows = summary(model, input_shape, print_fn=None)
    total_params = sum(p.numel() for p in model.parameters())
    total_macs = sum(r["macs"] for r in rows)

    layers, conv_i, fc_i = [], 0, 5
    for r in rows:
        if r["type"] == "Conv2d":
            conv_i += 1
            label = f"conv{conv_i}"
        elif r["type"] == "Linear":
            fc_i += 1
            label = f"fc{fc_i}"
        else:
            label = ""
        layers.append({"layer": label, "name": r["name"], "type": r["type"],
                       "output_shape": list(r["output_shape"]), "params": r["params"], "macs": r["macs"],
                       "params_pct": 100.0 * r["params"] / total_params,
                       "macs_pct": 100.0 * r["macs"] / total_macs})

    def share(kind):
        params = sum(row["params"] for row in layers if row["type"] == kind)
        macs = sum(row["macs"] for row in layers if row["type"] == kind)
        return {"params": params, "macs": macs, "params_pct": 100.0 * params / total_params,
                "macs_pct": 100.0 * macs / total_macs}

    conv, fc = share("Conv2d"), share("Linear")

    ctx.print(f"AlexNet on a {'x'.join(map(str, input_shape))} input (models.alexnet(), groups=1)\n")
    header = (f"{'':<6} {'module':<13} {'type':<18} {'output':>10} {'params':>12} {'% params':>9} "
              f"{'MACs':>15} {'% MACs':>7}")
    ctx.print(header)
    ctx.print("-" * len(header))
    for row in layers:
        shape = "x".join(map(str, row["output_shape"]))
        pct_p = f"{row['params_pct']:8.1f}%" if row["params"] else ""
        pct_m = f"{row['macs_pct']:6.1f}%" if row["macs"] else ""
        ctx.print(f"{row['layer']:<6} {row['name']:<13} {row['type']:<18} {shape:>10} "
                  f"{row['params']:>12,} {pct_p:>9} {row['macs']:>15,} {pct_m:>7}")
    ctx.print("-" * len(header))
    ctx.print(f"{'total':<6} {'':<13} {'':<18} {'':>10} {total_params:>12,} {'':>9} {total_macs:>15,}")
    ctx.print("")
    ctx.print(f"conv layers (5): {conv['params']:>12,} params = {conv['params_pct']:5.1f}%   "
              f"{conv['macs']:>15,} MACs = {conv['macs_pct']:5.1f}%")
    ctx.print(f"FC layers   (3): {fc['params']:>12,} params = {fc['params_pct']:5.1f}%   "
              f"{fc['macs']:>15,} MACs = {fc['macs_pct']:5.1f}%")
    ctx.print(f"-> the FC layers hold {fc['params_pct']:.0f}% of the parameters; the conv layers do "
              f"{conv['macs_pct']:.0f}% of the compute.")

    _plot(ctx, [row for row in layers if row["type"] in WEIGHT_LAYERS])
    return {"input_shape": list(input_shape), "total_params": total_params, "total_macs": total_macs,
            "conv": conv, "fc": fc, "layers": layers}


def _plot(ctx, weight_layers):
    fig = figure(8, 4)
    if fig is None:
        return
    ax = fig.subplots()
    labels = [row["layer"] for row in weight_layers]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [row["params_pct"] for row in weight_layers], width=0.4, label="% of parameters")
    ax.bar([i + 0.2 for i in x], [row["macs_pct"] for row in weight_layers], width=0.4, label="% of MACs")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("share of the whole network (%)")
    ax.set_title("AlexNet: FC layers hold the parameters, conv layers do the compute")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    ctx.save_figure(fig, "alexnet_table.png")
