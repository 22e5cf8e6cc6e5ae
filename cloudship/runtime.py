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
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from cloudship.errors import CloudshipError, ConfigError
from cloudship.events import EventSink, ignore
from cloudship.image_needs import ImageNeed
from cloudship.images import ImageRef, is_loopback_host
from cloudship.registry import Registry, RegistryAuth
from cloudship.revisions import revision_id
from cloudship.validation import (
    Cpu,
    EnvMap,
    HealthPath,
    Memory,
    Platform,
    Port,
    Replicas,
    SecretMap,
    ServiceName,
    parse_memory,
    suggested_service_name,
)

_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def service_name(text: str) -> str:
    """A service name every runtime accepts (DNS label): raise ``ConfigError`` otherwise."""
    if not isinstance(text, str) or not _SERVICE_NAME.match(text):
        shown = repr(text) if isinstance(text, str) and len(text) <= 80 else type(text).__name__
        suggestion = suggested_service_name(text) if isinstance(text, str) else "app"
        raise ConfigError(
            f"invalid service name {shown}: use 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            fix=f"pass name={suggestion!r}",
        )
    return text


def memory_bytes(text: str) -> int:
    """``"512Mi"`` → 536870912. Kubernetes-style units; ``ConfigError`` when unreadable."""
    try:
        return parse_memory(text)
    except (TypeError, ValueError):
        raise ConfigError(
            f"invalid memory {text!r}",
            fix="use a number with a unit, e.g. '512Mi' or '1Gi'",
        ) from None


class ServiceSpec(BaseModel):
    """What to run, independent of where. Each runtime validates it before creating anything.

    The field types (``cloudship.validation``) are the portable floor every runtime may rely
    on: a DNS-label name, a port that is not a bool, finite cpu of at least 0.01, memory of at
    least 6Mi, a valid URL path to probe, string-valued env. Runtimes add their own tables in
    ``Runtime.validate``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: ServiceName
    port: Port
    env: EnvMap = Field(default_factory=dict)
    secrets: SecretMap = Field(default_factory=dict)
    health_path: HealthPath = "/"
    cpu: Cpu | None = None
    memory: Memory | None = None
    replicas: Replicas = 1
    max_replicas: Annotated[Replicas, Field(ge=1)] | None = None
    platform: Platform | None = None
    public: bool = True

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

    def rollout_seconds(self, spec: ServiceSpec) -> tuple[float, str] | None:
        """The least time a deploy of ``spec`` needs here, and why (e.g. "deregistration delay
        30 s + ..."), computed without any call; None when the runtime cannot say.

        ``ship`` refuses a given ``timeout`` below it before anything is built, and without a
        given ``timeout`` uses ``max(DEFAULT_TIMEOUT, 2 * it)`` (a deploy and, on failure, the
        rollback)."""
        return None

    def image_needs(self, spec: ServiceSpec) -> list[ImageNeed]:
        """The user's commands this runtime will run inside the image (a container health
        check, say): the ship checks the built image has what each runs before anything is
        pushed (``cloudship.image_needs``). Computed without any call; none by default."""
        return []

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
