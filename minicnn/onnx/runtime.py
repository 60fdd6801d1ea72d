"""Run an exported model with onnxruntime, and measure how far it is from minicnn's own outputs."""
import numpy

from .. import backend
from ..function import no_grad
from ..tensor import Tensor

try:
    import onnxruntime
except ImportError:  # the optional extra: pip install "minicnn[onnx]"
    onnxruntime = None


def run(path, *arrays):
    """The outputs (host arrays) of the ONNX model at ``path`` on ``arrays``, by onnxruntime's CPU
    provider; the arrays are given to the model's inputs in order."""
    if onnxruntime is None:
        raise RuntimeError('running an ONNX model needs onnxruntime: pip install "minicnn[onnx]"')
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def compare(model, path, *arrays):
    """``(largest absolute difference, largest relative difference)`` between onnxruntime's
    outputs of ``path`` and ``model``'s own in eval mode, over all outputs. The relative difference
    is the absolute one divided by the largest magnitude of minicnn's output."""
    device = next((p.device for p in model.parameters()), "cpu")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            ours = model(*[Tensor(backend.to_device(a, device)) for a in arrays])
    finally:
        model.train(was_training)
    ours = ours if isinstance(ours, (tuple, list)) else (ours,)
    worst_abs = worst_rel = 0.0
    for mine, theirs in zip(ours, run(path, *arrays)):
        mine = numpy.asarray(backend.to_numpy(mine.data), dtype=numpy.float64)
        diff = float(numpy.abs(mine - theirs).max()) if mine.size else 0.0
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(float(numpy.abs(mine).max()) if mine.size else 0.0, 1e-30))
    return worst_abs, worst_rel
