"""``summary(model, input_shape)``: the lecture's layer table (output shape, parameters, MACs).

It runs one forward pass on a random input (eval mode, no graph) and records the output of every
*leaf* module -- a module without children: Conv2d, ReLU, MaxPool2d, Linear ... -- in the order the
leaves run. Nothing in the model is changed: each leaf's ``forward`` is wrapped for the duration of
the pass (an instance attribute shadowing the class method) and unwrapped afterwards, and every
module's train/eval flag is restored.

What is counted
---------------
``params``  the elements of the leaf's own parameters (weight + bias). The *total* is counted over
            ``model.parameters()``, so it also includes modules that did not run (GoogLeNet's
            auxiliary heads in eval mode) and counts a shared parameter once.
``macs``    multiply-accumulates of the forward pass for ONE example, the convention of the papers'
            "FLOPs" columns (ResNet's "3.6 x 10^9 FLOPs" for ResNet-34 are MACs):

                Conv2d  C_out * H_out * W_out * (C_in / groups) * kH * kW
                Linear  in_features * out_features   (times any extra leading dims)

            Bias additions are not counted, and neither are the per-element layers (ReLU, pooling,
            batch norm, LRN, dropout, flatten: 0 MACs). They are cheap (a few operations per output
            element) next to the convolutions, and counting them is where published numbers disagree.
            Functional ops called inside a block's ``forward`` (``F.relu``, the residual ``+``,
            DenseNet's concatenation) are not modules, so they are not rows either.

Memory: *parameter memory* is the bytes of all parameters (and buffers) in MB (2^20 bytes);
*activation memory* is the bytes of every leaf's output for ``batch_size`` examples, i.e. what a
forward pass has to keep for backward, roughly (the input is added; in-block functional results are
not). For the per-block view (a ResNet's ``layer1`` or a ``Bottleneck``), see :func:`module_params`.
"""
import numpy

from . import backend

__all__ = ["summary", "module_params", "count_macs"]


