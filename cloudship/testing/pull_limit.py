"""Docker Hub's pull rate limit in front of a test registry, for tests (yours too).

``PullLimitProxy(upstream)`` listens on its own loopback port and forwards every request to
the registry at ``upstream`` (a ``TokenRegistry`` or ``ThrowawayRegistry`` address), so the
engine pushes and pulls through it unchanged. On the way it does what Docker Hub's registry
does (https://docs.docker.com/docker-hub/usage/pulls/):

- a pull is counted per ``GET /v2/<name>/manifests/<reference>``; a ``HEAD`` is not ("using
  HEAD will not" count, same page), nor are blobs;
- pulls are counted per account (the Bearer token's ``sub``), or per client IP when anonymous;
- manifest answers carry ``ratelimit-limit: 100;w=3600``, ``ratelimit-remaining: N;w=3600``
  and ``docker-ratelimit-source``; an account without a limit (``limits[user] = None``, a paid
  plan) gets no such headers;
- past the limit, the manifest ``GET`` answers ``429`` with the registry error
  ``TOOMANYREQUESTS`` and Docker's documented text, and no ``Retry-After``.

Defaults are today's limits: 100 pulls/hour for a Personal account, 10/hour per IP
anonymously. ``used`` can be set to start a test with the quota already spent.

Hand-rolled on ``http.server`` (no proxy library is a dependency here): it reads chunked
upload bodies, buffers each answer, and sets ``TCP_NODELAY``.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cloudship.testing.registry import http_server_on, loopback_listener

PERSONAL_LIMIT = 100
ANONYMOUS_LIMIT = 10
WINDOW = 3600
PULL_LIMIT_MESSAGE = (
    "You have reached your pull rate limit. You may increase the limit by authenticating and "
    "upgrading: https://www.docker.com/increase-rate-limits"
)
_MANIFEST = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class PullLimitProxy:
    """``with PullLimitProxy(registry.address) as proxy: proxy.address  # 127.0.0.1:PORT``"""

    def __init__(
        self,
        upstream: str,
        *,
        limit: int = PERSONAL_LIMIT,
        anonymous_limit: int = ANONYMOUS_LIMIT,
        window: int = WINDOW,
        limits: Mapping[str, int | None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        self.anonymous_limit = anonymous_limit
        self.window = window
        #: per-account limits that differ from ``limit`` (None: unlimited, a paid plan)
        self.limits: dict[str, int | None] = dict(limits or {})
        #: pulls counted so far, per account (or ``ip:<address>`` when anonymous)
        self.used: dict[str, int] = {}
        #: every manifest request: (method, path, who, status)
        self.requests: list[tuple[str, str, str, int]] = []
        self._listener = loopback_listener()
        self.port = int(self._listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __repr__(self) -> str:
        return f"PullLimitProxy({self.address} -> {self.upstream})"

    def __enter__(self) -> PullLimitProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def limit_of(self, who: str) -> int | None:
        if who.startswith("ip:"):
            return self.anonymous_limit
        return self.limits.get(who, self.limit)

    def count(self, method: str, path: str, who: str) -> tuple[int, dict[str, str]]:
        """Decide a manifest request: (0 = forward | 429, rate-limit headers)."""
        with self._lock:
            limit = self.limit_of(who)
            if limit is None:
                return 0, {}
            used = self.used.get(who, 0)
            counted = method == "GET"
            if counted and used >= limit:
                return 429, self._headers(limit, 0, who)
            if counted:
                used = self.used[who] = used + 1
            return 0, self._headers(limit, max(0, limit - used), who)

    def _headers(self, limit: int, remaining: int, who: str) -> dict[str, str]:
        return {
            "ratelimit-limit": f"{limit};w={self.window}",
            "ratelimit-remaining": f"{remaining};w={self.window}",
            "docker-ratelimit-source": who.removeprefix("ip:"),
        }

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_PATCH(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def _forward(self) -> None:
                extra: dict[str, str] = {}
                who = ""
                match = _MANIFEST.match(self.path.split("?", 1)[0])
                if match is not None:
                    who = _subject(self.headers.get("Authorization")) or (
                        f"ip:{self.client_address[0]}"
                    )
                    status, extra = proxy.count(self.command, self.path, who)
                    if status == 429:
                        refusal = {
                            "errors": [{"code": "TOOMANYREQUESTS", "message": PULL_LIMIT_MESSAGE}]
                        }
                        with proxy._lock:
                            proxy.requests.append((self.command, self.path, who, 429))
                        self._answer(429, {"Content-Type": "application/json", **extra}, refusal)
                        return
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=120)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                    length = int(self.headers.get("Content-Length") or 0)
                    body: Any = _chunks(self.rfile) if chunked else self.rfile.read(length)
                    upstream.request(
                        self.command, self.path, body=body, headers=headers, encode_chunked=chunked
                    )
                    answer = upstream.getresponse()
                    data = answer.read()
                    if match is not None:
                        with proxy._lock:
                            proxy.requests.append((self.command, self.path, who, answer.status))
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    if self.command == "HEAD":
                        self.send_header(
                            "Content-Length", answer.getheader("Content-Length") or "0"
                        )
                        self.end_headers()
                    else:
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http_server_on(self._listener, Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._listener.close()  # also when it never served


def _subject(header: str | None) -> str | None:
    """The account a registry Bearer token was issued to (its ``sub``), if any."""
    if not header or not header.lower().startswith("bearer "):
        return None
    import jwt

    try:
        claims = jwt.decode(header[7:], options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return str(subject) if subject else None


def _chunks(stream: Any) -> Iterator[bytes]:
    """Decode a chunked request body (RFC 9112 §7.1) as it arrives."""
    while True:
        size_line = stream.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield stream.read(size)
        stream.readline()  # the CRLF after each chunk
