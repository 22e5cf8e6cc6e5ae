"""Docker Hub as a cloudship Registry: PAT login in memory, private repositories by default."""

from __future__ import annotations

from typing import ClassVar

from cloudship.distribution import DistributionClient
from cloudship.errors import AuthError
from cloudship.registry import Registry, RegistryAuth
from cloudship_dockerhub.hub import HubClient
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
        self._hub = HubClient(settings.hub_api, settings.username, settings.token)
        self._api = DistributionClient(
            settings.registry_api, self._auth, insecure=settings.insecure
        )

    @property
    def address(self) -> str:
        return self._settings.registry

    def repository(self, name: str, *, create: bool = True) -> str:
        if create and self._hub.repository(self.namespace, name) is None:
            self._hub.create_repository(self.namespace, name, private=self._settings.private)
        return f"{self.address}/{self.namespace}/{name}"

    def credentials(self) -> RegistryAuth:
        # Pulls use them too: a private repository is never pulled anonymously.
        return self._auth

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self._api.manifest_digest(repository, reference)
