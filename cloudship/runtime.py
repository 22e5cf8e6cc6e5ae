"""The Runtime interface and the models that cross it.

A runtime only ever receives a digest-pinned reference (``repo@sha256:…``): it pulls that
exact image from the registry and runs it. It never sees source code or a mutable tag.

The models use ``defer_build`` (schemas built on first use; see ``cloudship.shipment``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, computed_field, field_validator

from cloudship.errors import CloudshipError, ConfigError
from cloudship.events import EventSink, ignore
from cloudship.images import ImageRef, is_loopback_host
from cloudship.registry import Registry, RegistryAuth
from cloudship.revisions import revision_id

_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def service_name(text: str) -> str:
    """A service name every runtime accepts (DNS label): raise ``ConfigError`` otherwise."""
    if not _SERVICE_NAME.match(text):
        raise ConfigError(
            f"invalid service name {text!r}: use 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            fix=f"pass name={re.sub(r'[^a-z0-9-]+', '-', text.lower()).strip('-') or 'app'!r}",
        )
    return text


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T|KB|MB|GB|TB|B)?\s*$", re.I)
_UNITS = {
    "": 1,
    "b": 1,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}


def memory_bytes(text: str) -> int:
    """``"512Mi"`` → 536870912. Kubernetes-style units; ``ConfigError`` when unreadable."""
    match = _MEMORY.match(text)
    if not match:
        raise ConfigError(
            f"invalid memory {text!r}",
            fix="use a number with a unit, e.g. '512Mi' or '1Gi'",
        )
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


class ServiceSpec(BaseModel):
    """What to run, independent of where. Each runtime validates it before creating anything."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    port: int = Field(ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    health_path: str = "/"
    cpu: float | None = Field(default=None, gt=0)
    memory: str | None = None
    replicas: int = Field(default=1, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    platform: str | None = None
    public: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return service_name(value)

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            memory_bytes(value)
        return value

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"health_path {value!r} must start with '/'")
        return value

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
        return value

    def fingerprint(self, image: str) -> str:
        """A stable hash of everything that defines a revision (image + spec).

        Secret values enter only as their own SHA-256, so the fingerprint, which runtimes
        store in labels/tags, reveals nothing usable.
        """
        data = self.model_dump(mode="json", exclude={"secrets"})
        data["secrets"] = {
            key: hashlib.sha256(value.get_secret_value().encode()).hexdigest()
            for key, value in sorted(self.secrets.items())
        }
        data["image"] = image
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


class Revision(BaseModel):
    """One deployed version of a service.

    ``id`` is ``r<number>`` on every runtime (see ``cloudship.revisions``); ``native_id`` is the
    cloud's own id for it (task-definition ARN, Container Apps revision name, container name).
    ``state="failed"`` marks a revision that failed its health gate: never a rollback target.
    """

    model_config = ConfigDict(defer_build=True)

    number: int = Field(ge=1)
    native_id: str | None = None
    image: str
    digest: str
    state: Literal["serving", "standby", "failed", "stopped"]
    created: datetime | None = None
    url: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return revision_id(self.number)


class Deployment(BaseModel):
    """The outcome of a deploy or rollback: what serves now, and whether anything moved."""

    model_config = ConfigDict(defer_build=True)

    service: str
    revision: str
    image: str
    digest: str
    url: str | None
    changed: bool
    previous: str | None = None


class ServiceStatus(BaseModel):
    """A service's serving revision and its history, newest first."""

    model_config = ConfigDict(defer_build=True)

    service: str
    url: str | None
    current: Revision | None
    revisions: list[Revision]


class Plan(BaseModel):
    """What a deploy would do, computed without changing anything."""

    model_config = ConfigDict(defer_build=True)

    service: str
    image: str
    changed: bool
    current_digest: str | None
    actions: list[str]


class Runtime(ABC):
    """Where a service runs. Implementations are cheap to construct (no I/O until used)."""

    kind: ClassVar[str]
    #: the ``os/arch`` values this runtime can run; an image outside it is refused before push
    platforms: ClassVar[frozenset[str]]
    #: True when the runtime pulls from this machine's engine (it can reach loopback registries)
    on_this_machine: ClassVar[bool] = False

    def supported_platforms(self) -> frozenset[str]:
        """Platforms this runtime instance runs; may depend on the host (local engines)."""
        return self.platforms

    def check_registry(self, registry: Registry) -> None:
        """Raise ``ConfigError`` when this runtime cannot pull from ``registry``.

        Called for targets composed by hand (a provider knows its own pairs work), before
        anything is pushed. The default refuses loopback registries for remote runtimes.
        """
        self.check_pull_address(registry.address)

    def check_pull_address(self, address: str) -> None:
        """Raise ``ConfigError`` when this runtime cannot reach a registry at ``address``
        (also used for digest-pinned sources deployed as they are)."""
        if not self.on_this_machine and is_loopback_host(address):
            raise ConfigError(
                f"runtime {self.kind!r} runs remotely and cannot pull from the registry at "
                f"{address}, which only this machine can reach",
                fix="use a registry the runtime can reach (ECR, ACR, Docker Hub, ...)",
            )

    def validate(self, spec: ServiceSpec) -> None:  # noqa: B027 - optional hook
        """Raise ``ConfigError`` when ``spec`` cannot run here. Called before anything is
        created or pushed."""

    @abstractmethod
    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        """What ``deploy`` would do, without changing anything."""

    @abstractmethod
    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        """Run ``image`` (digest-pinned) for ``spec``; healthy, or rolled back and raised.

        Same image and spec as the serving revision → nothing happens (``changed=False``)
        unless ``force``."""

    @abstractmethod
    def status(self, service: str) -> ServiceStatus | None:
        """The service's revisions, or None when it does not exist."""

    @abstractmethod
    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        """Serve an earlier revision (the one before the current one by default)."""

    @abstractmethod
    def logs(self, service: str, tail: int = 100) -> list[str]:
        """The serving revision's last ``tail`` log lines."""

    @abstractmethod
    def destroy(self, service: str) -> None:
        """Remove the service and every revision; no error when it does not exist."""

    def services(self) -> list[str]:
        """The names of the services cloudship deployed here (in this runtime's scope).

        Not abstract, so providers written before it still construct; those that do not
        implement it refuse clearly when asked."""
        raise CloudshipError(
            f"runtime {self.kind!r} cannot list its services yet",
            fix="name the service you mean: `cloudship status NAME --target ...`",
        )

    def follow_logs(self, service: str, tail: int = 100, *, stop: threading.Event) -> Iterator[str]:
        """The last ``tail`` lines, then new ones as they come, until ``stop`` is set.

        The default polls ``logs()`` every ``poll_interval`` seconds, always for the same
        window of lines, and yields what follows the overlap with the previous read (best
        effort: more than a window between two reads loses lines). Runtimes that can stream
        (``docker logs -f``) override it."""
        window = max(tail, 1000)
        seen = self.logs(service, window)
        yield from seen[-tail:] if tail else []
        while not stop.wait(self.poll_interval):
            lines = self.logs(service, window)
            yield from _new_lines(seen, lines)
            seen = lines

    #: seconds between two reads of the default ``follow_logs``
    poll_interval: ClassVar[float] = 2.0


def _new_lines(seen: list[str], lines: list[str]) -> list[str]:
    """The lines of ``lines`` after its longest prefix that ends ``seen`` (the overlap of two
    reads of a log tail)."""
    if not seen:
        return lines
    for size in range(min(len(seen), len(lines)), 0, -1):
        if seen[-size:] == lines[:size]:
            return lines[size:]
    return lines
