"""Fine-tuning: start from trained weights, give the network a new head, freeze what to keep.

The usual recipe (transfer learning, as in the lecture):

>>> model = models.get("resnet18", num_classes=1000)
>>> load_pretrained(model, "resnet18-imagenet.npz", num_classes=10)   # new 10-class head
>>> train_only_head(model)            # or freeze(model, upto="layer3"): train layer4 + fc
>>> opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)

A frozen parameter has ``requires_grad=False``: autograd computes no gradient for it (and builds
no graph through a frozen prefix of the network at all), and optimizers skip it.

The *head* is the last ``Linear`` layer in the model's module order: ``fc`` of the ResNets and
GoogLeNet, ``classifier[-1]`` (``classifier.6``) of AlexNet/VGG, ``classifier`` of DenseNet.
"""
import os

import numpy

from .. import backend
from ..nn import Linear
from ..serialization import load, subdict
from ..tensor import Tensor
from .checkpoint import METADATA, METADATA_BYTES, is_checkpoint, max_weights_bytes


def find_head(model):
    """``(dotted name, module)`` of the model's last ``Linear`` layer."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, Linear):
            found = (name, module)
    if found is None:
        raise ValueError(f"{type(model).__name__} has no Linear layer to use as the classifier head")
    return found


def _parent(model, dotted):
    parent = model
    *path, last = dotted.split(".")
    for part in path:
        parent = getattr(parent, part)
    return parent, last


def replace_head(model, num_classes):
    """Replace the last ``Linear`` layer with a freshly initialised one of ``num_classes``
    outputs (same input size, bias, device and dtype). Returns the new layer.

    The model's ``num_classes`` attribute, if it has one, is updated too.
    """
    name, old = find_head(model)
    weight = old.weight
    has_bias = getattr(old, "bias", None) is not None
    new = Linear(int(weight.shape[1]), int(num_classes), bias=has_bias)
    new.to(device=weight.device, dtype=weight.dtype)
    new.train(old.training)
    parent, attr = _parent(model, name)
    if attr in parent._modules:
        parent._modules[attr] = new  # in place: keeps the children's order (Sequential)
    else:
        setattr(parent, attr, new)
    if "num_classes" in model.__dict__:
        model.num_classes = int(num_classes)
    return new


def _named_param_prefixes(model):
    names = [n for n, _ in model.named_modules() if n]
    return names


def freeze(model, upto=None):
    """Freeze parameters (``requires_grad=False``, gradient cleared).

    ``upto=None`` freezes the whole model. ``upto="layer3"`` (a module or parameter name, as in
    ``named_modules()``/``named_parameters()``) freezes every parameter that comes before it in
    the model's parameter order *and* those of ``upto`` itself; later ones are left as they were.
    Returns the names of the parameters frozen.
    """
    params = list(model.named_parameters())
    if upto is None:
        last = len(params) - 1
    else:
        upto = str(upto).strip(".")
        hits = [i for i, (n, _) in enumerate(params) if n == upto or n.startswith(upto + ".")]
        if not hits:
            modules = _named_param_prefixes(model)
            known = [m for m in modules if "." not in m] or modules
            if upto in modules:
                raise ValueError(f"freeze: module {upto!r} of {type(model).__name__} has no "
                                 f"parameters to freeze up to")
            raise ValueError(f"freeze: {type(model).__name__} has no layer {upto!r}; its top-level "
                             f"layers are {known}")
        last = hits[-1]
    frozen = []
    for name, p in params[:last + 1]:
        p.requires_grad = False
        p.grad = None
        frozen.append(name)
    return frozen


def unfreeze(model):
    """Make every parameter trainable again."""
    for p in model.parameters():
        p.requires_grad = True
    return model


def train_only_head(model):
    """Freeze everything except the last ``Linear`` layer (the head). Returns the head's name."""
    name, head = find_head(model)
    freeze(model)
    for p in head.parameters():
        p.requires_grad = True
    return name


def trainable_parameters(model):
    """The parameters an optimizer should get: those with ``requires_grad``."""
    return [p for p in model.parameters() if p.requires_grad]


