"""Docker Hub as a cloudship Registry: token login in memory, private repositories by default.

Push credentials are the account's token; runtimes pull with the optional read-only
``pull_token`` when one is set, so a pull secret stored in a cloud (ECS, Container Apps) can
never push.
"""

from __future__ import annotations

from typing import ClassVar

from cloudship.distribution import DistributionClient
from cloudship.errors import AuthError
from cloudship.registry import Registry, RegistryAuth
from cloudship_dockerhub.hub import HubClient, check_repository_name
from cloudship_dockerhub.settings import DockerHubSettings


class DockerHubRegistry(Registry):
    """Repositories are ``<registry>/<namespace>/<name>``; created private before first push."""

    kind: ClassVar[str] = "dockerhub"

    def __init__(self, settings: DockerHubSettings) -> None:
        if settings.username is None or settings.token is None:
            raise AuthError(
                "Docker Hub needs a username and a personal access token",
                fix="set DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or [dockerhub] username/token)",
            )
        self._settings = settings
        self._username = settings.username
        self.namespace = settings.namespace or settings.username
        self._auth = RegistryAuth(
            username=settings.username, password=settings.token, server=settings.registry
        )
        self._pull_auth = (
            RegistryAuth(
                username=settings.pull_username or settings.username,
                password=settings.pull_token,
                server=settings.registry,
            )
            if settings.pull_token is not None
            else self._auth
        )
        self.hub = HubClient(settings.hub_api, settings.username, settings.token)
        self._api = DistributionClient(
            settings.registry_api, self._auth, insecure=settings.insecure
        )

    def __repr__(self) -> str:
        return f"DockerHubRegistry({self.address!r}, namespace={self.namespace!r})"

    @property
    def address(self) -> str:
        return self._settings.registry

    def repository(self, name: str, *, create: bool = True) -> str:
        check_repository_name(self.namespace, name)  # before any call, so nothing half-made
        if create and self.hub.repository(self.namespace, name) is None:
            self.hub.create_repository(self.namespace, name, private=self._settings.private)
        return f"{self.address}/{self.namespace}/{name}"

    def credentials(self) -> RegistryAuth:
        return self._auth

    def pull_credentials(self) -> RegistryAuth:
        # A private repository is never pulled anonymously: without a pull_token, the push
        # token pulls too.
        return self._pull_auth

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self._api.manifest_digest(repository, reference)

    writes_indexes: ClassVar[bool] = True

    def distribution(self) -> DistributionClient:
        return self._api
