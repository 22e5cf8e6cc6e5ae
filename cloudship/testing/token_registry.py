"""A real distribution registry with token auth, and the token service it trusts, for tests.

The registry (``docker-registry``/``registry:2``, started like ``ThrowawayRegistry``) is
configured with ``auth.token``: it answers ``401`` with a ``Bearer realm=…`` challenge and only
accepts JWTs signed by this module's key (ES256, ``x5c`` header holding the self-signed
certificate that is also the registry's ``rootcertbundle``; shared/CLOUD-FACTS.md §6.3).

The token service speaks both dialects a token registry meets in the wild:

- the distribution token spec, Docker Hub's ``auth.docker.io`` shape:
  ``GET /token?service=&scope=`` with HTTP Basic auth → ``{"token", "access_token", …}``;
- Azure Container Registry's AAD flow (Azure/acr docs/AAD-OAuth.md):
  ``POST /oauth2/exchange`` (``grant_type=access_token``, ``service``, ``access_token``) →
  ``{"refresh_token"}``; ``POST /oauth2/token`` (``grant_type=refresh_token``) →
  ``{"access_token"}``; and ``GET /oauth2/token`` with Basic auth whose user is the null GUID
  and whose password is that refresh token — what ``docker login``/``docker push`` does.

It accepts exactly the configured Basic users and AAD access tokens, and refresh tokens it
issued itself that have not expired; everything else gets ``401``.

What a login may do is checked per repository and per action, the way Docker Hub's and the
distribution token spec's token servers do: a token is issued for the *granted subset* of the
requested scope, and the registry then refuses what the token lacks (``denied: requested
access to the resource is denied`` on a push without ``push``)
(https://distribution.github.io/distribution/spec/auth/token/ — "the token server should
return the subset of access the client is granted"). Grants are general — a list of
``(repository glob, actions)`` per login — so Docker Hub PAT permissions, organisation access
tokens and ACR scope-map tokens are all expressed the same way::

    TokenService(..., users={"alice": ["dckr_pat_rw", "dckr_pat_ro"]},
                 grants={"alice": [("alice/*", {"pull", "push"})],   # every secret of alice
                         "dckr_pat_ro": [("alice/*", {"pull"})]})    # this one secret only

A grant keyed by a secret wins over one keyed by its user. ``grants=None`` grants every
action on every repository to any valid login (a registry-wide admin login, as ACR's admin
user); ``hub_grants(users)`` gives Docker Hub's rule — each user its own namespace.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import json
import threading
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudship.testing.registry import ThrowawayRegistry, http_server_on, loopback_listener

#: the user name ACR expects with a refresh token as password
NULL_GUID = "00000000-0000-0000-0000-000000000000"

#: ``(repository glob, actions)``: e.g. ``("alice/*", {"pull", "push"})``
Grant = tuple[str, Collection[str]]
#: login (a user name, or one secret of it) → what it may do
Grants = Mapping[str, Sequence[Grant]]


def secret_id(secret: str) -> str:
    """A short, non-secret name for one secret, as ``TokenService.issued`` records it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Issued:
    """One token handed out: to whom, with which secret (``secret_id``), granting what."""

    subject: str
    secret: str
    access: list[dict[str, Any]]


def hub_grants(users: Iterable[str]) -> dict[str, list[Grant]]:
    """Docker Hub's default: a user may pull and push in its own namespace only (a push to
    someone else's namespace is ``denied``)."""
    return {user: [(f"{user}/*", {"pull", "push"})] for user in users}


_TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""


