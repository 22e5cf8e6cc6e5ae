"""The Docker Hub API calls cloudship needs: sign in with a token, get or create a repository.

A repository that a push creates on Docker Hub is public, so cloudship creates it through this
API first, private unless configured otherwise. What the Hub documents, and what this client
does about it:

- ``POST /v2/auth/token`` (``identifier``, ``secret``) gives an access token that "expires in
  10 minutes" (https://docs.docker.com/reference/api/hub/latest/schemas/AuthCreateTokenResponse/).
  It is renewed a minute before that, and once more when a call answers 401 anyway (a clock
  skew, a revoked session); a second 401 is reported.
- Creating a repository needs a PAT with **Read, Write, Delete** ("Read & Write" only pushes),
  or an organization access token with ``scope-repository-create``
  (https://docs.docker.com/security/access-tokens/reference/). Errors say so and quote the
  Hub's own ``message``/``detail``/``errinfo``.
- A Personal account has one private repository (https://docs.docker.com/docker-hub/usage/);
  one more is refused with its own error and fix.
- 429 answers are handled by ``cloudship.ratelimit`` (``Retry-After``, ``X-RateLimit-Reset``).

The token and the short-lived access token stay in memory; neither appears in a message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from cloudship.distribution import system_ssl_context
from cloudship.errors import AuthError, ConfigError, RegistryError
from cloudship.ratelimit import with_rate_limit_retries

if TYPE_CHECKING:
    import httpx

#: the documented lifetime of a Hub access token, and how long before it ends we renew it
ACCESS_TTL = 600.0
RENEW_MARGIN = 60.0
#: https://docs.docker.com/reference/api/hub/latest/schemas/repo_creation_request/
REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")

TOKEN_FIX = (
    "create a personal access token with 'Read, Write, Delete' permission (Read & Write can "
    "push but not create repositories), or an organization access token with "
    "scope-repository-create and image push, and set DOCKERHUB_TOKEN "
    "(https://docs.docker.com/security/access-tokens/reference/)"
)


class PrivateRepositoryLimitError(RegistryError):
    """Docker Hub refused one more private repository: the plan's limit is reached."""


def check_repository_name(namespace: str, name: str) -> None:
    """Refuse a name Docker Hub would refuse, before any call."""
    if not 2 <= len(name) <= 255 or not REPOSITORY_NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a valid Docker Hub repository name (in {namespace})",
            fix="use 2-255 lower-case letters and digits, separated by single . _ or -",
        )


def hub_says(response: httpx.Response) -> str:
    """The Hub's own words from an error answer: ``message``, ``detail`` and ``errinfo``."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text.strip()[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body[key]) for key in ("message", "detail") if body.get(key)]
    if body.get("errinfo"):
        parts.append(json.dumps(body["errinfo"], sort_keys=True))
    return "; ".join(parts)[:300]


class HubClient:
    """``identifier`` is the user name, or the organisation's name for an OAT."""

    def __init__(
        self,
        base_url: str,
        identifier: str,
        token: SecretStr,
        *,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self._identifier = identifier
        self._token = token
        self._timeout = timeout
        self._clock = clock
        self._access: SecretStr | None = None
        self._renew_at = 0.0
        #: how many times an access token was obtained (sign-ins), for tests and diagnostics
        self.sign_ins = 0

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r}, {self._identifier!r})"

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

    def _sign_in(self) -> None:
        started = self._clock()
        response = self._send(
            "POST",
            "/v2/auth/token",
            json={"identifier": self._identifier, "secret": self._token.get_secret_value()},
        )
        if response.status_code in (401, 403):
            raise AuthError(
                f"Docker Hub refused the token of {self._identifier!r}: {hub_says(response)}",
                fix="check the username (an organization access token signs in with the "
                "organisation's name) and the token; with two-factor authentication on, an "
                "account password does not work here: " + TOKEN_FIX,
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"Docker Hub sign-in answered HTTP {response.status_code}: {hub_says(response)}"
            )
        self._access = SecretStr(str(response.json()["access_token"]))
        self._renew_at = started + ACCESS_TTL - RENEW_MARGIN
        self.sign_ins += 1

    def _authorized(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with a fresh access token; on a 401, sign in again once and resend."""
        for attempt in (1, 2):
            if self._access is None or self._clock() >= self._renew_at:
                self._sign_in()
            assert self._access is not None
            headers = {"Authorization": f"Bearer {self._access.get_secret_value()}"}
            response = self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401 or attempt == 2:
                return response
            self._access = None
        raise AssertionError("unreachable")

    def repository(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._authorized("GET", f"/v2/namespaces/{namespace}/repositories/{name}")
        if response.status_code == 404:
            return None
        self._check(response, f"reading repository {namespace}/{name}")
        body: dict[str, Any] = response.json()
        return body

    def create_repository(self, namespace: str, name: str, *, private: bool) -> dict[str, Any]:
        check_repository_name(namespace, name)
        response = self._authorized(
            "POST",
            f"/v2/namespaces/{namespace}/repositories",
            json={
                "namespace": namespace,
                "name": name,
                "is_private": private,
                "description": "shipped with cloudship",
            },
        )
        what = f"creating {'private' if private else 'public'} repository {namespace}/{name}"
        if response.status_code == 400 and private:
            # The name was checked above, so a 400 on a private create is the plan's limit
            # (the Hub does not document this answer; its UI says "No more private
            # repositories available").
            raise PrivateRepositoryLimitError(
                f"Docker Hub refused {what}: {hub_says(response)}. A Personal account has one "
                "private repository (https://docs.docker.com/docker-hub/usage/)",
                fix="ship with private=False (a public repository), delete or make public an "
                "existing private repository, or upgrade the plan of "
                f"{namespace!r} (Pro, Team and Business have no limit)",
            )
        if response.status_code == 400:
            raise ConfigError(f"Docker Hub refused {what}: {hub_says(response)}")
        self._check(response, what)
        body: dict[str, Any] = response.json()
        return body

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise AuthError(
                f"Docker Hub refused {what} for {self._identifier!r} "
                f"(HTTP {response.status_code}): {hub_says(response)}",
                fix="the token needs that namespace (your user, or an organisation you are a "
                "member of) and " + TOKEN_FIX,
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"Docker Hub API: {what} answered HTTP {response.status_code}: {hub_says(response)}"
            )
