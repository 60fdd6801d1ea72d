"""``export``: a traced minicnn model as an ONNX graph, checked by ``onnx.checker`` and written.

Steps:
1. Trace the model twice (``trace.py``): on the given inputs, and on inputs with other values
   and, with ``dynamic_batch``, one more example. The two graphs must run the same functions.
   A dimension that differs between the two traces follows the batch size; a constant that
   differs was computed from the input outside the graph (``detach()``, ``.data``, NumPy), and
   is refused, unless it is a uniform fill the size of the batch (ResNet's zero channels), which
   becomes ``ConstantOfShape`` of the input's batch size.
2. Name every tensor: the inputs and outputs as asked, parameters and buffers by their state-dict
   names (as Netron shows them), the rest after the module that made them.
3. Convert each function with its entry in :data:`minicnn.onnx.ops.CONVERTERS`.
4. Assemble the model (opset ``opset_version``, the lowest IR version that carries it, which
   onnxruntime reads), run ``onnx.checker.check_model(full_check=True)``, and write it.
"""
import os

import numpy

from .. import __version__, backend
from ..serialization import atomic_write
from .ops import CONVERTERS
from .trace import host_arrays, second_inputs, trace

try:
    import onnx
    from onnx import helper
except ImportError:  # the optional extra: pip install "minicnn[onnx]"
    onnx = None

SUPPORTED_OPSETS = range(17, 22)


class Call:
    """One traced function being converted (see :mod:`minicnn.onnx.ops` for the fields)."""

    def __init__(self, builder, fn, where, inputs, in_shapes, in_batch, output, out_shape, out_batch):
        self.builder, self.fn, self.where = builder, fn, where
        self.inputs, self.in_shapes, self.in_batch = inputs, in_shapes, in_batch
        self.output, self.out_shape, self.out_batch = output, out_shape, out_batch
        self.opset = builder.opset
        self.dtype = builder.dtypes[output]

    def emit(self, op_type, inputs, out=None, **attributes):
        """Add a node; it produces ``out`` (default: the call's output). Returns that name."""
        out = out or self.output
        name = self.builder.unique(f"{self.where[0] or 'model'}/{op_type}")
        self.builder.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attributes))
        return out

    def temp(self):
        return self.builder.unique(f"{self.output}.part")

    def const(self, array):
        return self.builder.constant(numpy.asarray(array), f"{self.output}.const")

    def buffer(self, array):
        """A buffer (batch norm's running statistics), by its state-dict name, in the input's dtype."""
        name = self.builder.buffer_names.get(id(array), f"{self.output}.const")
        host = numpy.asarray(backend.to_numpy(array)).astype(self.dtype)
        return self.builder.constant(host, name)

    def onnx_dtype(self, dtype):
        return helper.np_dtype_to_tensor_dtype(numpy.dtype(dtype))

    def unsupported(self, what):
        module, cls = self.where
        place = f"module '{module}' ({cls})" if module else f"the model's own forward ({cls})"
        return ValueError(f"minicnn.onnx.export: cannot export {what}; {type(self.fn).__name__} "
                          f"called in {place}")


class Builder:
    """The growing graph: nodes, initializers (constants and weights) and the names taken."""

    def __init__(self, opset, buffer_names):
        self.opset, self.buffer_names = opset, buffer_names
        self.nodes, self.initializers, self.taken, self.dtypes = [], [], set(), {}

    def unique(self, hint):
        name, k = hint, 0
        while name in self.taken:
            k += 1
            name = f"{hint}.{k}"
        self.taken.add(name)
        return name

    def constant(self, array, hint):
        name = self.unique(hint)
        self.initializers.append(onnx.numpy_helper.from_array(numpy.ascontiguousarray(array), name))
        return name


def _converter(fn):
    """The converter of ``fn``'s class, or of the reference class a fast path in minicnn/fast subclasses."""
    for cls in type(fn).__mro__:
        if cls in CONVERTERS:
            return CONVERTERS[cls]
        if not cls.__module__.startswith("minicnn.fast"):
            return None
    return None


