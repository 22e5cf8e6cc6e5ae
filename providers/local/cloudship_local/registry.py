"""Any Docker Registry v2 (``127.0.0.1:5000`` by default), optional HTTP Basic auth."""

from __future__ import annotations

from typing import ClassVar

from cloudship.distribution import DistributionClient
from cloudship.errors import ConfigError, RegistryError
from cloudship.events import EventSink, Notice, ignore
from cloudship.registry import Registry, RegistryAuth
from cloudship_local.embedded import EmbeddedRegistry
from cloudship_local.settings import DEFAULT_REGISTRY, LocalSettings


class V2Registry(Registry):
    """A distribution registry: repositories appear on first push, so nothing is created.

    Plain HTTP is used only for loopback addresses, or anywhere when ``insecure`` is set.
    """

    kind: ClassVar[str] = "v2"

    def __init__(self, settings: LocalSettings, embedded: EmbeddedRegistry | None = None) -> None:
        if (settings.username is None) != (settings.password is None):
            raise ConfigError(
                f"registry {settings.registry}: username and password must be given together",
                fix="set both CLOUDSHIP_LOCAL_USERNAME and CLOUDSHIP_LOCAL_PASSWORD, or neither",
            )
        self._settings = settings
        self._embedded = embedded
        self._auth = (
            RegistryAuth(
                username=settings.username,
                password=settings.password,
                server=settings.registry,
            )
            if settings.username is not None and settings.password is not None
            else None
        )
        self._client = DistributionClient(settings.registry, self._auth, insecure=settings.insecure)

    @property
    def address(self) -> str:
        return self._settings.registry

    def repository(self, name: str, *, create: bool = True) -> str:
        return f"{self.address}/{name}"

    def credentials(self) -> RegistryAuth | None:
        return self._auth

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self._client.manifest_digest(repository, reference)

    writes_indexes: ClassVar[bool] = True

    def distribution(self) -> DistributionClient:
        return self._client

    def prepare(self, on_event: EventSink = ignore) -> None:
        """Check the registry answers (and takes the credentials); start the embedded one
        when nothing answers at the default address."""
        try:
            self._client.ping()
            return
        except RegistryError:
            if not (
                self._settings.embedded
                and self.address == DEFAULT_REGISTRY
                and self._embedded is not None
            ):
                raise
        how = self._embedded.start()
        on_event(Notice(message=f"no registry answered at {self.address}: started one ({how})"))
        self._client.ping()
