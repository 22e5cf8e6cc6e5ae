"""A target and an engine that record every call, for engine-free tests of the boundary.

They are deliberately also *oracles*: whatever reaches them must already satisfy the rules the
boundary promises (a Dockerfile inside its context, a finite cpu of at least 0.01, a URL path
to probe, string env, ...). A refused input that slips through therefore fails the test at the
call that would have built, pushed or started something — not later, and not silently.

The lead's first-class in-memory doubles (``cloudship.testing.memory``) are meant to replace
these once they land; these stay small on purpose.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from cloudship.config import ConfigFile
from cloudship.engine import BuildResult, ImageInfo, PushResult
from cloudship.events import EventSink, ignore
from cloudship.images import ImageRef
from cloudship.registry import Registry, RegistryAuth
from cloudship.runtime import Deployment, Plan, Runtime, ServiceSpec, ServiceStatus
from cloudship.targets import Provider, Target

PLATFORM = "linux/amd64"
_URL_PATH = re.compile(r"^/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$")


class Refused(AssertionError):
    """Input the boundary should have refused reached a recording double."""


@dataclass
class Calls:
    """Everything the doubles were asked to do, in order: ``(what, detail)``."""

    log: list[tuple[str, Any]] = field(default_factory=list)

    def record(self, what: str, detail: Any = None) -> None:
        self.log.append((what, detail))

    def of(self, what: str) -> list[Any]:
        return [detail for name, detail in self.log if name == what]

    @property
    def created(self) -> list[tuple[str, Any]]:
        """Calls that leave something behind: an image, a tag, a repository, a revision."""
        lasting = {"build", "tag", "push", "create_repository", "deploy", "rollback", "destroy"}
        return [(name, detail) for name, detail in self.log if name in lasting]


def check_spec(spec: ServiceSpec) -> None:
    """The portable floor every runtime may rely on (the boundary's promise)."""
    if not (isinstance(spec.port, int) and not isinstance(spec.port, bool)):
        raise Refused(f"port is {type(spec.port).__name__}")
    if not 1 <= spec.port <= 65535:
        raise Refused(f"port {spec.port}")
    if spec.cpu is not None and not (math.isfinite(spec.cpu) and spec.cpu >= 0.01):
        raise Refused(f"cpu {spec.cpu}")
    if spec.memory is not None:
        from cloudship.runtime import memory_bytes

        if memory_bytes(spec.memory) < 6 * 1024**2:
            raise Refused(f"memory {spec.memory}")
    if not _URL_PATH.match(spec.health_path) or len(spec.health_path) > 1024:
        raise Refused(f"health path {spec.health_path!r}")
    if not re.match(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", spec.name):
        raise Refused(f"service name {spec.name!r}")
    for key, value in spec.env.items():
        if not isinstance(value, str) or not re.match(r"^[A-Za-z_]\w*$", key):
            raise Refused(f"env {key!r}")
    for key, secret in spec.secrets.items():
        if not isinstance(secret, SecretStr) or not re.match(r"^[A-Za-z_]\w*$", key):
            raise Refused(f"secret {key!r}")


class RecordingEngine:
    """An Engine stand-in (``ship(engine=...)``): builds nothing, pushes nothing."""

    def __init__(self, calls: Calls, *, exposed: tuple[int, ...] = (8000,)) -> None:
        self.calls = calls
        self.exposed = exposed
        self.images: dict[str, ImageInfo] = {}

    def build(
        self,
        context: Path,
        *,
        tag: str,
        dockerfile: str = "Dockerfile",
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        platform: str | None = None,
        labels: dict[str, str] | None = None,
        on_event: EventSink = ignore,
    ) -> BuildResult:
        root = context.resolve()
        if not (context / dockerfile).resolve().is_relative_to(root):
            raise Refused(f"build with a Dockerfile outside its context: {dockerfile!r}")
        if not (context / dockerfile).is_file():
            raise Refused(f"build without a Dockerfile: {dockerfile!r}")
        for key, value in (buildargs or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise Refused(f"build arg {key!r}")
        self.calls.record("build", {"context": context, "dockerfile": dockerfile})
        image_id = "sha256:" + hashlib.sha256(str(root).encode()).hexdigest()
        self.images[image_id] = ImageInfo(image_id, PLATFORM, (), self.exposed)
        return BuildResult(image_id=image_id, steps=3, cache_hits=3, seconds=0.0)

    def inspect(self, image: str) -> ImageInfo | None:
        return self.images.get(image)

    def tag(self, image_id: str, ref: ImageRef) -> None:
        self.calls.record("tag", str(ref))

    def push(
        self,
        ref: ImageRef,
        auth: RegistryAuth | None,
        *,
        on_event: EventSink = ignore,
        target: str | None = None,
    ) -> PushResult:
        self.calls.record("push", str(ref))
        digest = "sha256:" + hashlib.sha256(str(ref).encode()).hexdigest()
        return PushResult(digest=digest, layers_pushed=1, layers_existing=0, bytes_pushed=1)


class RecordingRegistry(Registry):
    kind = "recording"

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    @property
    def address(self) -> str:
        return "registry.example.test"  # never resolved: nothing here opens a socket

    def repository(self, name: str, *, create: bool = True) -> str:
        self.calls.record("create_repository" if create else "read_repository", name)
        return f"{self.address}/{name}"

    def credentials(self) -> RegistryAuth | None:
        return RegistryAuth(username="u", password=SecretStr("p"), server=self.address)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        self.calls.record("manifest_digest", f"{repository}:{reference}")
        return None


class RecordingRuntime(Runtime):
    kind = "recording"
    platforms: ClassVar[frozenset[str]] = frozenset({PLATFORM})

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def validate(self, spec: ServiceSpec) -> None:
        check_spec(spec)

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        check_spec(spec)
        self.calls.record("plan", spec.name)
        return Plan(
            service=spec.name, image=str(image), changed=True, current_digest=None, actions=[]
        )

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
        check_spec(spec)
        if not (math.isfinite(timeout) and timeout > 0):
            raise Refused(f"timeout {timeout}")
        if image.digest is None:
            raise Refused(f"deploy of an unpinned image {image}")
        self.calls.record("deploy", spec)
        return Deployment(
            service=spec.name,
            revision="r1",
            image=str(image),
            digest=image.digest,
            url="http://service.example.test/",
            changed=True,
        )

    def _check_name(self, service: str) -> None:
        if not isinstance(service, str) or not re.match(
            r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", service
        ):
            raise Refused(f"service name {service!r} reached the runtime")

    def status(self, service: str) -> ServiceStatus | None:
        self._check_name(service)
        self.calls.record("status", service)
        return None

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        self._check_name(service)
        if to is not None and not isinstance(to, str):
            raise Refused(f"to={to!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise Refused(f"timeout {timeout}")
        from cloudship.errors import ServiceNotFoundError

        self.calls.record("status", service)
        raise ServiceNotFoundError(f"service {service!r} is not deployed", fix="ship it first")

    def logs(self, service: str, tail: int = 100) -> list[str]:
        self._check_name(service)
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < 1:
            raise Refused(f"tail={tail!r}")
        self.calls.record("logs", service)
        return []

    def destroy(self, service: str) -> None:
        self._check_name(service)
        self.calls.record("destroy", service)


def recording_target(calls: Calls, name: str = "recording") -> Target:
    return Target(
        registry=RecordingRegistry(calls), runtime=RecordingRuntime(calls), name=name, paired=True
    )


class _NoSettings(BaseModel):
    pass


class RecordingProvider(Provider):
    """A provider whose targets record into ``calls``: for the CLI, which takes names."""

    name = "recording"
    settings_model = _NoSettings
    calls = Calls()

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        return recording_target(self.calls)


provider = RecordingProvider()
