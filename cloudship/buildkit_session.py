"""A BuildKit client session that serves the build context, as ``docker build`` does.

Why a session: with a context tar (``POST /build?version=2`` and the tar as the body) the
engine's BuildKit reads the Dockerfile from the tar and ``COPY . .`` copies everything in it, so
a Dockerfile or ``.dockerignore`` that ``.dockerignore`` lists still lands in the image. Docker
sends them anyway but "ADD and COPY do not copy them"
(https://docs.docker.com/build/concepts/context/#dockerignore-files). The Docker CLI gets that
by serving two directories over a session — ``context`` (with the excludes applied) and
``dockerfile`` (the Dockerfile's folder) — and building with ``remote=client-session``; this
module does the same, so the Dockerfile reaches the frontend without being part of the context.

The protocol, from the public sources (no code copied):

- ``POST /session`` with ``Upgrade: h2c`` and ``X-Docker-Expose-Session-*`` headers hijacks the
  connection; the engine then speaks gRPC to us as the client (moby/buildkit
  ``session/manager.go``). We serve ``/grpc.health.v1.Health/Check`` (the engine checks the
  session's health while it is open) and ``/moby.filesync.v1.FileSync/DiffCopy``.
- DiffCopy (tonistiigi/fsutil ``send.go``): we stream a ``Packet{type=STAT}`` per path in
  ``filepath.Walk`` order (a directory's entries sorted by name, a directory before its
  contents), then an empty STAT; the engine answers ``REQ{ID}`` for the regular files it lacks
  (an ID is the path's index in the STAT stream) and we send ``DATA`` chunks and an empty DATA;
  on its ``FIN`` we send ``FIN`` and end the call. Modes are Go's ``os.FileMode`` bits. The
  engine names the directory (``dir-name``) and the filters (``include-patterns``,
  ``exclude-patterns``, ``followpaths``) in the call's metadata (moby/buildkit
  ``session/filesync/filesync.go``).

HTTP/2 is the ``h2`` library (sans-IO, well kept); the few protobuf messages are encoded by
hand, as ``buildkit_trace`` decodes the trace, to avoid the gRPC runtime as a dependency.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat as statmod
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from cloudship.buildkit_trace import proto_fields
from cloudship.errors import EngineError

_HEALTH = "/grpc.health.v1.Health/Check"
_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
_STAT, _REQ, _DATA, _FIN, _ERR = range(5)
_CHUNK = 32 * 1024  # fsutil's send buffer
_HANDSHAKE_SECONDS = 30.0
# Go's os.FileMode type bits (https://pkg.go.dev/io/fs#FileMode)
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


# -- protobuf, the few fields the wire needs ---------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # int64 fields: two's complement, as protobuf encodes them
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value if value else b""


def go_mode(st: os.stat_result) -> int:
    """``st_mode`` as Go's ``os.FileMode``, the mode fsutil's Stat carries."""
    mode = st.st_mode & 0o777
    kind = statmod.S_IFMT(st.st_mode)
    mode |= {
        statmod.S_IFDIR: _GO_DIR,
        statmod.S_IFLNK: _GO_SYMLINK,
        statmod.S_IFIFO: _GO_PIPE,
        statmod.S_IFSOCK: _GO_SOCKET,
        statmod.S_IFBLK: _GO_DEVICE,
        statmod.S_IFCHR: _GO_DEVICE | _GO_CHARDEV,
    }.get(kind, 0)
    if st.st_mode & statmod.S_ISUID:
        mode |= _GO_SETUID
    if st.st_mode & statmod.S_ISGID:
        mode |= _GO_SETGID
    if st.st_mode & statmod.S_ISVTX:
        mode |= _GO_STICKY
    return mode


@dataclass(frozen=True)
class Entry:
    path: str  # relative, with "/"
    full: Path
    st: os.stat_result
    linkname: str = ""

    @property
    def regular(self) -> bool:
        return statmod.S_ISREG(self.st.st_mode)

    def stat_message(self) -> bytes:
        # fsutil types.Stat: path=1 mode=2 uid=3 gid=4 size=5 modTime=6 linkname=7 devmajor=8
        # devminor=9; uid/gid are 0 as the CLI's session sends them (its resetUIDAndGID map).
        size = self.st.st_size if not statmod.S_ISLNK(self.st.st_mode) else len(self.linkname)
        message = _field_bytes(1, self.path.encode()) + _field_varint(2, go_mode(self.st))
        message += _field_varint(5, size) + _field_varint(6, self.st.st_mtime_ns)
        message += _field_bytes(7, self.linkname.encode())
        if statmod.S_ISBLK(self.st.st_mode) or statmod.S_ISCHR(self.st.st_mode):
            message += _field_varint(8, os.major(self.st.st_rdev))
            message += _field_varint(9, os.minor(self.st.st_rdev))
        return message


def packet(kind: int, *, stat: bytes | None = None, ident: int = 0, data: bytes = b"") -> bytes:
    """fsutil types.Packet: type=1 stat=2 ID=3 data=4."""
    message = _field_varint(1, kind)
    if stat is not None:
        message += _varint(2 << 3 | 2) + _varint(len(stat)) + stat
    return message + _field_varint(3, ident) + _field_bytes(4, data)


def parse_packet(message: bytes) -> tuple[int, int, bytes]:
    """(type, ID, data) of a Packet the engine sent."""
    values = dict(proto_fields(message))
    kind, ident, data = values.get(1, 0), values.get(3, 0), values.get(4, b"")
    return (
        int(kind) if isinstance(kind, int) else 0,
        int(ident) if isinstance(ident, int) else 0,
        (data if isinstance(data, bytes) else b""),
    )


# -- the walk, filtered like fsutil's FilterFS -------------------------------------------------


def _go_match(pattern: str, path: str) -> bool:
    """Go's ``filepath.Match``: ``*`` and ``?`` stay within one path element."""
    parts, names = pattern.strip("/").split("/"), path.split("/")
    return len(parts) == len(names) and all(map(fnmatchcase, names, parts))


