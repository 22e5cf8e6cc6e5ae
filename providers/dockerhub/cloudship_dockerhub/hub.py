"""The Docker Hub API calls cloudship needs: sign in with a PAT, get or create a repository.

A repository that a push creates on Docker Hub is public, so cloudship creates it through this
API first, private unless configured otherwise. 429 answers are retried after their
``Retry-After`` (``cloudship.ratelimit``). The PAT and the short-lived API token stay in
memory; neither appears in a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from cloudship.distribution import system_ssl_context
from cloudship.errors import AuthError, ConfigError, RegistryError
from cloudship.ratelimit import with_rate_limit_retries

if TYPE_CHECKING:
    import httpx


class HubClient:
    def __init__(self, base_url: str, username: str, token: SecretStr, *, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._token = token
        self._timeout = timeout
        self._access: str | None = None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        url = self.base_url + path
        try:
            with httpx.Client(timeout=self._timeout, verify=system_ssl_context()) as client:
                return with_rate_limit_retries(
                    lambda: client.request(method, url, **kwargs), what=f"Docker Hub API {path}"
                )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"the Docker Hub API at {self.base_url} is not reachable ({type(exc).__name__})",
                fix="check the network, or the hub_api setting",
            ) from exc

    def _bearer(self) -> dict[str, str]:
        if self._access is None:
            response = self._send(
                "POST",
                "/v2/auth/token",
                json={"identifier": self._username, "secret": self._token.get_secret_value()},
            )
            if response.status_code in (401, 403):
                raise AuthError(
                    f"Docker Hub refused the token of user {self._username!r}",
                    fix="create a personal access token with read/write scope and set "
                    "DOCKERHUB_TOKEN",
                )
            if response.status_code >= 400:
                raise RegistryError(f"Docker Hub sign-in answered HTTP {response.status_code}")
            self._access = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self._access}"}

    def repository(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._send(
            "GET", f"/v2/namespaces/{namespace}/repositories/{name}", headers=self._bearer()
        )
        if response.status_code == 404:
            return None
        self._check(response, f"reading repository {namespace}/{name}")
        body: dict[str, Any] = response.json()
        return body

    def create_repository(self, namespace: str, name: str, *, private: bool) -> dict[str, Any]:
        response = self._send(
            "POST",
            f"/v2/namespaces/{namespace}/repositories",
            headers=self._bearer(),
            json={
                "namespace": namespace,
                "name": name,
                "is_private": private,
                "description": "shipped with cloudship",
            },
        )
        if response.status_code == 400:
            raise ConfigError(
                f"Docker Hub refused repository name {namespace}/{name!r}: {response.text[:200]}",
                fix="use 2-255 lower-case letters, digits and . _ - separators",
            )
        self._check(response, f"creating repository {namespace}/{name}")
        body: dict[str, Any] = response.json()
        return body

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise AuthError(
                f"Docker Hub refused {what} for user {self._username!r} "
                f"(HTTP {response.status_code})",
                fix="check that the token has write access to that namespace",
            )
        if response.status_code >= 400:
            raise RegistryError(f"Docker Hub API: {what} answered HTTP {response.status_code}")