def _pairs(first, second):
    """``id(tensor of the first trace) -> its twin in the second``, the traces checked to match."""
    kinds = [type(f).__name__ for f in first.functions], [type(f).__name__ for f in second.functions]
    if kinds[0] != kinds[1]:
        at = next((i for i, (a, b) in enumerate(zip(*kinds)) if a != b), min(map(len, kinds)))
        raise ValueError(f"minicnn.onnx.export: the model ran different operations on other input "
                         f"values or another batch size (from operation {at}: "
                         f"{kinds[0][at:at + 1]} vs {kinds[1][at:at + 1]}); a trace cannot "
                         f"export control flow that depends on the data")
    twin = {id(a): b for a, b in zip(first.inputs + first.outputs, second.inputs + second.outputs)}
    for f1, f2 in zip(first.functions, second.functions):
        twin.update((id(a), b) for a, b in zip(f1.inputs, f2.inputs) if a is not None)
    return twin


def _batch_dims(t, twin):
    """The dimensions of ``t`` whose size differs between the two traces (follow the batch)."""
    return [d for d, (a, b) in enumerate(zip(t.shape, twin[id(t)].shape)) if a != b]


class _Exporter:
    """Steps 2 and 3 of the module docstring, for one pair of traces."""

    def __init__(self, model, first, second, opset):
        self.first, self.twin = first, _pairs(first, second)
        self.g = Builder(opset, {id(b): n for n, b in model.named_buffers()})
        self.params = {id(p): n for n, p in model.named_parameters()}
        self.names = {}
        self.batch = None  # the name of the graph's batch size, a 1-element int64 tensor

    def name_leaf(self, t, fn):
        """A leaf tensor feeding ``fn``: a weight (by its name), a constant, or a uniform fill the
        size of the batch (``ConstantOfShape``)."""
        host = numpy.asarray(backend.to_numpy(t.data))
        if id(t) in self.params:
            return self.g.constant(host, self.params[id(t)])
        other = numpy.asarray(backend.to_numpy(self.twin[id(t)].data))
        where = self.first.label(fn)
        if host.shape == other.shape:
            if not numpy.array_equal(host, other, equal_nan=host.dtype.kind == "f"):
                raise ValueError(f"minicnn.onnx.export: an input of {type(fn).__name__} in module "
                                 f"{where} was computed from the model's input outside the graph "
                                 f"(detach(), .data or NumPy), so it cannot be exported")
            return self.g.constant(host, f"{self.first.labels.get(id(fn), ('model',))[0] or 'model'}.const")
        follow = _batch_dims(t, self.twin)
        size = self.first.inputs[0].shape[0]
        if any(host.shape[d] != size for d in follow) or host.size == 0 or \
                not (host == host.flat[0]).all() or not (other == host.flat[0]).all():
            raise ValueError(f"minicnn.onnx.export: a constant of shape {host.shape} made in module "
                             f"{where} follows the batch size but is not one value repeated; "
                             f"export with dynamic_batch=False")
        pieces = [self.batch_size() if d in follow else self.g.constant(numpy.array([n]), "shape")
                  for d, n in enumerate(host.shape)]
        shape = self.g.unique("fill.shape")
        self.g.nodes.append(helper.make_node("Concat", pieces, [shape], axis=0, name=shape))
        name = self.g.unique("fill")
        value = onnx.numpy_helper.from_array(host.reshape(-1)[:1])
        self.g.nodes.append(helper.make_node("ConstantOfShape", [shape], [name], value=value, name=name))
        return name

    def batch_size(self):
        if self.batch is None:
            self.batch = self.g.unique("batch_size")
            self.g.nodes.append(helper.make_node("Shape", [self.names[id(self.first.inputs[0])]],
                                                 [self.batch], start=0, end=1, name=self.batch))
        return self.batch

    def name_of(self, t, fn):
        if id(t) not in self.names:
            self.names[id(t)] = self.name_leaf(t, fn)
        return self.names[id(t)]

    def convert(self, fn):
        converter = _converter(fn)
        where = self.first.labels.get(id(fn), ("", "?"))
        outputs = [ref() for ref in fn.outputs]
        if converter is None or len(outputs) != 1 or outputs[0] is None:
            place = self.first.label(fn)
            raise ValueError(f"minicnn.onnx.export: no ONNX mapping for {type(fn).__name__} (called "
                             f"in module {place}); see minicnn/onnx/ops.py for the ops exported")
        out = outputs[0]
        inputs = [None if t is None else self.name_of(t, fn) for t in fn.inputs]
        if id(out) not in self.names:
            self.names[id(out)] = self.g.unique(f"{where[0] or 'model'}/{type(fn).__name__}")
        self.g.dtypes[self.names[id(out)]] = out.dtype
        call = Call(self.g, fn, where, inputs, [None if t is None else t.shape for t in fn.inputs],
                    [None if t is None else _batch_dims(t, self.twin) for t in fn.inputs],
                    self.names[id(out)], out.shape, _batch_dims(out, self.twin))
        converter(call)