@dataclass
class Filters:
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    follow: list[str] = field(default_factory=list)

    def wanted(self) -> list[str]:
        return [p.strip("/") for p in [*self.includes, *self.follow] if p.strip("/")]


def walk(root: Path, filters: Filters) -> list[Entry]:
    """The paths fsutil would send from ``root``: in ``filepath.Walk`` order, the includes and
    follow-paths selecting (with the folders on the way), the excludes (``.dockerignore``'s
    rules: docker-py's port of the engine's matcher) removing."""
    from docker.utils.build import PatternMatcher

    excludes = None
    if filters.excludes:
        excludes = PatternMatcher(filters.excludes)
        # docker-py re-admits .dockerignore for its tar (its PatternMatcher appends a
        # "!.dockerignore"); the engine's matcher does not, and an ignored one must stay out
        excludes.patterns = [
            p
            for p in excludes.patterns
            if p.cleaned_pattern != ".dockerignore"
            or not p.exclusion
            or f"!{p.cleaned_pattern}" in filters.excludes
        ]
    exceptions = [p.cleaned_pattern for p in excludes.patterns if p.exclusion] if excludes else []
    wanted = filters.wanted()

    def selected(rel: str) -> bool:  # rel or a folder above it is named
        return not wanted or any(
            _go_match(p, rel) or rel.startswith(p + "/") or _under_match(p, rel) for p in wanted
        )

    def on_the_way(rel: str) -> bool:  # a named path lies below the folder rel
        return any(p.startswith(rel + "/") or _prefix_match(p, rel) for p in wanted)

    def visit(folder: Path, prefix: str) -> Iterator[Entry]:
        for name in sorted(os.listdir(folder), key=os.fsencode):
            full = folder / name
            rel = f"{prefix}{name}"
            st = full.lstat()
            is_dir = statmod.S_ISDIR(st.st_mode)
            chosen = selected(rel)
            if not chosen and not (is_dir and on_the_way(rel)):
                continue
            if excludes is not None and excludes.matches(rel):
                if is_dir and any(e.startswith(rel + "/") for e in exceptions):
                    below = list(visit(full, rel + "/"))
                    if below:
                        yield Entry(rel, full, st)
                        yield from below
                continue
            linkname = os.readlink(full) if statmod.S_ISLNK(st.st_mode) else ""
            if is_dir:
                below = list(visit(full, rel + "/"))
                if chosen or below:
                    yield Entry(rel, full, st)
                    yield from below
            elif chosen:
                yield Entry(rel, full, st, linkname)

    return list(visit(root, ""))


def _under_match(pattern: str, rel: str) -> bool:
    """rel lies inside a folder the (wildcard) pattern names."""
    names = rel.split("/")
    depth = len(pattern.split("/"))
    return len(names) > depth and _go_match(pattern, "/".join(names[:depth]))