class _SigningKey:
    """An ES256 key and the self-signed certificate the registry trusts it by."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudship test token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self._x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        import jwt

        return jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": [self._x5c]})

    def verify(self, token: str, *, audience: str, issuer: str) -> dict[str, Any] | None:
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["ES256"],
                audience=audience,
                issuer=issuer,
            )
        except jwt.PyJWTError:
            return None
        return claims


class TokenService:
    """The HTTP token service (see the module docstring). Thread-safe; memory only."""

    def __init__(
        self,
        *,
        service: str,
        issuer: str,
        users: Mapping[str, str | Collection[str]] | None = None,
        aad_tokens: Iterable[str] = (),
        refresh_ttl: dt.timedelta = dt.timedelta(hours=3),
        access_ttl: dt.timedelta = dt.timedelta(minutes=5),
        grants: Grants | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self._lock = threading.Lock()
        self.users: dict[str, set[str]] = {}
        self.grants: dict[str, list[Grant]] | None = None
        self.configure(users or {}, grants)
        self.aad_tokens = set(aad_tokens)
        self.refresh_ttl = refresh_ttl
        self.access_ttl = access_ttl
        self.key = _SigningKey()
        self._listener = loopback_listener()
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        #: every request line served (method, path, response status), for tests to assert on
        self.requests: list[tuple[str, str, int]] = []
        #: every token issued (who, which secret by ``secret_id``, what access), in order
        self.issued: list[Issued] = []
        self._server: ThreadingHTTPServer | None = None

    def configure(
        self, users: Mapping[str, str | Collection[str]], grants: Grants | None = None
    ) -> None:
        """Replace the accepted logins and their grants (a running service picks them up)."""
        with self._lock:
            self.users = {
                user: {secrets} if isinstance(secrets, str) else set(secrets)
                for user, secrets in users.items()
            }
            self.grants = (
                None if grants is None else {key: list(value) for key, value in grants.items()}
            )

    def granted(self, login: str, secret: str | None, scope: str) -> list[str]:
        """The actions of ``scope`` (``repository:name:a,b``) that ``login`` may do."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = [a for a in actions.split(",") if a]
        with self._lock:
            if self.grants is None:
                return wanted
            rules = self.grants.get(secret or "") if secret else None
            if rules is None:
                rules = self.grants.get(login, [])
        if kind != "repository":
            return []
        allowed: set[str] = set()
        for pattern, granted in rules:
            if fnmatch.fnmatchcase(name, pattern):
                allowed |= set(granted)
        return [a for a in wanted if a in allowed or "*" in allowed]

    # -- what the endpoints decide -----------------------------------------------------

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``POST /oauth2/exchange``: an AAD access token → an ACR-style refresh token."""
        if form.get("grant_type") not in ("access_token", "access_token_refresh_token"):
            return 400, _error("UNSUPPORTED", "grant_type must be access_token")
        if form.get("service") != self.service:
            return 400, _error("UNSUPPORTED", f"service must be {self.service}")
        if form.get("access_token") not in self.aad_tokens:
            return 401, _error("UNAUTHORIZED", "the access token is not valid")
        now = dt.datetime.now(dt.UTC)
        refresh = self.key.sign(
            {
                "iss": self.issuer,
                "aud": self.service,
                "sub": "aad-principal",
                "grant_type": "refresh_token",
                "jti": uuid.uuid4().hex,
                "iat": now,
                "nbf": now - dt.timedelta(seconds=5),
                "exp": now + self.refresh_ttl,
            }
        )
        return 200, {"refresh_token": refresh}

    def token_for_refresh(self, refresh: str, scopes: list[str]) -> tuple[int, dict[str, Any]]:
        """``POST /oauth2/token``: an issued refresh token → an access token for ``scopes``."""
        claims = self.key.verify(refresh, audience=self.service, issuer=self.issuer)
        if claims is None or claims.get("grant_type") != "refresh_token":
            return 401, _error("UNAUTHORIZED", "the refresh token is not valid")
        return 200, self._access_token(str(claims["sub"]), None, scopes)

    def token_for_basic(
        self, user: str | None, password: str | None, scopes: list[str]
    ) -> tuple[int, dict[str, Any]]:
        """``GET /token`` or ``GET /oauth2/token`` with Basic auth."""
        if user is None or password is None:
            return 401, _error("UNAUTHORIZED", "authentication required")
        if user == NULL_GUID:
            return self.token_for_refresh(password, scopes)
        with self._lock:
            known = password in self.users.get(user, set())
        if not known:
            return 401, _error("UNAUTHORIZED", "incorrect username or password")
        return 200, self._access_token(user, password, scopes)

    def _access_token(self, subject: str, secret: str | None, scopes: list[str]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        access = [
            _access_entry(scope, self.granted(subject, secret, scope))
            for scope in scopes
            if scope.count(":") >= 2
        ]
        self.issued.append(Issued(subject, secret_id(secret) if secret else "", access))
        token = self.key.sign(
            {
                "iss": self.issuer,
                "aud": self.service,
                "sub": subject,
                "jti": uuid.uuid4().hex,
                "iat": now,
                "nbf": now - dt.timedelta(seconds=5),
                "exp": now + self.access_ttl,
                "access": access,
            }
        )
        return {
            "token": token,
            "access_token": token,
            "expires_in": int(self.access_ttl.total_seconds()),
            "issued_at": now.isoformat(),
        }

    # -- serving -------------------------------------------------------------------------

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waits ~40 ms on Nagle + delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the default prints every request (with its query) to stderr."""

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path not in ("/token", "/oauth2/token"):
                    self._send(404, _error("NOT_FOUND", "no such endpoint"))
                    return
                query = parse_qs(url.query)
                user, password = _basic(self.headers.get("Authorization"))
                self._send(*service.token_for_basic(user, password, query.get("scope", [])))

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                flat = {key: values[0] for key, values in form.items()}
                if url.path == "/oauth2/exchange":
                    self._send(*service.exchange(flat))
                elif url.path == "/oauth2/token" and flat.get("grant_type") == "refresh_token":
                    scopes = form.get("scope", [])
                    if flat.get("service") != service.service:
                        self._send(400, _error("UNSUPPORTED", "unknown service"))
                    else:
                        self._send(
                            *service.token_for_refresh(flat.get("refresh_token", ""), scopes)
                        )
                elif url.path == "/oauth2/token":
                    self._send(400, _error("UNSUPPORTED", "grant_type must be refresh_token"))
                else:
                    self._send(404, _error("NOT_FOUND", "no such endpoint"))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                service.requests.append((self.command, urlsplit(self.path).path, status))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def _access_entry(scope: str, actions: list[str]) -> dict[str, Any]:
    kind, rest = scope.split(":", 1)
    name, _, _ = rest.rpartition(":")
    return {"type": kind, "name": name, "actions": actions}


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


