"""A stateful fake of the Docker Hub API endpoints cloudship uses, for tests (yours too).

It fails the way Docker Hub fails, by default; each rule names its source:

- Endpoints and bodies: ``POST /v2/auth/token`` (``{"identifier", "secret"}`` →
  ``{"access_token"}``), ``GET /v2/namespaces/{ns}/repositories/{name}``,
  ``POST /v2/namespaces/{ns}/repositories`` (``{"name", "namespace", "is_private",
  "description"}``; name 2-255 chars matching ``^[a-z0-9]+(?:[._-][a-z0-9]+)*$``, description
  ≤ 100) — https://docs.docker.com/reference/api/hub/latest/operations/AuthCreateAccessToken/ ,
  …/CreateRepository/ , …/schemas/repo_creation_request/ . Errors carry ``message`` and
  ``errinfo``, the Hub's ``error`` schema (…/hub/latest/schemas/error/: "The message describes
  the failure; errinfo can contain additional context").
- **Access tokens expire after 10 minutes** ("The created access token. This expires in 10
  minutes.", …/schemas/AuthCreateTokenResponse/); then every call answers 401. The lifetime
  and the clock are injectable (``access_ttl``, ``clock``; ``advance()``) so tests need not
  wait.
- **PAT permissions** (https://docs.docker.com/security/access-tokens/reference/): one level
  per token, for every repository the account can access — ``repo:public_read`` (the default:
  public repositories only), ``repo:read`` (private ones too), ``repo:write`` (push),
  ``repo:admin`` ("Read, Write, Delete": also manage repositories). Creating a repository needs
  ``repo:admin``; less is 403 ``access denied: insufficient scope``.
- **Organization access tokens**: the identifier is the organisation; resources are
  ``(type, path glob, scopes)`` as in ``orgAccessTokenResource`` (``TYPE_REPO`` paths such as
  ``myorg/*``, scopes such as ``scope-image-pull``, ``scope-image-push``) and creating a
  repository needs ``scope-repository-create`` (…/schemas/orgAccessTokenResource/ ;
  https://docs.docker.com/security/access-tokens/organization-access-tokens/).
- **One private repository per Personal account** ("Private repositories: Up to 1",
  https://docs.docker.com/docker-hub/usage/); organisations on a paid plan have no limit.
  The Hub's answer to one more is not documented: the fake answers 400 with the message the
  Hub's UI shows ("No more private repositories available", docker/hub-feedback#78, #1249,
  #1313 — the API's 400 was first reported there).
- **Hub API rate limit**: 429 with ``Retry-After`` (seconds) and ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (unix time) — https://docs.docker.com/
  reference/api/hub/latest/#tag/rate-limiting , docker/docs PR #22916 (``throttle``).

``requests`` records every call (method, path, authenticated identity, status) so tests can
assert what happened and in which order. Secrets never appear in it or in any repr.

    with FakeHub(users={"alice": "dckr_pat_x"}) as hub:
        hub.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Literal

from cloudship.testing.registry import http_server_on, loopback_listener

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_REPO_PATH = re.compile(r"^/v2/namespaces/([^/]+)/repositories(?:/([^/]+))?/?$")

#: the documented lifetime of a Hub API access token
ACCESS_TTL = 600.0
#: PAT permission levels, weakest first (docs: security/access-tokens/reference)
PAT_LEVELS = ("repo:public_read", "repo:read", "repo:write", "repo:admin")
PatLevel = Literal["repo:public_read", "repo:read", "repo:write", "repo:admin"]
Plan = Literal["personal", "pro", "team", "business"]
#: private repositories included per plan (docs: docker-hub/usage); None = unlimited
PRIVATE_REPOSITORIES: dict[str, int | None] = {
    "personal": 1,
    "pro": None,
    "team": None,
    "business": None,
}
#: the Hub's UI text for the private-repository limit (docker/hub-feedback#1249, #1313)
NO_MORE_PRIVATE = "No more private repositories available"
#: what users report a Read & Write PAT gets from repository-management calls (e.g.
#: gitlab.com/psyb0t/reusable-github-workflows v0.35.2 notes); the Hub does not document it
INSUFFICIENT_SCOPE = "access denied: insufficient scope"


@dataclass(frozen=True)
class PersonalAccessToken:
    """A PAT of ``user`` with one permission level (``repo:admin`` = Read, Write, Delete)."""

    user: str
    secret: str = field(repr=False)
    level: PatLevel = "repo:admin"


@dataclass(frozen=True)
class OrganizationAccessToken:
    """An OAT: signs in with the organisation's name; ``resources`` are
    ``(type, path glob, scopes)``, e.g. ``("TYPE_REPO", "team/*", {"scope-image-pull"})``."""

    org: str
    secret: str = field(repr=False)
    resources: tuple[tuple[str, str, frozenset[str]], ...] = ()

    def scopes_for(self, repository: str) -> set[str]:
        found: set[str] = set()
        for kind, path, scopes in self.resources:
            namespace = repository.split("/", 1)[0]
            if (kind == "TYPE_REPO" and fnmatch.fnmatchcase(repository, path)) or (
                kind == "TYPE_ORG" and path == namespace
            ):
                found |= set(scopes)
        return found


HubToken = PersonalAccessToken | OrganizationAccessToken


def oat(
    org: str, secret: str, *resources: tuple[str, str, Iterable[str]]
) -> OrganizationAccessToken:
    """Shorthand: ``oat("team", "dckr_oat_x", ("TYPE_REPO", "team/*", ["scope-image-push"]))``."""
    return OrganizationAccessToken(
        org, secret, tuple((kind, path, frozenset(scopes)) for kind, path, scopes in resources)
    )


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
class _Session:
    token: HubToken
    expires: float


@dataclass
class _State:
    tokens: list[HubToken]
    orgs: dict[str, set[str]]
    plans: dict[str, str]
    clock: Callable[[], float]
    access_ttl: float
    sessions: dict[str, _Session] = field(default_factory=dict)  # access token → session
    repositories: dict[tuple[str, str], Repository] = field(default_factory=dict)
    requests: list[HubCall] = field(default_factory=list)
    throttled: int = 0
    retry_after: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeHub:
    """``users`` are username → PAT secret (``repo:admin``: what cloudship needs); ``tokens``
    adds PATs of other levels and OATs. ``orgs`` maps an organisation to its members;
    ``plans`` a namespace to its plan (users default to ``personal``, organisations to
    ``team``)."""

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        tokens: Iterable[HubToken] = (),
        orgs: Mapping[str, Collection[str]] | None = None,
        plans: Mapping[str, Plan] | None = None,
        access_ttl: float = ACCESS_TTL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._offset = 0.0
        base = clock or time.monotonic
        every: list[HubToken] = [PersonalAccessToken(u, s) for u, s in (users or {}).items()]
        self.state = _State(
            tokens=every + list(tokens),
            orgs={k: set(v) for k, v in (orgs or {}).items()},
            plans=dict(plans or {}),
            clock=lambda: base() + self._offset,
            access_ttl=access_ttl,
        )
        # The port is the fake's from here on (no race with another process for it).
        self._server = http_server_on(loopback_listener(), _handler(self.state))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __repr__(self) -> str:
        return f"FakeHub({self.url})"

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

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (access tokens expire on it)."""
        with self.state.lock:
            self._offset += seconds

    def throttle(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests with the Hub API's 429 (module docstring)."""
        with self.state.lock:
            self.state.throttled, self.state.retry_after = count, retry_after

    def revoke(self, secret: str) -> None:
        """Delete a token: it no longer signs in, and its access tokens stop working."""
        with self.state.lock:
            self.state.tokens = [t for t in self.state.tokens if t.secret != secret]
            self.state.sessions = {
                k: v for k, v in self.state.sessions.items() if v.token.secret != secret
            }

    def registry_logins(self) -> dict[str, list[str]]:
        """Identifier → secrets, for the registry's token service (``TokenService.configure``)."""
        logins: dict[str, list[str]] = {}
        for token in self.state.tokens:
            identity = token.user if isinstance(token, PersonalAccessToken) else token.org
            logins.setdefault(identity, []).append(token.secret)
        return logins

    def registry_grants(self) -> dict[str, list[tuple[str, set[str]]]]:
        """What each token may do at the registry, keyed by secret: a PAT pulls where its
        account is a member (``repo:read`` and up) and pushes there with ``repo:write`` and up;
        an OAT does what its resources' ``scope-image-pull``/``-push`` say."""
        grants: dict[str, list[tuple[str, set[str]]]] = {}
        for token in self.state.tokens:
            rules: list[tuple[str, set[str]]] = []
            if isinstance(token, PersonalAccessToken):
                level = PAT_LEVELS.index(token.level)
                actions = {"pull"} if level >= 1 else set()
                if level >= 2:
                    actions.add("push")
                namespaces = [token.user] + [
                    org for org, members in self.state.orgs.items() if token.user in members
                ]
                rules = [(f"{ns}/*", actions) for ns in namespaces if actions]
            else:
                for kind, path, scopes in token.resources:
                    actions = {a for a in ("pull", "push") if f"scope-image-{a}" in scopes}
                    glob = path if kind == "TYPE_REPO" else f"{path}/*"
                    if actions:
                        rules.append((glob, actions))
            grants[token.secret] = rules
        return grants

    @property
    def repositories(self) -> dict[tuple[str, str], Repository]:
        return dict(self.state.repositories)

    @property
    def requests(self) -> list[HubCall]:
        return list(self.state.requests)


def _error(message: str, **errinfo: Any) -> dict[str, Any]:
    return {"message": message, "errinfo": errinfo}


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
            with state.lock:
                session = self._session()
                who = _identity(session.token) if session else None
                if state.throttled > 0:
                    state.throttled -= 1
                    reset = int(time.time()) + state.retry_after
                    headers = {
                        "Retry-After": str(state.retry_after),
                        "X-RateLimit-Limit": "180",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(reset),
                    }
                    state.requests.append(HubCall(method, self.path, who, 429))
                    self._reply(429, _error("Too Many Requests"), headers)
                    return
                status, body = self._route(method, raw, session)
                state.requests.append(HubCall(method, self.path, who, status))
            self._reply(status, body, {})

        def _session(self) -> _Session | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                return None
            session = state.sessions.get(header.removeprefix("Bearer "))
            if session is None or state.clock() >= session.expires:
                return None
            return session

        def _route(
            self, method: str, raw: bytes, session: _Session | None
        ) -> tuple[int, dict[str, Any]]:
            if method == "POST" and self.path == "/v2/auth/token":
                return self._sign_in(raw)
            match = _REPO_PATH.match(self.path)
            if match is None:
                return 404, _error("not found")
            if session is None:
                # no token, a wrong one, or one older than its 10 minutes
                return 401, _error("Unauthorized", api_call_docs_url=_DOCS_AUTH)
            namespace, name = match[1], match[2]
            if method == "GET" and name:
                repo = state.repositories.get((namespace, name))
                if repo is None or (repo.is_private and not _can_read(state, session.token, repo)):
                    return 404, _error("object not found")
                return 200, repo.body()
            if method == "POST" and not name:
                return self._create(namespace, json.loads(raw or b"{}"), session.token)
            return 405, _error("method not allowed")

        def _sign_in(self, raw: bytes) -> tuple[int, dict[str, Any]]:
            body = json.loads(raw or b"{}")
            identifier, secret = body.get("identifier"), body.get("secret")
            for token in state.tokens:
                if _identity(token) == identifier and token.secret == secret:
                    access = secrets.token_urlsafe(24)
                    state.sessions[access] = _Session(token, state.clock() + state.access_ttl)
                    return 200, {"access_token": access}
            return 401, _error("incorrect authentication credentials")

        def _create(
            self, namespace: str, body: dict[str, Any], token: HubToken
        ) -> tuple[int, dict[str, Any]]:
            name = body.get("name")
            if not _may_manage(state, token, namespace, f"{namespace}/{name}"):
                return 403, _error(INSUFFICIENT_SCOPE)
            for required in ("name", "namespace", "is_private"):
                if required not in body:
                    return 400, _error(f"missing field: {required}")
            if not isinstance(name, str) or not 2 <= len(name) <= 255 or not _NAME.match(name):
                return 400, _error(f"invalid repository name {name!r}", field="name")
            if body["namespace"] != namespace:
                return 400, _error("namespace in body does not match the path")
            if (namespace, name) in state.repositories:
                return 409, _error("repository already exists")
            description = str(body.get("description", ""))
            if len(description) > 100:
                return 400, _error("description is limited to 100 characters")
            if body["is_private"]:
                plan = state.plans.get(namespace, "team" if namespace in state.orgs else "personal")
                allowed = PRIVATE_REPOSITORIES[plan]
                used = sum(
                    1
                    for (ns, _), r in state.repositories.items()
                    if ns == namespace and r.is_private
                )
                if allowed is not None and used >= allowed:
                    return 400, _error(NO_MORE_PRIVATE, plan=plan, private_repositories=allowed)
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


_DOCS_AUTH = "https://docs.docker.com/reference/api/hub/latest/#tag/authentication-api"


def _identity(token: HubToken) -> str:
    return token.user if isinstance(token, PersonalAccessToken) else token.org


def _member(state: _State, user: str, namespace: str) -> bool:
    return namespace == user or user in state.orgs.get(namespace, set())


def _can_read(state: _State, token: HubToken, repo: Repository) -> bool:
    full = f"{repo.namespace}/{repo.name}"
    if isinstance(token, OrganizationAccessToken):
        return bool(token.scopes_for(full) & {"scope-image-pull", "scope-image-push"})
    return PAT_LEVELS.index(token.level) >= 1 and _member(state, token.user, repo.namespace)


def _may_manage(state: _State, token: HubToken, namespace: str, repository: str) -> bool:
    if isinstance(token, OrganizationAccessToken):
        return token.org == namespace and "scope-repository-create" in token.scopes_for(repository)
    return token.level == "repo:admin" and _member(state, token.user, namespace)
