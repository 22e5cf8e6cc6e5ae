"""A stateful fake of the Docker Hub API endpoints cloudship uses, for tests (yours too).

Endpoints, shaped as Docker's API reference describes them (shared/CLOUD-FACTS.md §6.2):
``POST /v2/auth/token`` (``{"identifier", "secret"}`` → ``{"access_token"}``),
``GET /v2/namespaces/{ns}/repositories/{name}``, ``POST /v2/namespaces/{ns}/repositories``
(``{"name", "namespace", "is_private", "description"}``; name 2-255 chars matching
``^[a-z0-9]+(?:[._-][a-z0-9]+)*$``). It accepts exactly the users it was given, lets each
write only its own namespace (plus ``orgs``), and can answer 429 with ``Retry-After`` on demand
(``throttle``). ``requests`` records every call (method, path, authenticated user) so tests can
assert what happened and in which order.

    with FakeHub(users={"alice": "dckr_pat_x"}) as hub:
        hub.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_REPO_PATH = re.compile(r"^/v2/namespaces/([^/]+)/repositories(?:/([^/]+))?/?$")


@dataclass
class Repository:
    namespace: str
    name: str
    is_private: bool
    description: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "is_private": self.is_private,
            "description": self.description,
            "repository_type": "image",
            "status": 1,
        }


@dataclass
class HubCall:
    method: str
    path: str
    user: str | None
    status: int


@dataclass
class _State:
    users: dict[str, str]
    orgs: dict[str, set[str]]
    tokens: dict[str, str] = field(default_factory=dict)  # access token → user
    repositories: dict[tuple[str, str], Repository] = field(default_factory=dict)
    requests: list[HubCall] = field(default_factory=list)
    throttled: int = 0
    retry_after: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeHub:
    def __init__(self, users: dict[str, str], *, orgs: dict[str, set[str]] | None = None) -> None:
        self.state = _State(users=dict(users), orgs={k: set(v) for k, v in (orgs or {}).items()})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def throttle(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests with 429 and ``Retry-After: retry_after``."""
        with self.state.lock:
            self.state.throttled, self.state.retry_after = count, retry_after

    @property
    def repositories(self) -> dict[tuple[str, str], Repository]:
        return dict(self.state.repositories)

    @property
    def requests(self) -> list[HubCall]:
        return list(self.state.requests)


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Headers and body go out in separate writes: without TCP_NODELAY each answer
        # waits ~40 ms on Nagle + delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            user = self._user()
            with state.lock:
                if state.throttled > 0:
                    state.throttled -= 1
                    status, body = 429, {"message": "too many requests"}
                    self._reply(status, body, {"Retry-After": str(state.retry_after)})
                    state.requests.append(HubCall(method, self.path, user, status))
                    return
                status, body = self._route(method, raw, user)
                state.requests.append(HubCall(method, self.path, user, status))
            self._reply(status, body, {})

        def _user(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                return state.tokens.get(header.removeprefix("Bearer "))
            return None

        def _route(self, method: str, raw: bytes, user: str | None) -> tuple[int, dict[str, Any]]:
            if method == "POST" and self.path == "/v2/auth/token":
                body = json.loads(raw or b"{}")
                name, secret = body.get("identifier"), body.get("secret")
                if not name or state.users.get(name) != secret:
                    return 401, {"errinfo": {}, "message": "incorrect authentication credentials"}
                token = secrets.token_urlsafe(24)
                state.tokens[token] = name
                return 200, {"access_token": token}
            match = _REPO_PATH.match(self.path)
            if match is None:
                return 404, {"message": "not found"}
            if user is None:
                return 401, {"message": "authentication required"}
            namespace, name = match[1], match[2]
            if method == "GET" and name:
                repo = state.repositories.get((namespace, name))
                if repo is None or (repo.is_private and not self._member(user, namespace)):
                    return 404, {"message": "object not found", "errinfo": {}}
                return 200, repo.body()
            if method == "POST" and not name:
                return self._create(namespace, json.loads(raw or b"{}"), user)
            return 405, {"message": "method not allowed"}

        def _member(self, user: str, namespace: str) -> bool:
            return namespace == user or user in state.orgs.get(namespace, set())

        def _create(
            self, namespace: str, body: dict[str, Any], user: str
        ) -> tuple[int, dict[str, Any]]:
            if not self._member(user, namespace):
                return 403, {"message": f"no write access to namespace {namespace}"}
            name = body.get("name")
            for required in ("name", "namespace", "is_private"):
                if required not in body:
                    return 400, {"message": f"missing field: {required}"}
            if not isinstance(name, str) or not 2 <= len(name) <= 255 or not _NAME.match(name):
                return 400, {"message": f"invalid repository name {name!r}"}
            if body["namespace"] != namespace:
                return 400, {"message": "namespace in body does not match the path"}
            if (namespace, name) in state.repositories:
                return 409, {"message": "repository already exists"}
            description = str(body.get("description", ""))
            if len(description) > 100:
                return 400, {"message": "description is limited to 100 characters"}
            repo = Repository(namespace, name, bool(body["is_private"]), description)
            state.repositories[(namespace, name)] = repo
            return 201, repo.body()

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