def _prefix_match(pattern: str, rel: str) -> bool:
    """The (wildcard) pattern could name something below the folder rel."""
    parts, names = pattern.split("/"), rel.split("/")
    return len(parts) > len(names) and all(map(fnmatchcase, names, parts[: len(names)]))


# -- the session -------------------------------------------------------------------------------


@dataclass
class _Call:
    method: str
    metadata: dict[str, list[str]]
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    entries: list[Entry] = field(default_factory=list)
    finished: bool = False  # the answer is complete: send trailers once the outbox drains
    closed: bool = False


class SessionUnavailable(Exception):
    """This engine connection cannot carry a session: build from a context tar instead."""


def connect_raw(api: Any) -> Any:
    """A new socket to the engine docker-py's ``APIClient`` talks to (unix socket or plain
    TCP; TLS and ssh hosts raise ``SessionUnavailable``)."""
    from urllib.parse import urlsplit

    adapter_path = getattr(getattr(api, "_custom_adapter", None), "socket_path", None)
    if api.base_url.startswith("http+docker://") and adapter_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(adapter_path)
        return sock
    parts = urlsplit(api.base_url)
    if parts.scheme == "http" and parts.hostname:
        return socket.create_connection((parts.hostname, parts.port or 2375))
    raise SessionUnavailable(f"no build session over {parts.scheme or api.base_url}")


