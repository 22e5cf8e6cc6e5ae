"""The in-memory doubles (``cloudship.testing.memory``) as *oracles* for boundary tests.

Whatever reaches them must already satisfy what the boundary promises: a Dockerfile inside its
context, a finite cpu of at least 0.01, memory of at least 6Mi, a URL path to probe,
string-valued env, a DNS-label service name, a positive tail and timeout. Input the boundary
should have refused that slips through fails the test at the call that would have built,
pushed or started something — not later, and not silently. (The memory engine reads the
Dockerfile it is given, so without this check an escaping path would be read.)

``Calls`` gathers one registry, the runtimes and engines made for it, and answers what a test
asks: what was called (``log``), what was built or deployed (``of``), and whether anything
was left behind (``created``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Unpack

from pydantic import BaseModel, SecretStr

from cloudship.config import ConfigFile
from cloudship.deadline import Deadline
from cloudship.engine import BuildOptions, BuildRequest, BuildResult, PushResult
from cloudship.events import EventSink, ignore
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.runtime import Deployment, Plan, ServiceSpec, ServiceStatus, memory_bytes
from cloudship.targets import Provider, Target
from cloudship.testing.memory import MemoryEngine, MemoryRegistry, MemoryRuntime

_URL_PATH = re.compile(r"^/(?!/)(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Refused(AssertionError):
    """Input the boundary should have refused reached a double."""


def check_spec(spec: ServiceSpec) -> None:
    """The portable floor every runtime may rely on, checked independently of the validators."""
    if isinstance(spec.port, bool) or not isinstance(spec.port, int) or not 0 < spec.port < 65536:
        raise Refused(f"port {spec.port!r}")
    if spec.cpu is not None and not (math.isfinite(spec.cpu) and 0.01 <= spec.cpu <= 1024):
        raise Refused(f"cpu {spec.cpu!r}")
    if spec.memory is not None and memory_bytes(spec.memory) < 6 * 1024**2:
        raise Refused(f"memory {spec.memory!r}")
    if len(spec.health_path) > 1024 or not _URL_PATH.match(spec.health_path):
        raise Refused(f"health path {spec.health_path!r}")
    if not _LABEL.match(spec.name):
        raise Refused(f"service name {spec.name!r}")
    for key, value in spec.env.items():
        if not _VAR.match(key) or not isinstance(value, str) or "\x00" in value:
            raise Refused(f"env {key!r}")
    for key, secret in spec.secrets.items():
        if not _VAR.match(key) or not isinstance(secret, SecretStr):
            raise Refused(f"secret {key!r}")


def _check_service(service: object) -> None:
    if not isinstance(service, str) or not _LABEL.match(service):
        raise Refused(f"service name {service!r} reached the runtime")


def _check_timeout(timeout: object) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise Refused(f"timeout {timeout!r}")
    if not (math.isfinite(timeout) and 0 < timeout <= 86_400):
        raise Refused(f"timeout {timeout!r}")


class OracleEngine(MemoryEngine):
    """The memory engine, refusing to build what the boundary must have refused."""

    def __init__(self, calls: Calls) -> None:
        super().__init__(calls.registry)
        self.specs_built: list[dict[str, Any]] = []
        self.tagged: list[str] = []
        calls.engines.append(self)

    def build(
        self, context: Path, *, on_event: EventSink = ignore, **options: Unpack[BuildOptions]
    ) -> BuildResult:
        build = BuildRequest(**options)
        root = context.resolve()
        dockerfile = build.dockerfile
        if Path(dockerfile).is_absolute() or not (context / dockerfile).resolve().is_relative_to(
            root
        ):
            raise Refused(f"a build with a Dockerfile outside its context: {dockerfile!r}")
        for key, value in (build.buildargs or {}).items():
            if not _VAR.match(key) or not isinstance(value, str):
                raise Refused(f"build arg {key!r}")
        self.specs_built.append({"context": context, "dockerfile": dockerfile})
        return super().build(context, on_event=on_event, **options)

    def tag(self, image_id: str, ref: ImageRef) -> None:
        self.tagged.append(str(ref))
        super().tag(image_id, ref)

    def push(
        self,
        ref: ImageRef,
        auth: RegistryAuth | None,
        *,
        on_event: EventSink = ignore,
        target: str | None = None,
        deadline: Deadline | None = None,
    ) -> PushResult:
        return super().push(ref, auth, on_event=on_event, target=target, deadline=deadline)


class OracleRuntime(MemoryRuntime):
    """The memory runtime, refusing specs and arguments the boundary must have refused."""

    def __init__(self, calls: Calls) -> None:
        super().__init__(calls.registry)
        self.deployed: list[ServiceSpec] = []
        calls.runtimes.append(self)

    def validate(self, spec: ServiceSpec) -> None:
        check_spec(spec)
        super().validate(spec)

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        check_spec(spec)
        return super().plan(spec, image)

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
        _check_timeout(timeout)
        if not isinstance(force, bool):
            raise Refused(f"force={force!r}")
        self.deployed.append(spec)
        return super().deploy(spec, image, pull, timeout=timeout, on_event=on_event, force=force)

    def status(self, service: str) -> ServiceStatus | None:
        _check_service(service)
        return super().status(service)

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        _check_service(service)
        _check_timeout(timeout)
        if to is not None and (not isinstance(to, str) or not re.match(r"^[!-~]{1,255}$", to)):
            raise Refused(f"to={to!r}")
        return super().rollback(service, to, timeout=timeout, on_event=on_event)

    def logs(self, service: str, tail: int = 100) -> list[str]:
        _check_service(service)
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < 1:
            raise Refused(f"tail={tail!r}")
        return super().logs(service, tail)

    def destroy(self, service: str) -> None:
        _check_service(service)
        super().destroy(service)


class Calls:
    """One memory registry and every oracle runtime and engine made for it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.registry = MemoryRegistry()
        self.runtimes: list[OracleRuntime] = []
        self.engines: list[OracleEngine] = []

    def shared_engine(self) -> OracleEngine:
        """One engine per reset, for code that asks ``Engine.shared()`` more than once."""
        return self.engines[0] if self.engines else OracleEngine(self)

    @property
    def log(self) -> list[tuple[str, str]]:
        """Every registry and runtime call, and every build, tag and push."""
        found = list(self.registry.calls)
        for runtime in self.runtimes:
            found += runtime.calls
        for engine in self.engines:
            found += [("build", str(b["context"])) for b in engine.specs_built]
            found += [("tag", ref) for ref in engine.tagged]
            found += [("push", ref) for ref in engine.pushed]
        return found

    @property
    def created(self) -> list[tuple[str, str]]:
        """What was left behind: images built or tagged, pushes, repositories, revisions."""
        found = [("build", str(b["context"])) for e in self.engines for b in e.specs_built]
        found += [("tag", ref) for e in self.engines for ref in e.tagged]
        found += [("push", ref) for e in self.engines for ref in e.pushed]
        found += [("repository", path) for path in self.registry.repositories]
        found += [("revision", name) for runtime in self.runtimes for name in runtime.revisions]
        return found

    def of(self, what: str) -> list[Any]:
        """``build``: what each build was given; ``deploy``: each spec a runtime was given;
        anything else: the subjects of those registry/runtime calls."""
        if what == "build":
            return [b for engine in self.engines for b in engine.specs_built]
        if what == "deploy":
            return [spec for runtime in self.runtimes for spec in runtime.deployed]
        return [subject for name, subject in self.log if name == what]


def recording_target(calls: Calls, name: str = "recording") -> Target:
    """A target on ``calls``' registry with a fresh oracle runtime."""
    return Target(registry=calls.registry, runtime=OracleRuntime(calls), name=name)


def RecordingEngine(calls: Calls) -> OracleEngine:
    return OracleEngine(calls)


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
