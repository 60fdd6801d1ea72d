"""``convert_torch``: a PyTorch/torchvision ``.pth`` state dict -> a minicnn ``.npz`` checkpoint.

torchvision's VGG, ResNet and DenseNet share minicnn's module layout, so their weights need no
renaming: every tensor becomes a NumPy array under the same dotted key, saved with ``minicnn.save``
(plain arrays, no pickle). Then::

    model = models.resnet18()
    model.load_state_dict(mc.load("resnet18.npz"))

Needs PyTorch (only to read the pickle-based ``.pth`` format); it is imported when called, never
when minicnn is imported. The file is read with ``torch.load(..., weights_only=True)``, which refuses
arbitrary pickled objects.
"""
import os

import numpy

__all__ = ["convert_torch", "torch_state_to_numpy"]


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise RuntimeError("convert-torch needs PyTorch: pip install torch") from e
    return torch


def torch_state_to_numpy(state):
    """A torch state dict (or a checkpoint dict holding one under "state_dict"/"model") -> a dict of
    NumPy arrays with the same keys. A DataParallel ``module.`` prefix is removed."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"convert-torch: expected a state dict (name -> tensor), got {type(state).__name__}")
    out = {}
    for name, value in state.items():
        if hasattr(value, "detach"):
            try:
                value = value.detach().cpu().numpy()
            except TypeError as err:  # bfloat16 and other types NumPy has not
                raise ValueError(f"convert-torch: tensor {name!r} is {value.dtype}, which NumPy "
                                 f"cannot hold ({err}); convert the model first, e.g. "
                                 f"model.float(), and save its state_dict again") from None
        elif not isinstance(value, numpy.ndarray):
            continue  # metadata such as "_metadata" or an epoch counter
        if name.startswith("module."):
            name = name[len("module."):]
        out[name] = numpy.array(value)
    if not out:
        raise ValueError("convert-torch: the file holds no tensors")
    return out


def convert_torch(in_path, out_path, model=None):
    """Read a torch ``.pth`` state dict from ``in_path``, write a minicnn ``.npz`` to ``out_path``.

    ``model`` (optional): a minicnn model name (or Module); the weights are then loaded into it with
    ``strict=True`` first, so a layout mismatch is reported before anything is written.
    Returns the converted dict (name -> NumPy array).
    """
    from .. import save
    if not os.path.exists(in_path):
        raise FileNotFoundError(f"convert-torch: no such file {in_path!r}")
    if os.path.isdir(out_path):
        raise ValueError(f"convert-torch: the output {out_path} is a folder; give the .npz file "
                         f"to write, e.g. {os.path.join(out_path, 'weights.npz')}")
    torch = _import_torch()
    try:
        state = torch.load(in_path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or refused pickle can fail in many ways
        raise ValueError(f"convert-torch: cannot read {in_path} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    arrays = torch_state_to_numpy(state)
    if model is not None:
        if isinstance(model, str):
            from . import get
            model = get(model, num_classes=_classes_of(arrays, model))
        model.load_state_dict(arrays, strict=True)
    save(arrays, out_path)
    return arrays


def _classes_of(arrays, name):
    """The class count of the last layer in a torchvision state dict (fc / classifier)."""
    for key in ("fc.weight", "classifier.weight", "classifier.6.weight"):
        if key in arrays:
            return int(arrays[key].shape[0])
    return 1000
