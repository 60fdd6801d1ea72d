"""``minicnn explain``: what a trained network looks at, drawn for a few test images.

    minicnn explain [RUN] [--images N] [--out DIR] [--methods M ...] [--layer NAME] [--device D]

The checkpoint (default ``runs/latest``; a run folder or its ``checkpoint.npz``, or a weights file
with ``--model``) is loaded exactly as ``minicnn evaluate`` loads it, with the same one-line errors.
The first 500 test images are classified; ``--images N`` of them are shown, the same ones every
time: about half misclassified ones (the first of them in test-set order), the rest correctly
classified ones of different classes. Each method writes one PNG into ``<run folder>/explain/``
(or ``--out``), one column per image, explaining the *predicted* class:

    filters.png      the first conv layer's filters                       (ZFNet Fig. 2)
    activations.png  the feature maps of --layer for each image           (LayerActivation)
    occlusion.png    drop of p(predicted class) when a gray patch covers each pixel (Occlusion)
    saliency.png     |d score / d pixel|, the largest over the colour channels (Saliency)
    gradcam.png      Grad-CAM of --layer, resized to the image           (LayerGradCam)

``--layer`` (a module name, e.g. ``features.4``) defaults to the last conv layer whose feature maps
are larger than 1x1; it must be a layer whose output is feature maps ``(N, C, h, w)``. Besides the
PNGs, only ``explain.json`` (the images, classes and probabilities) is written; nothing else in the
folder is touched. The figures need matplotlib (``pip install 'minicnn[plot]'``).
"""
import importlib.util
import os
import sys

import numpy

from . import backend, viz
from . import functional as F
from .data import DatasetNotFoundError
from .function import no_grad
from .interpret import LayerActivation, LayerGradCam, Occlusion, Saliency
from .nn import Conv2d
from .tensor import Tensor
from .train.args import positive_int
from .train.config import UsageError, build_transforms, check_device, check_out_dir
from .train.metrics import write_json
from .train.run import describe_os_error, load_saved_model

METHODS = ("filters", "activations", "occlusion", "saliency", "gradcam")
#: How many test images (the first ones) are classified to choose the examples from.
POOL = 500
MAX_IMAGES = 16


def add_explain_arguments(parser):
    """The options of ``minicnn explain``."""
    parser.add_argument("run", nargs="?", default=None, metavar="RUN",
                        help="a run folder or checkpoint written by 'minicnn train' (default: runs/latest)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="the same as RUN (as in 'minicnn evaluate'); or a weights file with --model")
    parser.add_argument("--model", default=None, metavar="NAME", help="architecture, for a weights file")
    parser.add_argument("--num-classes", type=positive_int, default=None, metavar="K",
                        help="classes of the model, for a weights file without a run config")
    parser.add_argument("--dataset", default=None, help="the test images to use (default: the run's)")
    parser.add_argument("--data-root", metavar="DIR", default=None, help="folder of the data set")
    parser.add_argument("--images", type=positive_int, default=6, metavar="N",
                        help=f"how many test images to explain (default 6, at most {MAX_IMAGES})")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="M",
                        help="which pictures: " + ", ".join(METHODS) + " (default: all)")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="the layer for activations and Grad-CAM (default: the last conv layer)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where the PNGs go (default: the run folder's explain/)")
    parser.add_argument("--device", default=None, choices=backend.device_names(),
                        help="where to run the model (default: cpu)")
    return parser