def count_macs(module, inputs, output):
    """The multiply-accumulates of one call of a leaf ``module`` for one example (see module doc)."""
    kind = type(module).__name__
    out_shape = _shape_of(output)
    if not isinstance(out_shape, tuple):
        return 0
    if kind == "Conv2d":
        weight = module.weight
        c_out, c_in_per_group, kh, kw = weight.shape
        n_out_positions = int(numpy.prod(out_shape[2:])) if len(out_shape) > 2 else 1
        return int(c_out * n_out_positions * c_in_per_group * kh * kw)
    if kind == "Linear":
        out_features, in_features = module.weight.shape
        lead = int(numpy.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
        return int(in_features * out_features * lead)
    return 0


def _shape_of(output):
    """The full shape (with batch) of a tensor output; a list of shapes for tuple outputs."""
    if isinstance(output, (tuple, list)):
        return [_shape_of(o) for o in output]
    shape = getattr(output, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def _drop_batch(shape):
    if isinstance(shape, list):
        return [_drop_batch(s) for s in shape]
    return None if shape is None else tuple(shape[1:])


def _nbytes(output):
    if isinstance(output, (tuple, list)):
        return sum(_nbytes(o) for o in output)
    data = getattr(output, "data", None)
    return int(data.size) * data.dtype.itemsize if data is not None and hasattr(data, "dtype") else 0


def _own_params(module):
    return sum(p.numel() for p in module._parameters.values() if p is not None)


def _format_shape(shape):
    """(96, 55, 55) -> '96x55x55' (channels first, as NCHW); lists of shapes joined with ', '."""
    if isinstance(shape, list):
        return ", ".join(_format_shape(s) for s in shape)
    if shape is None:
        return "-"
    return "x".join(str(s) for s in shape) if shape else "scalar"


def _first_array(model):
    for p in model.parameters():
        return p.data
    for b in model.buffers():
        return b
    return None


def summary(model, input_shape, device="cpu", print_fn=print, batch_size=1):
    """Print the layer table of ``model`` for one input of ``input_shape`` (without the batch axis).

    Returns one dict per leaf-module call, in the order they ran, with the keys ``name`` (dotted
    module path), ``type`` (class name), ``output_shape`` (without batch), ``params``, ``macs``
    (per example), ``trainable`` (trainable parameter elements) and ``activation_bytes`` (the
    output's bytes at ``batch_size``). ``print_fn=None`` prints nothing.

    The input is a standard-normal array in the dtype of the model's parameters, made on ``device``
    (the model must already be there). MACs are per example; memory figures use ``batch_size``.
    """
    from .function import no_grad
    from .tensor import Tensor

    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(int(s) for s in input_shape)
    first = _first_array(model)
    dtype = first.dtype if first is not None and first.dtype.kind == "f" else numpy.float32
    host = numpy.random.default_rng(0).standard_normal((batch_size,) + input_shape).astype(dtype)
    x = Tensor(backend.to_device(host, device))

    named = list(model.named_modules())
    leaves = [(name or type(model).__name__, m) for name, m in named if not any(True for _ in m.children())]
    rows = []

    def wrap(name, module):
        original = module.forward

        def forward(*args, **kwargs):
            out = original(*args, **kwargs)
            shape = _shape_of(out)
            own = _own_params(module)
            rows.append({
                "name": name,
                "type": type(module).__name__,
                "output_shape": _drop_batch(shape),
                "params": own,
                "trainable": sum(p.numel() for p in module._parameters.values()
                                 if p is not None and p.requires_grad),
                "macs": count_macs(module, args, out),
                "activation_bytes": _nbytes(out),
            })
            return out
        return forward

    modes = [(m, m.training) for _, m in named]
    wrapped = []
    try:
        for name, m in leaves:
            object.__setattr__(m, "forward", wrap(name, m))
            wrapped.append(m)
        model.eval()
        with no_grad():
            model(x)
    finally:
        for m in wrapped:
            m.__dict__.pop("forward", None)
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    if print_fn is not None:
        _print_table(model, rows, input_shape, x, batch_size, print_fn)
    return rows


def totals(model, rows, batch_size=1, input_tensor=None):
    """The table's totals as a dict: params, trainable, macs, param_mb, activation_mb."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    param_bytes = sum(int(p.data.size) * p.data.dtype.itemsize for p in model.parameters())
    buffer_bytes = sum(int(b.size) * b.dtype.itemsize for b in model.buffers())
    act = sum(r["activation_bytes"] for r in rows)
    if input_tensor is not None:
        act += _nbytes(input_tensor)
    return {"params": params, "trainable": trainable, "macs": sum(r["macs"] for r in rows),
            "param_mb": (param_bytes + buffer_bytes) / 2 ** 20, "activation_mb": act / 2 ** 20}


def _print_table(model, rows, input_shape, x, batch_size, print_fn):
    name_w = max([len("layer")] + [len(r["name"]) for r in rows])
    type_w = max([len("type")] + [len(r["type"]) for r in rows])
    shape_w = max([len("output shape")] + [len(_format_shape(r["output_shape"])) for r in rows])
    header = (f"{'layer':<{name_w}}  {'type':<{type_w}}  {'output shape':>{shape_w}}  "
              f"{'params':>13}  {'MACs':>15}")
    rule = "-" * len(header)
    print_fn(f"{type(model).__name__} on input {_format_shape(input_shape)}")
    print_fn(rule)
    print_fn(header)
    print_fn(rule)
    for r in rows:
        print_fn(f"{r['name']:<{name_w}}  {r['type']:<{type_w}}  "
                 f"{_format_shape(r['output_shape']):>{shape_w}}  {r['params']:>13,}  {r['macs']:>15,}")
    print_fn(rule)
    t = totals(model, rows, batch_size, x)
    listed = sum(r["params"] for r in rows)
    print_fn(f"Total params:      {t['params']:,}")
    if t["trainable"] != t["params"]:
        print_fn(f"Trainable params:  {t['trainable']:,}")
    if listed != t["params"]:
        print_fn(f"  (rows list {listed:,}: modules that did not run or ran twice, e.g. auxiliary heads in eval mode)")
    scaled = f"{t['macs'] / 1e9:.2f} G" if t["macs"] >= 1e9 else f"{t['macs'] / 1e6:.2f} M"
    print_fn(f"Total MACs:        {t['macs']:,} per example ({scaled})")
    print_fn(f"Parameter memory:  {t['param_mb']:.2f} MB")
    print_fn(f"Activation memory: {t['activation_mb']:.2f} MB (forward, batch {batch_size})")


def module_params(model, max_depth=1):
    """Parameter counts of every module down to ``max_depth`` levels below ``model`` (blocks included).

    Returns ``[(dotted name, class name, params), ...]`` in definition order; depth 1 is the direct
    children (a ResNet's ``conv1``, ``layer1`` ...), depth 2 their children (``layer1.0`` ...).
    """
    out = []
    for name, m in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if 1 <= depth <= max_depth:
            out.append((name, type(m).__name__, sum(p.numel() for p in m.parameters())))
    return out