def read_state_dict(source, model=None):
    """Model weights from ``source``: a dict, a ``mc.save``d ``state_dict`` file (for example one
    converted from torchvision), or a training checkpoint (its ``model.*`` part, the only part
    read). Given the ``model`` they are for, a file declaring more than weights for it can hold
    (:func:`~minicnn.train.checkpoint.max_weights_bytes`) is refused before it is allocated."""
    if isinstance(source, dict):
        flat = dict(source)
    else:
        path = os.fspath(source)
        if os.path.isdir(path):
            path = os.path.join(path, "checkpoint.npz")
        limit = None if model is None else max_weights_bytes(model)
        if is_checkpoint(load(path, keys=METADATA, max_bytes=METADATA_BYTES)):
            return subdict(load(path, keys=("model",), max_bytes=limit), "model")
        flat = load(path, max_bytes=limit)
    if is_checkpoint(flat):
        return subdict(flat, "model")
    for prefix in ("model", "state_dict"):  # {"model": state_dict} saved by hand
        keys = [k for k in flat if isinstance(k, str)]
        if keys and all(k.startswith(prefix + ".") for k in keys):
            return subdict(flat, prefix)
    return {k: v for k, v in flat.items() if not isinstance(v, str)}


def check_weights(model, state, source="the weights"):
    """Refuse values that would load silently wrong into ``model``'s floating-point parameters
    and buffers: complex numbers (the imaginary part would be dropped), integers or booleans
    (a sign of the wrong file or key), NaN/inf, and negative variances (batch norm's
    ``running_var``: normalising by its square root gives NaN). Raises ``ValueError`` naming
    ``source``, the key, and what was expected and found. Keys the model does not have are left
    to ``load_state_dict``."""
    expected = {}
    for name, value in list(model.named_parameters()) + list(model.named_buffers()):
        if value is not None:
            expected[name] = value.data if isinstance(value, Tensor) else value
    for key, value in state.items():
        if key not in expected or numpy.dtype(expected[key].dtype).kind != "f":
            continue
        value = value.data if isinstance(value, Tensor) else value
        array = numpy.asarray(backend.to_numpy(value) if backend.is_array(value) else value)
        want = numpy.dtype(expected[key].dtype)
        if array.dtype.kind == "c":
            raise ValueError(f"{source}: {key!r} holds complex numbers ({array.dtype}); expected "
                             f"real {want} values")
        if array.dtype.kind != "f":
            raise ValueError(f"{source}: {key!r} holds {array.dtype} values; expected {want} "
                             f"(floating point) for this parameter")
        if not numpy.isfinite(array).all():
            bad = int(array.size - numpy.isfinite(array).sum())
            raise ValueError(f"{source}: {key!r} holds {bad} NaN/inf value(s); expected finite "
                             f"numbers")
        if key.rpartition(".")[2] == "running_var" and (array < 0).any():
            raise ValueError(f"{source}: {key!r} holds {int((array < 0).sum())} negative "
                             f"value(s) (smallest {array.min():g}); a variance is >= 0")
    return state


def load_pretrained(model, source, num_classes=None, strict=True):
    """Load weights from ``source`` (see :func:`read_state_dict`) into ``model``; then, if
    ``num_classes`` differs from the head's outputs, replace the head (:func:`replace_head`).

    The head in the file may have a different number of classes from the model's: the model's
    head is first resized to match the file, so everything loads strictly, including the old
    head, and is only then replaced. Values are checked first (:func:`check_weights`). If
    anything fails, the model is left exactly as it was (its original head put back) and the
    ``ValueError`` propagates. Returns the model.
    """
    source_name = "weights" if isinstance(source, dict) else os.fspath(source)
    state = read_state_dict(source, model)
    name, original = find_head(model)
    num_classes_before = model.__dict__.get("num_classes")
    head = original
    saved = state.get(f"{name}.weight")
    try:
        if saved is not None and numpy.ndim(saved) == 2 \
                and numpy.shape(saved)[0] != head.weight.shape[0] \
                and numpy.shape(saved)[1:] == tuple(head.weight.shape[1:]):
            head = replace_head(model, numpy.shape(saved)[0])
        check_weights(model, state, source_name)
        model.load_state_dict(state, strict=strict)
    except BaseException:
        if head is not original:  # put the original head back: the model is unchanged
            parent, attr = _parent(model, name)
            if attr in parent._modules:
                parent._modules[attr] = original
            else:
                setattr(parent, attr, original)
            if num_classes_before is not None:
                model.num_classes = num_classes_before
        raise
    if num_classes is not None and int(num_classes) != head.weight.shape[0]:
        replace_head(model, num_classes)
    return model


def head_classes(model):
    """The number of outputs of the model's head."""
    return int(find_head(model)[1].weight.shape[0])


__all__ = ["find_head", "replace_head", "freeze", "unfreeze", "train_only_head",
           "trainable_parameters", "read_state_dict", "check_weights", "load_pretrained",
           "head_classes"]
