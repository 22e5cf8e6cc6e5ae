"""A small client for the OCI distribution HTTP API: the parts cloudship needs.

Registries differ in how they authenticate (none, HTTP Basic, or a Bearer token fetched from the
realm named in a ``WWW-Authenticate`` challenge, as Docker Hub, ACR and token-auth registries
do); this client answers whichever challenge it gets, with the credentials it was given, in
memory. It is shared by every registry provider.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudship.errors import AuthError, RegistryError, ShipTimeoutError
from cloudship.images import is_loopback_host
from cloudship.ratelimit import with_rate_limit_retries
from cloudship.registry import RegistryAuth

if TYPE_CHECKING:
    import httpx

# Without the OCI types, distribution v3 answers MANIFEST_UNKNOWN for OCI manifests, and for a
# manifest list fetched by tag it substitutes a child's digest (shared/CLOUD-FACTS.md §8).
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
#: answers worth another attempt of an idempotent call (GET/HEAD; 429 is ratelimit.py's)
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
TRANSIENT_ATTEMPTS = 3


def _with_transient_retries(send: Callable[[], httpx.Response]) -> httpx.Response:
    """``send`` again after a 5xx or a cut connection, with bounded exponential back-off
    (0.2 s, 0.4 s): every call this client makes is a GET or HEAD, so repeating is safe.
    A timeout is not retried: it already cost the whole per-request timeout."""
    import httpx
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        retry_if_result,
        stop_after_attempt,
        wait_exponential,
    )

    retrying = Retrying(
        retry=retry_if_result(lambda r: r.status_code in _RETRY_STATUSES)
        | retry_if_exception_type((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
        stop=stop_after_attempt(TRANSIENT_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    response: httpx.Response = retrying(send)
    return response


@functools.cache
def _sha256(body: bytes) -> str:
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def system_ssl_context() -> ssl.SSLContext:
    """The system's trust store (honours ``SSL_CERT_FILE``), built once: an httpx client with
    ``verify=True`` builds a fresh context, ~20 ms, per client."""
    return ssl.create_default_context()


@functools.cache
def _ca_bundle_context(path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=path)


def ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext | bool:
    """What httpx wants for ``verify``: a context (built once per CA bundle path), or False."""
    if verify is True:
        return system_ssl_context()
    if isinstance(verify, str):
        return _ca_bundle_context(verify)
    return verify


def _basic_header(auth: RegistryAuth) -> str:
    pair = f"{auth.username}:{auth.password.get_secret_value()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def registry_base_url(address: str, *, insecure: bool = False) -> str:
    """``http://`` for loopback (or an explicitly insecure registry), else ``https://``."""
    scheme = "http" if insecure or is_loopback_host(address) else "https"
    return f"{scheme}://{address}"


