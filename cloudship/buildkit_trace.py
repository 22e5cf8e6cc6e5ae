"""Decoder for BuildKit's progress trace: the ``moby.buildkit.trace`` lines of a BuildKit build.

Each trace line's ``aux`` is the base64 of one ``moby.buildkit.v1.StatusResponse`` protobuf
(moby/buildkit ``api/services/control/control.proto``): ``vertexes`` (1), ``statuses`` (2),
``logs`` (3), ``warnings`` (4). cloudship reads only these four messages and the
``google.protobuf.Timestamp`` inside them.

Why a small decoder and not the protobuf runtime: the runtime alone cannot read the message —
it needs classes generated from control.proto and everything it imports (gogoproto options,
``solver/pb/ops.proto``), which would then be vendored here and regenerated whenever the
``protobuf`` package moves its generated-code compatibility window; and ``protobuf`` would be a
new hard dependency of the core for reading five scalar fields. The protobuf wire format is
frozen (https://protobuf.dev/programming-guides/encoding/), unknown fields are skipped by
design, and new BuildKit fields (``progressGroup``, warning ``ranges``) are simply ignored, so a
~100-line reader is the smaller and more stable choice. Tests feed it a trace recorded from a
real build on this project's engine (``tests/unit/data/buildkit-trace.jsonl``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

# Protobuf wire types (https://protobuf.dev/programming-guides/encoding/#structure).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class TraceDecodeError(ValueError):
    """The bytes are not a StatusResponse (truncated or not protobuf)."""


@dataclass(frozen=True, slots=True)
class Vertex:
    """One node of the build graph: a Dockerfile step (``[2/5] RUN …``) or an internal one."""

    digest: str
    name: str = ""
    inputs: tuple[str, ...] = ()
    cached: bool = False
    started: float | None = None  # seconds since the epoch
    completed: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class VertexStatus:
    """Progress of one piece of work inside a vertex (a layer being extracted, a transfer)."""

    id: str
    vertex: str
    name: str = ""
    current: int = 0
    total: int = 0
    completed: float | None = None


@dataclass(frozen=True, slots=True)
class VertexLog:
    """Output of a vertex; ``stream`` 1 is stdout, 2 stderr."""

    vertex: str
    stream: int
    data: bytes
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class VertexWarning:
    vertex: str
    level: int
    short: str
    detail: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True, slots=True)
class StatusResponse:
    vertexes: list[Vertex] = field(default_factory=list)
    statuses: list[VertexStatus] = field(default_factory=list)
    logs: list[VertexLog] = field(default_factory=list)
    warnings: list[VertexWarning] = field(default_factory=list)


def decode_trace(aux: str) -> StatusResponse:
    """Decode the ``aux`` of one ``moby.buildkit.trace`` stream line."""
    try:
        raw = base64.b64decode(aux, validate=True)
    except ValueError as exc:
        raise TraceDecodeError(f"trace is not base64: {exc}") from exc
    return decode_status(raw)


def decode_status(data: bytes) -> StatusResponse:
    out = StatusResponse()
    for number, value in _fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            out.vertexes.append(_vertex(value))
        elif number == 2:
            out.statuses.append(_status(value))
        elif number == 3:
            out.logs.append(_log(value))
        elif number == 4:
            out.warnings.append(_warning(value))
    return out


def _vertex(data: bytes) -> Vertex:
    digest = name = error = ""
    inputs: list[str] = []
    cached = False
    started = completed = None
    for number, value in _fields(data):
        if number == 1:
            digest = _text(value)
        elif number == 2:
            inputs.append(_text(value))
        elif number == 3:
            name = _text(value)
        elif number == 4:
            cached = bool(value)
        elif number == 5:
            started = _timestamp(value)
        elif number == 6:
            completed = _timestamp(value)
        elif number == 7:
            error = _text(value)
    return Vertex(digest, name, tuple(inputs), cached, started, completed, error)


def _status(data: bytes) -> VertexStatus:
    ident = vertex = name = ""
    current = total = 0
    completed = None
    for number, value in _fields(data):
        if number == 1:
            ident = _text(value)
        elif number == 2:
            vertex = _text(value)
        elif number == 3:
            name = _text(value)
        elif number == 4:
            current = _int64(value)
        elif number == 5:
            total = _int64(value)
        elif number == 8:
            completed = _timestamp(value)
    return VertexStatus(ident, vertex, name, current, total, completed)


def _log(data: bytes) -> VertexLog:
    vertex = ""
    stream = 0
    msg = b""
    timestamp = None
    for number, value in _fields(data):
        if number == 1:
            vertex = _text(value)
        elif number == 2:
            timestamp = _timestamp(value)
        elif number == 3:
            stream = _int64(value)
        elif number == 4:
            msg = value if isinstance(value, bytes) else b""
    return VertexLog(vertex, stream, msg, timestamp)


def _warning(data: bytes) -> VertexWarning:
    vertex = url = short = ""
    level = 0
    detail: list[str] = []
    for number, value in _fields(data):
        if number == 1:
            vertex = _text(value)
        elif number == 2:
            level = _int64(value)
        elif number == 3:
            short = _text(value)
        elif number == 4:
            detail.append(_text(value))
        elif number == 5:
            url = _text(value)
    return VertexWarning(vertex, level, short, tuple(detail), url)


# -- wire format ---------------------------------------------------------------------------


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for varint/fixed fields, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > end:
                raise TraceDecodeError("length-delimited field runs past the message")
            out.append((number, data[pos : pos + size]))
            pos += size
        elif wire == _I64:
            if pos + 8 > end:
                raise TraceDecodeError("truncated 64-bit field")
            out.append((number, int.from_bytes(data[pos : pos + 8], "little")))
            pos += 8
        elif wire == _I32:
            if pos + 4 > end:
                raise TraceDecodeError("truncated 32-bit field")
            out.append((number, int.from_bytes(data[pos : pos + 4], "little")))
            pos += 4
        else:  # groups (3, 4) are deprecated and absent from control.proto
            raise TraceDecodeError(f"unsupported wire type {wire} in field {number}")
    return out


#: the wire reader, for the session's few messages (``buildkit_session``)
proto_fields = _fields


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise TraceDecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TraceDecodeError("varint longer than 64 bits")


def _int64(value: int | bytes) -> int:
    if not isinstance(value, int):
        return 0
    return value - (1 << 64) if value >= 1 << 63 else value  # two's complement int64


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _timestamp(value: int | bytes) -> float | None:
    if not isinstance(value, bytes):
        return None
    seconds = nanos = 0
    for number, part in _fields(value):
        if number == 1:
            seconds = _int64(part)
        elif number == 2:
            nanos = _int64(part)
    return seconds + nanos / 1e9