def _value_info(name, t, follow, batch):
    """A graph input's or output's type: the dimensions that follow the batch size are symbolic,
    ``batch`` where they are the batch size itself."""
    dims = [("batch" if n == batch else None) if d in follow else n for d, n in enumerate(t.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), dims)


def _names(given, count, default, what):
    if given is None:
        return [default] if count == 1 else [f"{default}{i}" for i in range(count)]
    given = list(given)
    if len(given) != count or len(set(given)) != count:
        raise ValueError(f"minicnn.onnx.export: {what} {given} must be {count} distinct names, one "
                         f"per model {what.split('_')[0]}")
    return given


def export(model, args, f, input_names=None, output_names=None, dynamic_batch=True, opset_version=17):
    """Export ``model`` as ONNX to ``f`` (a path or a binary file), as ``torch.onnx.export``.

    ``args``: an example input batch (a Tensor or array, or a tuple of them), run through the
    model in eval mode to trace it. ``dynamic_batch``: the first dimension of every input and
    output is the symbolic ``batch``, so any batch size runs. Returns the ``onnx.ModelProto``.
    Raises ``ValueError`` naming the op and module of anything it cannot export.
    """
    if onnx is None:
        raise RuntimeError('minicnn.onnx.export needs the onnx package: pip install "minicnn[onnx]"')
    if opset_version not in SUPPORTED_OPSETS:
        raise ValueError(f"minicnn.onnx.export: opset_version {opset_version} is not supported; "
                         f"use {SUPPORTED_OPSETS[0]} to {SUPPORTED_OPSETS[-1]}")
    arrays = host_arrays(args)
    first = trace(model, arrays)
    second = trace(model, second_inputs(arrays, dynamic_batch))
    ex = _Exporter(model, first, second, opset_version)
    inputs = _names(input_names, len(first.inputs), "input", "input_names")
    outputs = _names(output_names, len(first.outputs), "output", "output_names")
    ex.names.update((id(t), n) for t, n in zip(first.inputs, inputs))
    for t, n in zip(first.outputs, outputs):
        if t._creator is not None:
            ex.names.setdefault(id(t), n)
    for fn in first.functions:
        ex.convert(fn)
    for t, n in zip(first.outputs, outputs):   # an output that is an input, or listed twice
        if ex.names.get(id(t)) != n:
            ex.g.nodes.append(helper.make_node("Identity", [ex.name_of(t, None)], [n], name=n))
    graph = helper.make_graph(
        ex.g.nodes, type(model).__name__,
        [_value_info(n, t, _batch_dims(t, ex.twin), len(arrays[0])) for t, n in zip(first.inputs, inputs)],
        [_value_info(n, t, _batch_dims(t, ex.twin), len(arrays[0])) for t, n in zip(first.outputs, outputs)],
        initializer=ex.g.initializers)
    opset = [helper.make_opsetid("", opset_version)]
    proto = helper.make_model(graph, opset_imports=opset, producer_name="minicnn",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opset))
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f) as out:
            out.write(data)
    else:
        f.write(data)
    return proto