class Session:
    """One BuildKit session serving ``dirs`` (name → folder) to the engine until ``close()``.

    ``excludes`` are applied to the ``context`` folder on top of what the engine asks for (the
    CLI does the same with its own reading of ``.dockerignore``)."""

    def __init__(self, api: Any, dirs: dict[str, Path], excludes: Sequence[str] = ()) -> None:
        self.id = uuid.uuid4().hex
        self._api = api
        self._dirs = dirs
        self._excludes = list(excludes)
        self._calls: dict[int, _Call] = {}
        self._thread: threading.Thread | None = None
        self._socket: Any = None
        self.error: BaseException | None = None

    def headers(self) -> dict[str, str]:
        context = str(self._dirs["context"])
        return {
            "Connection": "Upgrade",
            "Upgrade": "h2c",
            "X-Docker-Expose-Session-Uuid": self.id,
            "X-Docker-Expose-Session-Name": "cloudship",
            # the engine keys its copy of the context by this: the next build sends only changes
            "X-Docker-Expose-Session-Sharedkey": hashlib.sha256(context.encode()).hexdigest(),
        }

    def open(self) -> None:
        """Hijack ``POST /session`` and serve it on a thread. Raises ``SessionUnavailable``
        when the engine's address is not one this client can hijack (a unix socket or plain
        TCP) or the engine refuses the upgrade."""
        try:
            self._handshake(connect_raw(self._api))
        except OSError as exc:  # refused, reset, or no answer within _HANDSHAKE_SECONDS
            raise EngineError(
                f"the Docker engine did not open a build session ({type(exc).__name__}: {exc})",
                fix="check the engine's load and that it runs; DOCKER_BUILDKIT=0 builds "
                "without BuildKit",
            ) from exc

    def _handshake(self, sock: Any) -> None:
        sock.settimeout(_HANDSHAKE_SECONDS)  # an engine that never answers must not hang a ship
        lines = [f"POST /v{self._api._version}/session HTTP/1.1", "Host: docker"]
        lines += [f"{name}: {value}" for name, value in self.headers().items()]
        # one header line per method: the engine reads them as a list (requests would merge)
        lines += [f"X-Docker-Expose-Session-Grpc-Method: {m}" for m in (_HEALTH, _DIFFCOPY)]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reader = sock.makefile("rb")
        status = reader.readline().decode("latin-1")
        while reader.readline() not in (b"\r\n", b"\n", b""):
            pass  # the 101's headers
        if " 101 " not in status:
            sock.close()
            raise SessionUnavailable(f"the engine refused a build session: {status.strip()}")
        sock.settimeout(None)  # then the engine asks only while it builds, at its own pace
        self._socket = sock
        self._thread = threading.Thread(
            target=self._serve, args=(reader, sock), name="buildkit-session", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP/2 --------------------------------------------------------------------------------

    def _serve(self, reader: Any, sock: Any) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = reader.read1(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self._start(conn, event.stream_id, event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                        call = self._calls.get(event.stream_id)
                        if call is not None:
                            call.inbox += event.data
                            self._messages(call)
                    elif isinstance(event, h2.events.StreamEnded):
                        call = self._calls.get(event.stream_id)
                        if call is not None and call.method == _HEALTH:
                            self._reply(call, b"\x08\x01")  # HealthCheckResponse{SERVING}
                    elif isinstance(event, h2.events.StreamReset):
                        self._calls.pop(event.stream_id, None)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                self._flush(conn)
                sock.sendall(conn.data_to_send())
        except OSError:
            return  # closed by close() or by the engine when the build ends
        except Exception as exc:  # a fault here (an unreadable file, say) ends the session,
            self.error = exc  # so the engine fails the build instead of waiting for files
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _start(self, conn: Any, stream_id: int, headers: Any) -> None:
        metadata: dict[str, list[str]] = {}
        method = ""
        for name, value in headers:  # str pairs: header_encoding="utf-8"
            if name == ":path":
                method = value
            elif not name.startswith(":"):
                metadata.setdefault(name, []).append(value)
        call = _Call(method, _decoded(metadata))
        self._calls[stream_id] = call
        conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        if method == _DIFFCOPY:
            self._diffcopy(call)
        elif method != _HEALTH:
            call.finished = True
            call.metadata["grpc-status"] = ["12"]  # UNIMPLEMENTED

    def _flush(self, conn: Any) -> None:
        for stream_id, call in list(self._calls.items()):
            while call.outbox:
                window = min(
                    conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size
                )
                if window <= 0:
                    break
                chunk = bytes(call.outbox[:window])
                del call.outbox[:window]
                conn.send_data(stream_id, chunk)
            if call.finished and not call.outbox and not call.closed:
                status = call.metadata.get("grpc-status", ["0"])[0]
                conn.send_headers(stream_id, [("grpc-status", status)], end_stream=True)
                call.closed = True
                del self._calls[stream_id]

    def _reply(self, call: _Call, message: bytes) -> None:
        call.outbox += b"\x00" + len(message).to_bytes(4, "big") + message
        if call.method == _HEALTH:
            call.finished = True

    def _messages(self, call: _Call) -> None:
        while len(call.inbox) >= 5:
            length = int.from_bytes(call.inbox[1:5], "big")
            if len(call.inbox) < 5 + length:
                return
            message = bytes(call.inbox[5 : 5 + length])
            del call.inbox[: 5 + length]
            if call.method == _DIFFCOPY:
                self._diffcopy_packet(call, message)

    # -- DiffCopy ------------------------------------------------------------------------------

    def _diffcopy(self, call: _Call) -> None:
        name = (call.metadata.get("dir-name") or [""])[0]
        root = self._dirs.get(name)
        if root is None:
            call.finished = True
            call.metadata["grpc-status"] = ["5"]  # NOT_FOUND, as the CLI answers
            return
        filters = Filters(
            includes=call.metadata.get("include-patterns", []),
            excludes=call.metadata.get("exclude-patterns", []),
            follow=call.metadata.get("followpaths", []),
        )
        if name == "context":
            filters.excludes = [*self._excludes, *filters.excludes]
        call.entries = walk(root, filters)
        for entry in call.entries:
            self._reply(call, packet(_STAT, stat=entry.stat_message()))
        self._reply(call, packet(_STAT))  # the end of the stats: no Stat at all

    def _diffcopy_packet(self, call: _Call, message: bytes) -> None:
        kind, ident, data = parse_packet(message)
        if kind == _REQ:
            entry = call.entries[ident] if ident < len(call.entries) else None
            if entry is None or not entry.regular:
                self._reply(call, packet(_ERR, data=f"invalid file id {ident}".encode()))
                return
            with entry.full.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    self._reply(call, packet(_DATA, ident=ident, data=chunk))
            self._reply(call, packet(_DATA, ident=ident))
        elif kind == _FIN:
            self._reply(call, packet(_FIN))
            call.finished = True
        elif kind == _ERR:
            call.finished = True
            self.error = RuntimeError(f"the engine failed to receive the context: {data!r}")


def _decoded(metadata: dict[str, list[str]]) -> dict[str, list[str]]:
    """gRPC metadata as filesync sends it: values URL-encoded when ``<key>-encoded`` is set, and
    one header may carry several values joined by commas (HTTP/2 headers gRPC merged)."""
    out: dict[str, list[str]] = {}
    for key, values in metadata.items():
        encoded = (metadata.get(f"{key}-encoded") or ["0"])[0].lower() in ("1", "true")
        out[key] = [unquote_plus(v) if encoded else v for v in values]
    return out