def explain_main(args, out=print):
    """Run ``minicnn explain``; returns the exit status (0 done, 1 bad input, 130 interrupted)."""
    try:
        return explain(args, out)
    except (UsageError, DatasetNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"error: could not read or write {describe_os_error(err)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 1


def explain(args, out=print):
    """``minicnn explain`` itself; raises :class:`UsageError` on bad input."""
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("minicnn explain draws its pictures with matplotlib, which is not "
                         "installed: pip install 'minicnn[plot]'")
    if not 1 <= args.images <= MAX_IMAGES:
        raise UsageError(f"--images {args.images}: expected 1 to {MAX_IMAGES} images (one column each)")
    if args.run is not None and args.checkpoint is not None and args.run != args.checkpoint:
        raise UsageError(f"RUN {args.run} and --checkpoint {args.checkpoint} name two checkpoints; give one")
    args.checkpoint = args.run if args.run is not None else args.checkpoint
    model, config, path, test_set, classes = load_saved_model(args)
    device = args.device or "cpu"
    check_device(device)
    model.to(device).eval()

    transform = build_transforms(config, train=False)
    pool = numpy.arange(min(POOL, len(test_set)))
    probs = predict(model, test_set, transform, pool, device)
    picks = choose_examples(probs.argmax(axis=1), numpy.asarray(test_set.targets)[pool], args.images)
    raw, labels = test_set.get_batch(pool[picks])
    x = Tensor(backend.to_device(transform(raw), device))
    p = probs[picks]
    preds = p.argmax(axis=1)
    names = list(classes) if classes else [str(k) for k in range(config["num_classes"])]
    layer_name, layer = choose_layer(model, args.layer, config["model"], x[:1])
    out_dir = args.out if args.out is not None else os.path.join(os.path.dirname(path), "explain")
    try:
        check_out_dir(out_dir)
    except UsageError as err:            # its message names --out, which may not have been given
        raise UsageError(str(err) if args.out is not None else str(err).replace("--out ", "", 1)) from None

    out(f"explaining {config['model']} ({path}) on {len(picks)} {config['dataset']} test images; "
        f"layer {layer_name} for activations and Grad-CAM")
    for i, k in enumerate(picks):
        mark = "" if preds[i] == labels[i] else f"  (p(true) {p[i, labels[i]]:.2f})  WRONG"
        out(f"  test image {int(pool[k]):>5}: true {names[labels[i]]:<12} predicted "
            f"{names[preds[i]]:<12} p {p[i, preds[i]]:.2f}{mark}")
    titles = [f"#{int(pool[k])} {names[labels[i]]}\n-> {names[preds[i]]} {p[i, preds[i]]:.0%}"
              for i, k in enumerate(picks)]
    written = []
    for method in METHODS:
        if method in args.methods:
            fig = FIGURES[method](model, layer, layer_name, x, [int(c) for c in preds], titles)
            written.append(os.path.join(out_dir, f"{method}.png"))
            fig.savefig(written[-1], dpi=90)
            out(f"wrote {written[-1]}")
    write_json({"checkpoint": os.path.realpath(path), "dataset": config["dataset"], "layer": layer_name,
                "images": [{"test_index": int(pool[k]), "true": names[labels[i]], "predicted": names[preds[i]],
                            "p_predicted": float(p[i, preds[i]]), "p_true": float(p[i, labels[i]])}
                           for i, k in enumerate(picks)],
                "figures": [os.path.basename(f) for f in written]}, os.path.join(out_dir, "explain.json"))
    return 0


# -- choosing the layer and the images -------------------------------------------------------------------
def conv_layers(model):
    """``[(name, module)]`` of the model's conv layers, in order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Conv2d)]


def conv_output_shapes(model, x):
    """``{name: output shape}`` of each conv layer, from one forward pass of ``x`` (no gradients)."""
    shapes, handles = {}, []

    def recorder(name):
        def record(module, inputs, output):     # returns None: the output is left as it is
            shapes.setdefault(name, output.shape)
        return record

    for name, conv in conv_layers(model):
        handles.append(conv.register_forward_hook(recorder(name)))
    try:
        with no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def choose_layer(model, name, model_name, x):
    """``(name, module)``: the layer called ``name``, or else the last conv layer whose feature
    maps are larger than 1x1 (LeNet-5's last "conv" layer is a fully connected one in disguise).
    ``x`` is one input image, run through the model to check the layer's output."""
    convs = conv_layers(model)
    if not convs:
        raise UsageError(f"{model_name} has no conv layer: nothing for filters, activations or Grad-CAM")
    names = ", ".join(n for n, _ in convs)
    modules = dict(model.named_modules())
    if name is None:
        spatial = [n for n, shape in conv_output_shapes(model, x).items() if shape[2] * shape[3] > 1]
        name = spatial[-1] if spatial else convs[-1][0]
    elif not name or name not in modules:
        raise UsageError(f"--layer {name}: {model_name} has no such layer; its conv layers are {names}")
    shape = LayerActivation(model, modules[name]).attribute(x).shape
    if len(shape) != 4:
        raise UsageError(f"--layer {name}: its output has shape {shape}, not feature maps (N, C, h, w); "
                         f"choose a conv layer: {names}")
    return name, modules[name]


def predict(model, dataset, transform, indices, device, batch_size=250):
    """Softmax probabilities ``(len(indices), classes)`` (NumPy) of the model on those examples."""
    probs = []
    with no_grad():
        for start in range(0, len(indices), batch_size):
            raw, _ = dataset.get_batch(indices[start:start + batch_size])
            logits = model(Tensor(backend.to_device(transform(raw), device)))
            probs.append(backend.to_numpy(F.softmax(logits, axis=1).data))
    return numpy.concatenate(probs).astype(numpy.float64)


def choose_examples(predicted, true, n):
    """Positions of ``n`` examples: up to half of them misclassified (the first ones), the rest
    correctly classified, first one of each class, then the next ones; sorted."""
    wrong = list(numpy.flatnonzero(predicted != true))
    right = list(numpy.flatnonzero(predicted == true))
    picks = wrong[:max(min(len(wrong), n // 2), n - len(right))]   # more if too few are right
    seen = set()
    for k in right:                      # one correctly classified image per class first
        if len(picks) < n and true[k] not in seen:
            picks.append(k)
            seen.add(true[k])
    picks += [k for k in right if k not in picks][:n - len(picks)]
    return numpy.array(sorted(picks)[:n], dtype=numpy.int64)


# -- the pictures ------------------------------------------------------------------------------------------
def _host(t):
    return numpy.asarray(backend.to_numpy(t.data if isinstance(t, Tensor) else t))


def filters(model, layer, layer_name, x, target, titles):
    name, conv = conv_layers(model)[0]
    w = conv.weight
    return viz.filters_figure(w, nrow=8 if w.shape[0] <= 32 else 16,
                              title=f"{name}: {w.shape[0]} filters of {w.shape[2]}x{w.shape[3]}")


def activations(model, layer, layer_name, x, target, titles):
    acts = _host(LayerActivation(model, layer).attribute(x))
    shown = min(16, acts.shape[1])
    grids = [_host(viz.make_grid(Tensor(a[:shown, None]), nrow=4, padding=1, normalize=True,
                                 scale_each=True, pad_value=numpy.nan))[0] for a in acts]
    return viz.examples_figure(x, grids, titles, overlay=False,
                               title=f"{layer_name}: {shown} of its {acts.shape[1]} feature maps "
                                     f"({acts.shape[2]}x{acts.shape[3]})")


def occlusion_window(x):
    """A square patch of about 1/7 of the image side (4 pixels on 28x28), moved by half of it."""
    side = max(2, min(x.shape[2:]) // 7)
    return (x.shape[1], side, side), (x.shape[1], max(1, side // 2), max(1, side // 2))


def occlusion(model, layer, layer_name, x, target, titles):
    window, stride = occlusion_window(x)
    probability = lambda batch: F.softmax(model(batch), axis=1)   # noqa: E731  (drops in probability)
    drop = _host(Occlusion(probability).attribute(x, window, strides=stride, target=target,
                                                  perturbations_per_eval=max(1, 256 // len(x))))
    return viz.examples_figure(x, list(drop[:, 0]), titles,
                               title=f"occlusion: drop of p(predicted class) when a {window[1]}x{window[2]} "
                                     f"patch (the mean pixel) covers each pixel (red: large)")


def saliency(model, layer, layer_name, x, target, titles):
    grad = _host(Saliency(model).attribute(x, target=target))
    return viz.examples_figure(x, list(grad.max(axis=1)), titles,
                               title="saliency: |d score(predicted class) / d pixel|, max over channels")


def gradcam(model, layer, layer_name, x, target, titles):
    cam = _host(LayerGradCam(model, layer).attribute(x, target=target, upsample_to_input=True))
    return viz.examples_figure(x, list(cam[:, 0]), titles,
                               title=f"Grad-CAM of {layer_name} for the predicted class")


FIGURES = {"filters": filters, "activations": activations, "occlusion": occlusion, "saliency": saliency,
           "gradcam": gradcam}