class TokenRegistry(ThrowawayRegistry):
    """A throw-away registry behind a token service.

    ``realm_path="/oauth2/token"`` makes the registry's challenge look like ACR's (the default
    ``/token`` looks like Docker Hub's). ``address`` is the registry (``127.0.0.1:PORT``), which
    is also the token ``service`` name, as an ACR login server is for ACR::

        with TokenRegistry(users={"ci": "pat"}, aad_tokens={"aad-token"}) as reg:
            reg.address, reg.tokens.url
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str | Collection[str]] | None = None,
        aad_tokens: Iterable[str] = (),
        realm_path: str = "/token",
        issuer: str = "cloudship-test-token-issuer",
        refresh_ttl: dt.timedelta = dt.timedelta(hours=3),
        grants: Grants | None = None,
    ) -> None:
        super().__init__()
        self.tokens = TokenService(
            service=self.address,
            issuer=issuer,
            users=users,
            aad_tokens=aad_tokens,
            refresh_ttl=refresh_ttl,
            grants=grants,
        )
        self.realm = self.tokens.url + realm_path

    def __enter__(self) -> TokenRegistry:
        self.start()
        return self

    def _config(self, storage: str, addr: str, htpasswd: str | None) -> str:
        # Started as a binary the bundle is in our folder; in a registry:2 container the
        # folder is mounted at /auth (see ThrowawayRegistry._start_container).
        folder = str(self._folder) if storage.startswith(str(self._folder)) else "/auth"
        auth = _TOKEN_AUTH.format(
            realm=self.realm,
            service=self.tokens.service,
            issuer=self.tokens.issuer,
            bundle=f"{folder}/token-ca.pem",
        )
        return super()._config(storage, addr, None).rstrip("\n") + "\n" + auth

    def start(self) -> None:
        (Path(self._folder) / "token-ca.pem").write_bytes(self.tokens.key.cert_pem)
        self.tokens.start()
        try:
            super().start()
        except BaseException:
            self.tokens.stop()
            raise

    def stop(self) -> None:
        super().stop()
        self.tokens.stop()