class DistributionClient:
    """Talks to one registry's ``/v2/`` API with optional credentials."""

    def __init__(
        self,
        address: str,
        auth: RegistryAuth | None = None,
        *,
        insecure: bool = False,
        timeout: float = 10.0,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        self.address = address
        self.base_url = registry_base_url(address, insecure=insecure)
        self._auth = auth
        self._timeout = timeout
        self._verify = verify
        self._bearer: dict[str, str] = {}  # scope → token, memory only

    def _client(self) -> httpx.Client:
        import httpx

        return httpx.Client(
            timeout=self._timeout, verify=ssl_context(self._verify), follow_redirects=True
        )

    def ping(self) -> None:
        """Check that the registry answers and accepts the credentials; raise otherwise."""
        self._request("GET", "/v2/", scope=None)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """``HEAD /v2/<repo>/manifests/<ref>``: the digest, or None when the registry lacks it."""
        response = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
            allow_missing=True,
        )
        if response is None:
            return None
        digest: str | None = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        if reference.startswith("sha256:"):
            return reference  # older registries omit the header; the request was by digest
        return None

    def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        """``GET /v2/<repo>/manifests/<ref>``: (media type, the manifest's bytes)."""
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        assert response is not None
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return media_type, response.content

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        """``PUT /v2/<repo>/manifests/<ref>``; the digest the registry stored."""
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            content=body,
        )
        assert response is not None
        return response.headers.get("Docker-Content-Digest") or _sha256(body)

    def write_index(self, repository: str, tag: str, platforms: dict[str, str]) -> str:
        """Put under ``tag`` an index of the manifests ``platforms`` names (digest →
        ``os/arch[/variant]``): a Docker manifest list over Docker manifests (what dockerd
        pushes), else an OCI image index — the pairing ``docker buildx`` writes.
        https://distribution.github.io/distribution/spec/manifest-v2-2/#manifest-list and
        https://github.com/opencontainers/image-spec/blob/main/image-index.md"""
        entries = []
        docker_types = True
        for digest, platform in sorted(platforms.items(), key=lambda item: item[1]):
            media_type, body = self.manifest(repository, digest)
            docker_types &= media_type == DOCKER_MANIFEST
            os_name, arch, *variant = platform.split("/")
            described: dict[str, object] = {"architecture": arch, "os": os_name}
            if variant:
                described["variant"] = variant[0]
            entries.append(
                {
                    "mediaType": media_type,
                    "size": len(body),
                    "digest": digest,
                    "platform": described,
                }
            )
        index_type = DOCKER_MANIFEST_LIST if docker_types else OCI_INDEX
        index = {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}
        return self.put_manifest(repository, tag, index_type, json.dumps(index, indent=3).encode())

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str | None,
        headers: dict[str, str] | None = None,
        allow_missing: bool = False,
        content: bytes | None = None,
    ) -> httpx.Response | None:
        import httpx

        url = self.base_url + path
        headers = dict(headers or {})
        try:
            with self._client() as client:
                if scope in self._bearer:
                    headers["Authorization"] = f"Bearer {self._bearer[scope]}"

                def send() -> httpx.Response:
                    return with_rate_limit_retries(
                        lambda: _with_transient_retries(
                            lambda: client.request(method, url, headers=headers, content=content)
                        ),
                        what=f"registry {self.address}",
                    )

                response = send()
                if response.status_code == 401:
                    headers["Authorization"] = self._answer_challenge(client, response, scope)
                    response = send()
        except httpx.TimeoutException as exc:
            raise ShipTimeoutError(
                f"registry {self.address} did not answer {method} {path} within "
                f"{self._timeout:.0f} s ({type(exc).__name__})",
                fix="check that the registry is running and not overloaded",
            ) from exc
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {self.address} is not reachable ({type(exc).__name__}: {exc})",
                fix="check the registry address and that the registry is running",
            ) from exc
        if response.status_code == 404 and allow_missing:
            return None
        if response.status_code in (401, 403):
            raise AuthError(
                f"registry {self.address} refused the credentials for user "
                f"{self._auth.username if self._auth else '(anonymous)'!r} "
                f"(HTTP {response.status_code})",
                fix="check the registry username and password/token",
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"registry {self.address} answered HTTP {response.status_code} to {method} {path}"
            )
        return response

    def _answer_challenge(
        self, client: httpx.Client, response: httpx.Response, scope: str | None
    ) -> str:
        import httpx

        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if self._auth is None and scheme != "bearer":
            raise AuthError(
                f"registry {self.address} requires credentials and none were given",
                fix="configure the registry username and password (or token)",
            )
        if scheme == "basic":
            assert self._auth is not None
            return _basic_header(self._auth)
        if scheme != "bearer":
            raise RegistryError(
                f"registry {self.address} asked for unsupported auth scheme {scheme!r}"
            )
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(f"registry {self.address} sent a Bearer challenge with no realm")
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        basic = (
            httpx.BasicAuth(self._auth.username, self._auth.password.get_secret_value())
            if self._auth
            else None
        )
        token_response = with_rate_limit_retries(
            lambda: client.get(realm, params=query, auth=basic), what=f"token service {realm}"
        )
        if token_response.status_code in (401, 403):
            raise AuthError(
                f"token service {realm} refused the credentials for registry {self.address}",
                fix="check the registry username and password/token",
            )
        if token_response.status_code >= 400:
            raise RegistryError(f"token service {realm} answered HTTP {token_response.status_code}")
        body = token_response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service {realm} returned no token")
        if scope:
            self._bearer[scope] = token
        return f"Bearer {token}"
