"""The one way a submission's results come back: frames on a pipe that the grading process reads.

The sandboxed process (:mod:`~minicnn.assignment.child`) writes *frames* to a pipe it inherited;
the grading process (:mod:`~minicnn.assignment.sandbox`) reads them. Nothing comes back through
files, so there is no path in the sandbox that the grading process opens or follows. A frame is::

    kind (1 byte)  length (4 bytes, big-endian)  payload (length bytes)

* kind ``J``: an *event*, a UTF-8 JSON object with an ``"event"`` key (at most
  :data:`MAX_EVENT_BYTES`): ``manifest`` (the questions as data), ``import`` (the handed-in files
  are being imported), ``start`` (a check began), ``result`` (a check ended), ``fatal`` (the
  grader could not even be imported), ``finished``;
* kind ``A``: the raw bytes of one array, in C order. A ``result`` event lists its arrays as
  ``{"name", "dtype", "shape"}``; exactly one ``A`` frame per listed array follows it.

The student's code runs in the writing process, so every frame may be forged. :class:`Reader`
checks each one before it allocates anything: the frame's kind and declared length, the JSON,
every array's name, dtype (plain numbers only: ``b i u f c``), shape, and its size against what is
left of the outputs budget; a byte count that does not match is refused. Anything malformed raises
:class:`ProtocolError`; the grading process then stops that process and fails the check it was on.
"""
import json
import re
import struct

import numpy as np

__all__ = ["Writer", "Reader", "ProtocolError", "MAX_EVENT_BYTES"]

_HEADER = struct.Struct(">cI")
#: Largest event (bytes of JSON); the manifest of a large assignment is a few kilobytes.
MAX_EVENT_BYTES = 1024 ** 2
#: Array dtypes accepted back: byte order, kind (bool, signed, unsigned, float, complex), size.
_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")
_MAX_NAME, _MAX_DIMS = 200, 32


class ProtocolError(ValueError):
    """What came back on the pipe is not what the protocol allows (forged, cut short, too big)."""


class Writer:
    """The sandboxed process's end: ``event(...)`` and ``result(...)`` write whole frames."""

    def __init__(self, handle):
        self._handle = handle

    def _frame(self, kind, payload):
        self._handle.write(_HEADER.pack(kind, len(payload)))
        self._handle.write(payload)

    def event(self, name, **fields):
        self._frame(b"J", json.dumps({"event": name, **fields}).encode("utf-8"))
        self._handle.flush()

    def result(self, check, status, message, arrays=None):
        """A check's outcome and the arrays it returned (``{name: numeric ndarray}`` or None)."""
        arrays = {name: np.asarray(value) for name, value in (arrays or {}).items()}
        listed = [{"name": name, "dtype": value.dtype.str, "shape": list(value.shape)}
                  for name, value in arrays.items()]
        self._frame(b"J", json.dumps({"event": "result", "check": check, "status": status,
                                      "message": message,
                                      "arrays": listed if arrays else None}).encode("utf-8"))
        for value in arrays.values():
            self._frame(b"A", value.tobytes(order="C"))
        self._handle.flush()


def _array_spec(spec, budget):
    """(name, dtype, shape, bytes) of one listed array, checked; raises ProtocolError."""
    if not isinstance(spec, dict):
        raise ProtocolError("an array description is not an object")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not (isinstance(name, str) and 0 < len(name) <= _MAX_NAME):
        raise ProtocolError(f"bad array name {str(name)[:40]!r}")
    if not (isinstance(dtype, str) and _DTYPE.fullmatch(dtype)):
        raise ProtocolError(f"{name}: dtype {str(dtype)[:40]!r} is not a plain numeric type")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ProtocolError(f"{name}: unknown dtype {spec['dtype']!r}") from None
    if not (isinstance(shape, list) and len(shape) <= _MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"{name}: shape {str(shape)[:60]} is not a list of sizes")
    size = dtype.itemsize
    for n in shape:                      # Python integers: no overflow, and stop early
        size *= n
        if size > budget:
            raise ProtocolError(f"{name}: {shape} of {dtype} is more than the {budget} bytes "
                                f"of outputs left")
    return name, dtype, tuple(shape), size


class Reader:
    """The grading process's end: :meth:`feed` it bytes as they arrive, get complete events back.

    ``output_bytes`` caps the arrays of all results together. A ``result`` event comes back with
    ``"outputs"``: ``{name: ndarray}`` (or None) once all its arrays have arrived.
    """

    def __init__(self, output_bytes):
        self._buffer = bytearray()
        self._budget = output_bytes
        self._pending = None        # (event, [(name, dtype, shape, size) still to come])

    @property
    def partial(self):
        """Whether a frame or a result's arrays are still incomplete (the stream was cut short)."""
        return bool(self._buffer) or self._pending is not None

    def _limit(self, kind):
        if kind == b"J" and self._pending is None:
            return MAX_EVENT_BYTES
        if kind == b"A" and self._pending is not None:
            return self._pending[1][0][3]
        raise ProtocolError(f"unexpected frame kind {kind!r}")

    def feed(self, data):
        """Take ``data`` (bytes); return the list of events it completed. Raises ProtocolError."""
        self._buffer += data
        events = []
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            limit = self._limit(kind)
            if length > limit:
                raise ProtocolError(f"a {kind.decode(errors='replace')} frame of {length} bytes "
                                    f"(at most {limit} expected)")
            if len(self._buffer) < _HEADER.size + length:
                break
            payload = bytes(self._buffer[_HEADER.size:_HEADER.size + length])
            del self._buffer[:_HEADER.size + length]
            event = self._event(payload) if kind == b"J" else self._array(payload)
            if event is not None:
                events.append(event)
        return events

    def _event(self, payload):
        try:
            event = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError("an event that is not JSON") from None
        if not (isinstance(event, dict) and isinstance(event.get("event"), str)):
            raise ProtocolError("an event without a name")
        if event["event"] != "result":
            return event
        listed = event.get("arrays")
        if listed is None:
            event["outputs"] = None
            return event
        if not (isinstance(listed, list) and listed):
            raise ProtocolError("a result's arrays are not a list")
        specs = []
        for spec in listed:
            name, dtype, shape, size = _array_spec(spec, self._budget)
            if any(name == other[0] for other in specs):
                raise ProtocolError(f"array {name!r} listed twice")
            self._budget -= size
            specs.append((name, dtype, shape, size))
        event["outputs"] = {}
        self._pending = (event, specs)
        return None

    def _array(self, payload):
        event, specs = self._pending
        name, dtype, shape, size = specs.pop(0)
        if len(payload) != size:
            raise ProtocolError(f"{name}: {len(payload)} bytes for {size}")
        event["outputs"][name] = np.frombuffer(payload, dtype=dtype).reshape(shape).copy()
        if specs:
            return None
        self._pending = None
        return event
