"""The Registry interface and the in-memory credentials a push or a pull uses."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from cloudship.events import EventSink, ignore

if TYPE_CHECKING:
    from cloudship.distribution import DistributionClient


class RegistryAuth(BaseModel):
    """Registry credentials, held in memory only; the password never appears in a repr."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    username: str
    password: SecretStr
    server: str
    expires_at: datetime | None = None

    def stale(self, margin: timedelta = timedelta(minutes=5)) -> bool:
        """True when the credentials expire within ``margin`` (refresh before use)."""
        return self.expires_at is not None and datetime.now(UTC) + margin >= self.expires_at

    def fingerprint(self) -> str:
        """A non-secret digest of server, username and password, for "did they change?".

        Runtimes that store pull credentials (a Secrets Manager secret, a Container Apps
        registry secret) keep it next to what they compare for "unchanged", so a rotated token
        is rewritten even when nothing else moved. PBKDF2 with the server and user as salt
        and a truncated result: stable across processes, yet a stored value is no shortcut to
        guessing a weak password. ``expires_at`` is left out on purpose.
        """
        salt = f"cloudship-registry-auth\0{self.server}\0{self.username}".encode()
        secret = self.password.get_secret_value().encode()
        return hashlib.pbkdf2_hmac("sha256", secret, salt, 10_000).hex()[:24]

    def docker_auth_config(self) -> dict[str, str]:
        """The ``auth_config`` docker-py sends as ``X-Registry-Auth``: memory only, never a file."""
        return {
            "username": self.username,
            "password": self.password.get_secret_value(),
            "serveraddress": self.server,
        }


class Registry(ABC):
    """Where images are pushed to and where runtimes pull them from.

    Implementations are cheap to construct: no network call happens before a method is used.
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def address(self) -> str:
        """The registry host as used in image references (``host[:port]``)."""

    @abstractmethod
    def repository(self, name: str, *, create: bool = True) -> str:
        """Full repository address for ``name`` (``host/path``); created (private) if missing
        unless ``create`` is False."""

    @abstractmethod
    def credentials(self) -> RegistryAuth | None:
        """Short-lived push/pull credentials, refreshed when stale; ``None`` for anonymous."""

    def pull_credentials(self) -> RegistryAuth | None:
        """What runtimes pull with; by default the push credentials. A registry may hand out
        narrower ones (Docker Hub's optional read-only ``pull_token``)."""
        return self.credentials()

    @abstractmethod
    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """Digest of ``repository:reference`` (tag or digest) if the registry has it, else None."""

    #: whether ``write_index`` works here: the registry provides ``distribution()``
    writes_indexes: ClassVar[bool] = False

    def distribution(self) -> DistributionClient:
        """A client of this registry's ``/v2/`` API holding the push credentials (fresh ones:
        call it per use); registries that set ``writes_indexes`` provide it."""
        raise NotImplementedError(f"{self.kind} registries have no distribution API client")

    def write_index(self, repository: str, tag: str, platforms: Mapping[str, str]) -> str:
        """Put under ``tag`` an image index of the manifests ``platforms`` names (digest →
        ``os/arch[/variant]``), all already in ``repository``; return the index's digest.
        Every registry that writes one does it the same way, over the distribution API."""
        if not self.writes_indexes:
            raise NotImplementedError(f"{self.kind} registries do not write image indexes")
        return self.distribution().write_index(repository, tag, dict(platforms))

    def prepare(self, on_event: EventSink = ignore) -> None:  # noqa: B027 - optional hook
        """Make the registry ready before first use (e.g. start an embedded one)."""
