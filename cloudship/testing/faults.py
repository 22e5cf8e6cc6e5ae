"""Fault injection for tests of deploy scripts: a registry that fails, and an engine that goes.

``FaultyRegistry`` is an HTTP proxy in front of any registry (e.g. a ``ThrowawayRegistry``).
Rules decide, per request, whether to pass it on or to fail it the way real registries and
networks fail::

    with FaultyRegistry(upstream=registry.address) as faulty:
        faulty.fail("PUT", r"/manifests/", status=500, times=1)   # one 500 on the manifest PUT
        faulty.fail(None, r"/blobs/", status=429, times=2)         # rate limited twice
        faulty.fail("PATCH", r"/blobs/uploads/", action="reset")   # connection reset
        faulty.hang()                                              # accept, never answer
        ship(app, target=Target(registry=V2Registry(address=faulty.address, ...), ...))

``EngineSocketProxy`` is a Unix socket that relays to the Docker engine's socket until
``cut()``: point ``DOCKER_HOST`` (or a target's ``docker_host``) at it to lose the engine half-way
through a deploy without touching the real ``dockerd``.

Both are plain threads on loopback (or a socket in a temporary folder), with Nagle disabled: a
response written in two parts must not stall ~40 ms.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import socket
import socketserver
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

Action = Literal["status", "reset", "hang", "close"]
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass
class Rule:
    """Fail requests whose method (None: any) and path match, ``times`` times (None: always)."""

    method: str | None
    path: re.Pattern[str]
    action: Action
    status: int
    times: int | None
    #: the distribution error answered with a status (its spec's error codes, e.g.
    #: ``MANIFEST_BLOB_UNKNOWN``), and its message
    error: tuple[str, str] = ("UNAVAILABLE", "injected fault")
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and bool(self.path.search(path))


class FaultyRegistry:
    """An HTTP proxy to ``upstream`` (``host:port``) that injects the faults it is told to."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        #: (method, path, what happened) for every request seen, in order
        self.log: list[tuple[str, str, str]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                owner._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    # -- rules ---------------------------------------------------------------------------

    def fail(
        self,
        method: str | None,
        path: str,
        *,
        status: int = 500,
        action: Action = "status",
        times: int | None = 1,
        error: tuple[str, str] = ("UNAVAILABLE", "injected fault"),
    ) -> Rule:
        """Add a rule: answer ``status`` (with the distribution ``error`` code and message),
        reset the connection, close it without an answer, or hang (until :meth:`release`), for
        matching requests."""
        rule = Rule(method, re.compile(path), action, status, times, error)
        with self._lock:
            self._rules.append(rule)
        return rule

    def hang(self) -> Rule:
        """Every request from now on is accepted and never answered (until :meth:`release`)."""
        return self.fail(None, ".", action="hang", times=None)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def release(self) -> None:
        """Let hung requests go (they are then closed without an answer)."""
        self._released.set()

    # -- serving -------------------------------------------------------------------------

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        body = _read_body(handler)
        rule = self._rule_for(method, path)
        if rule is not None:
            self.log.append(
                (method, path, rule.action if rule.action != "status" else str(rule.status))
            )
            if rule.action == "status":
                code, message = rule.error
                data = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
                handler.send_response(rule.status)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                if rule.status == 429:
                    handler.send_header("Retry-After", "1")
                handler.end_headers()
                if method != "HEAD":
                    handler.wfile.write(data)
                return
            if rule.action == "hang":
                self._released.wait()
            if rule.action == "reset":
                # SO_LINGER 0: close sends RST, as a crashed load balancer does.
                handler.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = f"http://{self.upstream}{path}"
        try:
            with self._client.stream(method, url, headers=headers, content=body) as response:
                self.log.append((method, path, str(response.status_code)))
                data = response.read()
                handler.send_response(response.status_code)
                for key, value in response.headers.multi_items():
                    if key.lower() not in _HOP_BY_HOP:
                        handler.send_header(key, value)
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                if method != "HEAD":
                    handler.wfile.write(data)
        except httpx.HTTPError:
            handler.send_error(502)

    def start(self) -> FaultyRegistry:
        from cloudship.testing.registry import STARTED_HERE

        STARTED_HERE.add(self.address)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> FaultyRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body, plain or chunked (dockerd uploads layers chunked)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class EngineSocketProxy:
    """A Unix socket relaying to the Docker engine's socket until :meth:`cut`.

    ``docker_host`` is the ``unix://`` address to hand to cloudship (``Engine(...)``, a local
    target's ``docker_host=``, or ``DOCKER_HOST``). After ``cut()`` every open connection is
    closed and new ones are refused, as when the engine dies; the real engine is untouched.
    """

    def __init__(self, engine_socket: str = "/var/run/docker.sock") -> None:
        self._engine_socket = engine_socket
        self._folder = tempfile.mkdtemp(prefix="cloudship-engine-")
        self.path = str(Path(self._folder) / "docker.sock")
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        owner = self

        class Relay(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._relay(self.request)

        self._server = socketserver.ThreadingUnixStreamServer(self.path, Relay)
        self._server.daemon_threads = True

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def _relay(self, client: socket.socket) -> None:
        if self._cut:
            client.close()
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self._engine_socket)
        with self._lock:
            self._open.update((client, upstream))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            for one in (src, dst):
                with contextlib.suppress(OSError):
                    one.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()
        with self._lock:
            self._open.difference_update((client, upstream))
        client.close()
        upstream.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones: the engine is gone."""
        self._cut = True
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(OSError):
            Path(self.path).unlink()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def start(self) -> EngineSocketProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if not self._cut:
            self.cut()
        with contextlib.suppress(OSError):
            Path(self._folder).rmdir()

    def __enter__(self) -> EngineSocketProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["EngineSocketProxy", "FaultyRegistry", "Rule"]
