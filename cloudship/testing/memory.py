"""In-memory doubles: a ``Registry``, a ``Runtime`` and an engine, as fsspec's ``memory://``.

They are real implementations of the interfaces, held in dictionaries, so ``ship()``'s
orchestration (preflight, fan-out to several targets, ``MultiTargetError``, plan/ship parity, the
rollback rule) can be tested in milliseconds with no Docker engine and no network::

    from cloudship import Target, ship
    from cloudship.testing.memory import MemoryEngine, MemoryRegistry, MemoryRuntime

    registry = MemoryRegistry()
    target = Target(registry=registry, runtime=MemoryRuntime(registry), name="mem")
    shipment = ship("app/", target, port=8000, engine=MemoryEngine())

They are as strict as the real ones where it matters to a caller: the runtime only accepts
digest-pinned references and pulls them from the registry (an image the registry lacks fails
the deploy, as a real pull would), a pushed image's digest is derived from its content, and a
revision whose image "exits" fails its gate, leaves the previous revision serving and is
recorded as ``failed``. An image's behaviour comes from its Dockerfile's ``CMD``: ``CMD
["false"]`` (or any command containing ``exit 1``) exits at once; anything else serves what its
``LABEL org.cloudship.test.answer=…`` says (default: the image digest).

``calls`` on each double records the operations made, for tests that assert that nothing was
created (``created`` lists only the mutating ones).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Unpack

from cloudship.deadline import Deadline
from cloudship.engine import BuildOptions, BuildRequest, BuildResult, Engine, ImageInfo, PushResult
from cloudship.errors import BuildError, DeployError, HealthCheckFailed, RegistryError
from cloudship.events import BuildFinished, BuildStep, DeployPhase, EventSink, ignore
from cloudship.images import ImageRef, normalize_platform
from cloudship.registry import Registry, RegistryAuth
from cloudship.revisions import choose_rollback, is_unchanged, revision_id, service_not_found
from cloudship.runtime import Deployment, Plan, Revision, Runtime, ServiceSpec, ServiceStatus

if TYPE_CHECKING:
    from cloudship.targets import Target

_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\d+)", re.I | re.M)
_CMD = re.compile(r"^\s*(?:CMD|ENTRYPOINT)\s+(.*)$", re.I | re.M)
_ANSWER = re.compile(r"org\.cloudship\.test\.answer=\"?([^\"\s]+)", re.I)
_MUTATING = ("create", "push", "deploy", "rollback", "destroy", "tag")


@dataclass
class MemoryImage:
    """What the memory registry stores for a manifest: enough for the runtime to "run" it."""

    digest: str
    exits: bool
    answer: str
    exposed_ports: tuple[int, ...] = ()
    platform: str = "linux/amd64"


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, operation: str, subject: str) -> None:
        with self._lock:
            self.calls.append((operation, subject))

    @property
    def created(self) -> list[tuple[str, str]]:
        """The mutating calls made so far."""
        return [call for call in self.calls if call[0].startswith(_MUTATING)]


class MemoryRegistry(Registry, _Recorder):
    """A registry held in a dict. ``address`` is under the reserved ``.test`` domain (RFC 2606),
    so it is never loopback and never resolvable: nothing can try to reach it."""

    kind: ClassVar[str] = "memory"

    def __init__(self, address: str = "registry.memory.test", *, auth: bool = True) -> None:
        _Recorder.__init__(self)
        self._address = address
        self._auth = auth
        self.repositories: dict[str, dict[str, MemoryImage]] = {}  # path → tag/digest → image

    @property
    def address(self) -> str:
        return self._address

    def repository(self, name: str, *, create: bool = True) -> str:
        path = f"cloudship/{name}"
        if create and path not in self.repositories:
            self.record("create_repository", path)
            self.repositories[path] = {}
        else:
            self.record("describe_repository", path)
        return f"{self._address}/{path}"

    def credentials(self) -> RegistryAuth | None:
        from pydantic import SecretStr

        self.record("get_credentials", self._address)
        if not self._auth:
            return None
        return RegistryAuth(
            username="memory", password=SecretStr("memory-token-not-a-secret"), server=self.address
        )

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        self.record("head_manifest", f"{repository}:{reference}")
        found = self.repositories.get(repository, {}).get(reference)
        return found.digest if found else None

    def put(self, repository: str, tag: str, image: MemoryImage) -> None:
        """Store ``image`` under ``repository`` by tag and by digest (what a push does)."""
        if repository not in self.repositories:
            raise RegistryError(
                f"registry {self.address}: repository {repository} does not exist",
                fix="create it first (Registry.repository(name))",
            )
        self.record("push_manifest", f"{repository}:{tag}")
        self.repositories[repository][tag] = image
        self.repositories[repository][image.digest] = image

    def image(self, ref: ImageRef) -> MemoryImage | None:
        """The image a pull of ``ref`` would get, or None (manifest unknown)."""
        if ref.registry != self._address:
            return None
        return self.repositories.get(ref.path, {}).get(ref.digest or ref.tag or "latest")


class MemoryEngine(Engine):
    """An engine that "builds" a directory by hashing it and "pushes" into ``MemoryRegistry``s.

    It never connects to Docker. Build steps are the Dockerfile's instructions; one is "cached"
    when the same instruction over the same context was built before, as a layer cache would.
    """

    def __init__(self, *registries: MemoryRegistry, platform: str = "linux/amd64") -> None:
        super().__init__()
        self.registries = {r.address: r for r in registries}
        self.platform = normalize_platform(platform)
        self.images: dict[str, MemoryImage] = {}
        self.infos: dict[str, ImageInfo] = {}
        self.tags: dict[str, str] = {}  # reference → image id
        self.built: list[Path] = []
        self.pushed: list[str] = []
        self._seen_steps: set[str] = set()

    def attach(self, registry: MemoryRegistry) -> None:
        self.registries[registry.address] = registry

    @property
    def host_platform(self) -> str:
        return self.platform

    def builder(self) -> tuple[str, str]:
        """Not BuildKit: ``ship()`` then asks no target for a registry cache."""
        return "memory", ""

    def build(
        self, context: Path, *, on_event: EventSink = ignore, **options: Unpack[BuildOptions]
    ) -> BuildResult:
        build = BuildRequest(**options)
        path = context / build.dockerfile
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read {path}: {exc}", log_tail=[]) from exc
        self.built.append(context)
        digest = hashlib.sha256()
        for file in sorted(p for p in context.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(context)).encode())
            digest.update(file.read_bytes())
        digest.update(repr(sorted((build.buildargs or {}).items())).encode())
        built_platform = normalize_platform(build.platform) if build.platform else self.platform
        digest.update(built_platform.encode())
        image_id = "sha256:" + digest.hexdigest()
        steps = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
        hits = 0
        for number, instruction in enumerate(steps, 1):
            key = f"{image_id}:{number}"
            cached = key in self._seen_steps
            self._seen_steps.add(key)
            hits += cached
            on_event(
                BuildStep(step=number, total=len(steps), instruction=instruction, cached=cached)
            )
        command = " ".join(m[1] for m in _CMD.finditer(text))
        answer = _ANSWER.search(text)
        ports = tuple(int(p) for p in _EXPOSE.findall(text))
        self.images[image_id] = MemoryImage(
            digest="",  # a digest exists only once pushed
            exits='"false"' in command or "exit 1" in command,
            answer=answer[1] if answer else "",
            exposed_ports=ports,
            platform=built_platform,
        )
        # Rebuilding the same content gives the same image, which keeps its RepoDigests.
        self.infos.setdefault(
            image_id,
            ImageInfo(id=image_id, platform=built_platform, repo_digests=(), exposed_ports=ports),
        )
        self.tags[build.tag] = image_id
        on_event(BuildFinished(image_id=image_id, steps=len(steps), cache_hits=hits, seconds=0.0))
        return BuildResult(image_id=image_id, steps=len(steps), cache_hits=hits, seconds=0.0)

    def inspect(self, image: str) -> ImageInfo | None:
        image_id = self.tags.get(image, image)
        return self.infos.get(image_id)

    def tag(self, image_id: str, ref: ImageRef) -> None:
        self.tags[str(ref)] = image_id

    def push(
        self,
        ref: ImageRef,
        auth: RegistryAuth | None,
        *,
        on_event: EventSink = ignore,
        target: str | None = None,
        deadline: Deadline | None = None,
    ) -> PushResult:
        if deadline is not None:
            deadline.check(f"push of {ref}")
        registry = self.registries.get(str(ref.registry))
        if registry is None:
            raise RegistryError(
                f"registry {ref.registry} is not reachable from the memory engine",
                fix="MemoryEngine(registry) or engine.attach(registry)",
            )
        image_id = self.tags.get(str(ref))
        if image_id is None:
            raise RegistryError(f"{ref} is not tagged in the memory engine")
        source = self.images[image_id]
        digest = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
        stored = MemoryImage(
            digest=digest,
            exits=source.exits,
            answer=source.answer or digest,
            exposed_ports=source.exposed_ports,
            platform=source.platform,
        )
        registry.put(ref.path, ref.tag or "latest", stored)
        self.pushed.append(str(ref))
        info = self.infos[image_id]
        entry = f"{ref.registry}/{ref.path}@{digest}"
        if entry not in info.repo_digests:
            self.infos[image_id] = ImageInfo(
                id=info.id,
                platform=info.platform,
                repo_digests=(*info.repo_digests, entry),
                exposed_ports=info.exposed_ports,
            )
        return PushResult(digest=digest, layers_pushed=1, layers_existing=0, bytes_pushed=1)

    def pull(
        self, ref: ImageRef, auth: RegistryAuth | None, *, deadline: Deadline | None = None
    ) -> str:
        if deadline is not None:
            deadline.check(f"pull of {ref}")
        registry = self.registries.get(str(ref.registry))
        if registry is None or registry.image(ref) is None:
            raise RegistryError(f"manifest unknown: {ref}")
        return str(ref.digest)


@dataclass
class _MemoryRevision:
    number: int
    image: ImageRef
    fingerprint: str
    spec: ServiceSpec
    state: str  # serving | standby | failed
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    answer: str = ""


class MemoryRuntime(Runtime, _Recorder):
    """A runtime that "runs" images from ``MemoryRegistry``s, health-gated, with rollback.

    ``serving(service)`` tells what the service's URL would answer now (``None``: nothing);
    a test asserts on it as it would on an HTTP response. ``remote=False`` makes it a runtime on
    this machine (it may then pull from loopback registries, as the local runtime does).
    """

    kind: ClassVar[str] = "memory"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux/amd64", "linux/arm64"})

    def __init__(self, *registries: MemoryRegistry, remote: bool = True) -> None:
        _Recorder.__init__(self)
        self.registries = {r.address: r for r in registries}
        self.on_this_machine = not remote  # type: ignore[misc]
        self.revisions: dict[str, list[_MemoryRevision]] = {}
        self.lines: dict[tuple[str, int], list[str]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}
        self.validator: Callable[[ServiceSpec], None] | None = None

    def validate(self, spec: ServiceSpec) -> None:
        self.record("validate", spec.name)
        if self.validator is not None:
            self.validator(spec)

    def _image(self, ref: ImageRef) -> MemoryImage:
        registry = self.registries.get(str(ref.registry))
        found = registry.image(ref) if registry else None
        if found is None:
            raise DeployError(
                f"the runtime could not pull {ref}: manifest unknown",
                fix="push the image to a registry this runtime pulls from",
            )
        return found

    def _serving(self, service: str) -> _MemoryRevision | None:
        return next((r for r in self.revisions.get(service, []) if r.state == "serving"), None)

    def serving(self, service: str) -> str | None:
        """What the service's URL answers now (its serving revision's answer), or None."""
        current = self._serving(service)
        return current.answer if current else None

    @staticmethod
    def _url(service: str) -> str:
        return f"https://{service}.runtime.memory.test"

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        self.record("plan", spec.name)
        current = self._serving(spec.name)
        wanted = spec.fingerprint(str(image))
        unchanged = is_unchanged(current.fingerprint if current else None, wanted, force=False)
        return Plan(
            service=spec.name,
            image=str(image),
            changed=not unchanged,
            current_digest=current.image.digest if current else None,
            actions=[f"nothing: {revision_id(current.number)} already runs it"]
            if unchanged and current
            else [f"start a new revision of {spec.name} and probe {spec.health_path}"],
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
        if not image.digest:
            raise DeployError(f"{image} is not pinned by digest", fix="deploy repo@sha256:…")
        self.validate(spec)
        current = self._serving(spec.name)
        wanted = spec.fingerprint(str(image))
        if current and is_unchanged(current.fingerprint, wanted, force=force):
            on_event(DeployPhase(phase="unchanged", detail=revision_id(current.number)))
            return self._deployment(spec.name, current, changed=False, previous=None)
        self.record("deploy", spec.name)
        pulled = self._image(image)
        counter = self._numbers.setdefault(spec.name, itertools.count(1))
        new = _MemoryRevision(
            number=next(counter),
            image=image,
            fingerprint=wanted,
            spec=spec,
            state="standby",
            answer=pulled.answer,
        )
        self.revisions.setdefault(spec.name, []).insert(0, new)
        self.lines[(spec.name, new.number)] = [f"{spec.name} {revision_id(new.number)} started"]
        on_event(DeployPhase(phase="probe", detail=f"{self._url(spec.name)}{spec.health_path}"))
        previous = revision_id(current.number) if current else None
        if pulled.exits:
            new.state = "failed"
            self.lines[(spec.name, new.number)].append("exited with code 1")
            raise HealthCheckFailed(
                f"revision {revision_id(new.number)} of {spec.name!r} is not healthy: "
                "the container exited with code 1",
                log_tail=self.lines[(spec.name, new.number)],
                rolled_back_to=previous,
                fix="check the app's command; the log lines above show why it exited",
            )
        if current is not None:
            current.state = "standby"
        new.state = "serving"
        return self._deployment(spec.name, new, changed=True, previous=previous)

    def _deployment(
        self, service: str, rev: _MemoryRevision, *, changed: bool, previous: str | None
    ) -> Deployment:
        return Deployment(
            service=service,
            revision=revision_id(rev.number),
            image=str(rev.image),
            digest=str(rev.image.digest),
            url=self._url(service),
            changed=changed,
            previous=previous,
        )

    def status(self, service: str) -> ServiceStatus | None:
        self.record("status", service)
        found = self.revisions.get(service)
        if not found:
            return None
        revisions = [
            Revision(
                number=r.number,
                native_id=f"{service}-{r.number}",
                image=str(r.image),
                digest=str(r.image.digest),
                state=r.state,  # type: ignore[arg-type]
                created=r.created,
                url=self._url(service) if r.state == "serving" else None,
            )
            for r in found
        ]
        current = next((r for r in revisions if r.state == "serving"), None)
        return ServiceStatus(
            service=service,
            url=current.url if current else None,
            current=current,
            revisions=revisions,
        )

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        listed = self.status(service)
        if listed is None:
            raise service_not_found(service, "the memory runtime")
        chosen_id = choose_rollback(service, listed.revisions, to).number
        chosen = next(r for r in self.revisions[service] if r.number == chosen_id)
        current = self._serving(service)
        if current is chosen:
            return self._deployment(service, chosen, changed=False, previous=None)
        self.record("rollback", service)
        on_event(DeployPhase(phase="rollback", detail=revision_id(chosen.number)))
        if current is not None:
            current.state = "standby"
        chosen.state = "serving"
        return self._deployment(
            service,
            chosen,
            changed=True,
            previous=revision_id(current.number) if current else None,
        )

    def logs(self, service: str, tail: int = 100) -> list[str]:
        current = self._serving(service) or next(iter(self.revisions.get(service, [])), None)
        if current is None:
            raise service_not_found(service, "the memory runtime")
        return self.lines[(service, current.number)][-tail:]

    def services(self) -> list[str]:
        self.record("services", "")
        return sorted(self.revisions)

    def destroy(self, service: str) -> None:
        if self.revisions.pop(service, None) is not None:
            self.record("destroy", service)
        self._numbers.pop(service, None)


def memory_target(name: str = "memory", *, remote: bool = True) -> tuple[Target, MemoryEngine]:
    """A ``Target`` pairing a fresh ``MemoryRegistry`` with a ``MemoryRuntime`` pulling from it,
    and a ``MemoryEngine`` that pushes into it: ``target, engine = memory_target()``."""
    from cloudship.targets import Target

    registry = MemoryRegistry()
    runtime = MemoryRuntime(registry, remote=remote)
    return Target(registry=registry, runtime=runtime, name=name), MemoryEngine(registry)


__all__ = [
    "MemoryEngine",
    "MemoryImage",
    "MemoryRegistry",
    "MemoryRuntime",
    "memory_target",
]
