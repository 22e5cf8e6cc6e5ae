"""Pull-based ``docker run`` on the local engine, health-gated, with rollback.

Each revision is one container labelled with its service, revision, digest and spec
fingerprint. A deploy never touches the serving container until the new revision has proved
healthy: the new image is first started as a *canary* on a throw-away loopback port and probed;
only then is the serving container stopped (kept, for rollback) and the new revision started on
the service's stable host port. If anything fails, the old revision is (still, or again)
serving and the error carries the new revision's last log lines.

The runtime always pulls ``repo@sha256:…`` from the registry before running it, so what runs is
what the registry holds, never a local build that happens to share a tag.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from cloudship.engine import Engine, engine_errors
from cloudship.errors import (
    CloudshipError,
    ConfigError,
    DeployError,
    HealthCheckFailed,
    PortInUseError,
    ServiceNotFoundError,
)
from cloudship.events import DeployPhase, EventSink, ignore
from cloudship.images import ImageRef
from cloudship.probe import ProbeResult, wait_healthy
from cloudship.registry import RegistryAuth
from cloudship.revisions import choose_rollback
from cloudship.runtime import (
    Deployment,
    Plan,
    Revision,
    Runtime,
    ServiceSpec,
    ServiceStatus,
    memory_bytes,
)
from cloudship_local.settings import LocalSettings

if TYPE_CHECKING:
    from docker.models.containers import Container

PREFIX = "org.cloudship."
L_SERVICE = PREFIX + "service"
L_PROJECT = PREFIX + "project"
L_REVISION = PREFIX + "revision"
L_DIGEST = PREFIX + "digest"
L_IMAGE = PREFIX + "image"
L_FINGERPRINT = PREFIX + "fingerprint"
L_PORT = PREFIX + "host-port"
L_ROLE = PREFIX + "role"
L_CREATED = PREFIX + "created"
L_HEALTH = PREFIX + "health-path"

SERVING, CANARY = "serving", "canary"
_PORT_RANGE = (20000, 29999)


@dataclass(frozen=True)
class _Rev:
    """A revision container as read back from its labels."""

    container: Container
    state: str
    number: int
    role: str
    digest: str
    image: str
    fingerprint: str
    host_port: int
    health_path: str
    created: datetime | None

    @property
    def id(self) -> str:
        return f"r{self.number}"

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")

    @classmethod
    def read(cls, container: Container, labels: dict[str, str], state: str) -> _Rev:
        created = labels.get(L_CREATED)
        return cls(
            container=container,
            state=state,
            number=int(labels.get(L_REVISION, "0")),
            role=labels.get(L_ROLE, SERVING),
            digest=labels.get(L_DIGEST, ""),
            image=labels.get(L_IMAGE, ""),
            fingerprint=labels.get(L_FINGERPRINT, ""),
            host_port=int(labels.get(L_PORT, "0")),
            health_path=labels.get(L_HEALTH, "/"),
            created=datetime.fromisoformat(created) if created else None,
        )

    @classmethod
    def of(cls, container: Container) -> _Rev:
        """From a fully inspected container (one this runtime just started)."""
        return cls.read(container, container.labels, container.status)


def _death(container: Container) -> str | None:
    """Why ``container`` can no longer become healthy, or None while it still might."""
    container.reload()
    state = container.attrs.get("State", {})
    if state.get("Restarting") or int(container.attrs.get("RestartCount", 0)) > 0:
        return f"the container is crash-looping (exit code {state.get('ExitCode')})"
    if state.get("Status") in ("exited", "dead"):
        return f"the container exited with code {state.get('ExitCode')}"
    return None


@contextlib.contextmanager
def _docker_errors(what: str) -> Iterator[None]:
    """The one place where docker-py errors become cloudship errors for this runtime."""
    from docker.errors import APIError

    try:
        with engine_errors(what, api_errors=False):  # lost engine, read timeouts
            yield
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "port is already allocated" in text or "address already in use" in text:
            raise PortInUseError(
                f"{what}: {text}",
                fix="set host_port (CLOUDSHIP_LOCAL_HOST_PORT) to a free port, or stop what "
                "holds it",
            ) from exc
        raise DeployError(f"{what}: {text}") from exc


class DockerRunRuntime(Runtime):
    kind: ClassVar[str] = "docker"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux/amd64", "linux/arm64"})
    on_this_machine: ClassVar[bool] = True

    def __init__(self, engine: Engine, settings: LocalSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._project = settings.project

    def supported_platforms(self) -> frozenset[str]:
        """The engine's own platform: no emulation is assumed."""
        return frozenset({self._engine.host_platform})

    def validate(self, spec: ServiceSpec) -> None:
        """One replica only, and the service's host port must be free (or already ours)."""
        self._check_replicas(spec)
        revisions = [r for r in self._revisions(spec.name) if r.role != CANARY]
        self._host_port(spec, revisions, self._serving(revisions))

    @staticmethod
    def _check_replicas(spec: ServiceSpec) -> None:
        if spec.replicas != 1 or (spec.max_replicas or 1) != 1:
            raise ConfigError(
                f"the local target runs exactly one replica (asked for {spec.replicas})",
                fix="use replicas=1 for the local target",
            )

    # -- reading state -------------------------------------------------------------------

    def _listing(self, label: str) -> list[dict[str, Any]]:
        # The low-level list: docker-py's containers.list() inspects each container again.
        with _docker_errors("listing cloudship containers"):
            found: list[dict[str, Any]] = self._engine.client.api.containers(
                all=True, filters={"label": [label, f"{L_PROJECT}={self._project}"]}
            )
        return found

    def _revisions(self, service: str) -> list[_Rev]:
        client = self._engine.client
        revisions = [
            _Rev.read(
                client.containers.prepare_model({"Id": entry["Id"]}),
                entry.get("Labels") or {},
                entry.get("State", ""),
            )
            for entry in self._listing(f"{L_SERVICE}={service}")
        ]
        return sorted(revisions, key=lambda r: r.number, reverse=True)

    @staticmethod
    def _serving(revisions: list[_Rev]) -> _Rev | None:
        return next((r for r in revisions if r.role == SERVING and r.running), None)

    def _url(self, port: int) -> str:
        host = self._settings.bind
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"

    # -- ports ---------------------------------------------------------------------------

    def _port_free(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self._settings.bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self._settings.bind, port))
            except OSError:
                return False
        return True

    def _claimed_ports(self) -> set[int]:
        # Ports of every project count: they share the host.
        with _docker_errors("listing cloudship containers"):
            found = self._engine.client.api.containers(all=True, filters={"label": L_SERVICE})
        return {int((c.get("Labels") or {}).get(L_PORT, "0")) for c in found}

    def _host_port(self, spec: ServiceSpec, revisions: list[_Rev], serving: _Rev | None) -> int:
        """The service's stable host port: configured, else the one it already has, else one
        derived from its name (stable across destroy/ship), moving up past taken ports."""
        if self._settings.host_port:
            port = self._settings.host_port
        elif revisions:
            port = (serving or revisions[0]).host_port
        else:
            low, high = _PORT_RANGE
            seed = f"{self._project}/{spec.name}".encode()
            start = low + int(hashlib.sha256(seed).hexdigest(), 16) % (high - low)
            claimed = self._claimed_ports()
            for candidate in range(start, start + 200):
                if candidate not in claimed and self._port_free(candidate):
                    return candidate
            raise PortInUseError(f"no free host port near {start} for service {spec.name!r}")
        held_by_us = serving is not None and serving.host_port == port
        if not held_by_us and not self._port_free(port):
            raise PortInUseError(
                f"host port {self._settings.bind}:{port} for service {spec.name!r} is already "
                "in use by another program",
                fix="stop that program, or choose another port with host_port= "
                "(CLOUDSHIP_LOCAL_HOST_PORT)",
            )
        return port

    # -- plan / deploy -------------------------------------------------------------------

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        self._check_replicas(spec)
        revisions = self._revisions(spec.name)
        serving = self._serving(revisions)
        current = serving.digest if serving else None
        if serving and image.digest and serving.fingerprint == spec.fingerprint(str(image)):
            return Plan(
                service=spec.name,
                image=str(image),
                changed=False,
                current_digest=current,
                actions=[f"nothing to do: {serving.id} already runs this image and spec"],
            )
        number = (revisions[0].number + 1) if revisions else 1
        port = self._host_port(spec, revisions, serving)
        actions = [f"pull {image} from the registry"]
        if serving:
            actions += [
                f"start r{number} on a loopback canary port and probe {spec.health_path}",
                f"stop {serving.id} (kept for rollback) and serve r{number} on port {port}",
            ]
        else:
            actions.append(f"start r{number} on port {port} and probe {spec.health_path}")
        return Plan(
            service=spec.name,
            image=str(image),
            changed=True,
            current_digest=current,
            actions=actions,
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
            raise ConfigError(f"{image} is not pinned by digest", fix="deploy repo@sha256:…")
        self._check_replicas(spec)
        fingerprint = spec.fingerprint(str(image))
        revisions = self._revisions(spec.name)
        self._remove([r for r in revisions if r.role == CANARY])  # left by an interrupted deploy
        revisions = [r for r in revisions if r.role != CANARY]
        serving = self._serving(revisions)
        if serving and serving.fingerprint == fingerprint and not force:
            on_event(DeployPhase(phase="unchanged", detail=f"{serving.id} already serves it"))
            return self._deployment(spec.name, serving, changed=False, previous=None)

        port = self._host_port(spec, revisions, serving)
        number = (revisions[0].number + 1) if revisions else 1
        on_event(DeployPhase(phase="pull", detail=str(image)))
        self._engine.pull(image, pull)

        if serving is not None:
            # Prove the new revision on a throw-away port while the old one keeps serving.
            on_event(DeployPhase(phase="canary", detail=f"r{number}"))
            canary = self._run(spec, image, number, fingerprint, CANARY, port, host_port=None)
            self._gate(canary, spec, timeout, rolled_back_to=serving.id, on_event=on_event)
            self._remove([_Rev.of(canary)])
            with _docker_errors(f"stopping {serving.id}"):
                serving.container.stop(timeout=10)

        on_event(DeployPhase(phase="start", detail=f"r{number} on port {port}"))
        try:
            new, port = self._start_serving(
                spec, image, number, fingerprint, port, derived=not revisions
            )
        except CloudshipError:  # e.g. the port was taken in the meantime
            self._restore(serving)
            raise
        try:
            self._gate(
                new,
                spec,
                timeout,
                rolled_back_to=serving.id if serving else None,
                on_event=on_event,
            )
        except HealthCheckFailed:  # _gate removed the new container already
            self._restore(serving)
            raise
        self._prune(spec.name)
        on_event(DeployPhase(phase="done", detail=f"r{number} serves {self._url(port)}"))
        return self._deployment(
            spec.name, _Rev.of(new), changed=True, previous=serving.id if serving else None
        )

    def _start_serving(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        number: int,
        fingerprint: str,
        port: int,
        *,
        derived: bool,
    ) -> tuple[Container, int]:
        """Start the serving container. A port cloudship picked itself (first deploy, none
        configured) may be taken between the check and the start by a concurrent deploy: then
        the next free one is tried."""
        for _ in range(5):
            try:
                started = self._run(spec, image, number, fingerprint, SERVING, port, host_port=port)
                return started, port
            except PortInUseError:
                if not derived or self._settings.host_port:
                    raise
                claimed = self._claimed_ports()
                free = (p for p in range(port + 1, port + 200) if p not in claimed)
                port = next((p for p in free if self._port_free(p)), 0)
                if not port:
                    break
        raise PortInUseError(f"could not find a free host port for service {spec.name!r}")

    def _run(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        number: int,
        fingerprint: str,
        role: str,
        stable_port: int,
        *,
        host_port: int | None,
    ) -> Container:
        env = dict(spec.env)
        env.update({k: v.get_secret_value() for k, v in spec.secrets.items()})
        labels = {
            L_SERVICE: spec.name,
            L_PROJECT: self._project,
            L_REVISION: str(number),
            L_DIGEST: image.digest or "",
            L_IMAGE: str(image),
            L_FINGERPRINT: fingerprint,
            L_PORT: str(stable_port),
            L_ROLE: role,
            L_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
            L_HEALTH: spec.health_path,
        }
        options: dict[str, Any] = {}
        if spec.cpu:
            options["nano_cpus"] = int(spec.cpu * 1_000_000_000)
        if spec.memory:
            options["mem_limit"] = memory_bytes(spec.memory)
        if role == SERVING:
            options["restart_policy"] = {"Name": "unless-stopped"}
        prefix = "cloudship" if self._project == "default" else f"cloudship-{self._project}"
        name = f"{prefix}-{spec.name}-r{number}" + ("-canary" if role == CANARY else "")
        # The canary is for cloudship's probe only: loopback, whatever `bind` says.
        bind = "127.0.0.1" if role == CANARY else self._settings.bind
        client = self._engine.client
        with _docker_errors(f"starting revision r{number} of {spec.name}"):
            self._remove_named(name)  # left behind by an interrupted deploy
            try:
                container: Container = client.containers.run(
                    str(image),
                    name=name,
                    detach=True,
                    # docker-init as PID 1: an app with no SIGTERM handler (PID 1 gets no
                    # default one) still stops at once: a switch does not wait out docker's
                    # 10 s stop timeout.
                    init=True,
                    environment=env,
                    labels=labels,
                    ports={f"{spec.port}/tcp": (bind, host_port)},
                    **options,
                )
            except Exception:
                # `docker run` creates before it starts: a failed start leaves a container.
                self._remove_named(name)
                raise
        return container

    def _remove_named(self, name: str) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self._engine.client.api.remove_container(name, force=True)

    def _gate(
        self,
        container: Container,
        spec: ServiceSpec,
        timeout: float,
        *,
        rolled_back_to: str | None,
        on_event: EventSink,
    ) -> None:
        """Return when ``container`` answers its health probe; otherwise remove it and raise
        ``HealthCheckFailed`` with its last log lines."""
        port = self._published_port(container, spec.port)
        if port is None:  # an app that dies at once never gets its port published
            reason = _death(container) or "the container has no published port"
            result = ProbeResult(False, reason, 0)
        else:
            canary = container.labels.get(L_ROLE) == CANARY
            url = (f"http://127.0.0.1:{port}" if canary else self._url(port)) + spec.health_path
            on_event(DeployPhase(phase="probe", detail=url))
            result = wait_healthy(url, timeout=timeout, check_alive=lambda: _death(container))
        if result.healthy:
            return
        tail = self._log_tail(container, 20)
        self._remove([_Rev.of(container)])
        if rolled_back_to:
            on_event(DeployPhase(phase="rollback", detail=f"{rolled_back_to} keeps serving"))
        raise HealthCheckFailed(
            f"revision r{container.labels.get(L_REVISION)} of {spec.name!r} is not healthy: "
            f"{result.reason} (probe {spec.health_path} on container port {spec.port})",
            log_tail=tail,
            rolled_back_to=rolled_back_to,
            fix="check that the app listens on 0.0.0.0:"
            f"{spec.port} and answers {spec.health_path}; the log lines above show why not",
        )

    @staticmethod
    def _published_port(container: Container, port: int) -> int | None:
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{port}/tcp"
        )
        return int(bindings[0]["HostPort"]) if bindings else None

    def _restore(self, previous: _Rev | None) -> None:
        """Start the previous revision again after a failed switch."""
        if previous is None:
            return
        with _docker_errors(f"restoring {previous.id}"):
            previous.container.start()

    def _remove(self, revisions: list[_Rev]) -> None:
        from docker.errors import NotFound

        for rev in revisions:
            with _docker_errors(f"removing {rev.id}"), contextlib.suppress(NotFound):
                rev.container.remove(force=True)

    def _prune(self, service: str) -> None:
        """Keep the serving revision and the newest ``keep_revisions`` stopped ones."""
        standby = [r for r in self._revisions(service) if not r.running]
        self._remove(standby[self._settings.keep_revisions :])

    def _deployment(
        self, service: str, rev: _Rev, *, changed: bool, previous: str | None
    ) -> Deployment:
        return Deployment(
            service=service,
            revision=rev.id,
            image=rev.image,
            digest=rev.digest,
            url=self._url(rev.host_port),
            changed=changed,
            previous=previous,
        )

    # -- day-2 operations ----------------------------------------------------------------

    def status(self, service: str) -> ServiceStatus | None:
        revisions = self._revisions(service)
        if not revisions:
            return None
        serving = self._serving(revisions)
        listed = [
            Revision(
                number=r.number,
                native_id=r.container.name,
                image=r.image,
                digest=r.digest,
                state="serving" if r is serving else ("standby" if not r.running else "failed"),
                created=r.created,
                url=self._url(r.host_port) if r is serving else None,
            )
            for r in revisions
            if r.role == SERVING
        ]
        current = next((r for r in listed if r.state == "serving"), None)
        return ServiceStatus(
            service=service,
            url=current.url if current else None,
            current=current,
            revisions=listed,
        )

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        revisions = [r for r in self._revisions(service) if r.role == SERVING]
        if not revisions:
            raise ServiceNotFoundError(
                f"service {service!r} is not deployed on the local target",
                fix="ship it first, or check the name with `cloudship status`",
            )
        serving = self._serving(revisions)
        listed = self.status(service)
        assert listed is not None, "it has revisions"
        picked = choose_rollback(service, listed.revisions, to)
        chosen = next(r for r in revisions if r.number == picked.number)
        if serving is not None and chosen.number == serving.number:
            return self._deployment(service, serving, changed=False, previous=None)
        on_event(DeployPhase(phase="rollback", detail=f"{chosen.id}"))
        if serving is not None:
            with _docker_errors(f"stopping {serving.id}"):
                serving.container.stop(timeout=10)
        with _docker_errors(f"starting {chosen.id}"):
            chosen.container.start()
        url = self._url(chosen.host_port) + chosen.health_path
        result = wait_healthy(url, timeout=timeout, check_alive=lambda: _death(chosen.container))
        if not result.healthy:
            tail = self._log_tail(chosen.container, 20)
            with _docker_errors(f"stopping {chosen.id}"):
                chosen.container.stop(timeout=5)
            self._restore(serving)
            raise HealthCheckFailed(
                f"rollback of {service!r} to {chosen.id} failed: {result.reason}",
                log_tail=tail,
                rolled_back_to=serving.id if serving else None,
            )
        return self._deployment(
            service, chosen, changed=True, previous=serving.id if serving else None
        )

    def logs(self, service: str, tail: int = 100) -> list[str]:
        revisions = self._revisions(service)
        rev = self._serving(revisions) or next(iter(revisions), None)
        if rev is None:
            raise ServiceNotFoundError(
                f"service {service!r} is not deployed on the local target",
                fix="check the name with `cloudship status`",
            )
        return self._log_tail(rev.container, tail)

    @staticmethod
    def _log_tail(container: Container, tail: int) -> list[str]:
        from docker.errors import APIError

        try:
            raw: bytes = container.logs(tail=tail)
        except APIError:
            return []
        return raw.decode("utf-8", "replace").splitlines()

    def services(self) -> list[str]:
        """Services of this project: containers labelled with a service name."""
        return sorted({(c.get("Labels") or {})[L_SERVICE] for c in self._listing(L_SERVICE)})

    def follow_logs(self, service: str, tail: int = 100, *, stop: threading.Event) -> Iterator[str]:
        """``docker logs -f`` of the serving revision; across a deploy, on to the next one."""
        following: str | None = None
        back: int | str = tail
        while not stop.is_set():
            revisions = self._revisions(service)
            rev = self._serving(revisions) or (None if following else next(iter(revisions), None))
            if rev is None or rev.container.id == following:
                stop.wait(0.5)  # between two revisions (a switch), or the service is gone
                continue
            if following is not None:
                yield f"--- {service} {rev.id} is serving now ---"
            following = rev.container.id
            with _docker_errors(f"reading the logs of {rev.id}"):
                stream = rev.container.logs(stream=True, follow=True, tail=back)
            # the stream blocks until a line comes: close it from a watcher once stop is set
            closer = threading.Thread(target=_close_on(stop, stream), daemon=True)
            closer.start()
            buffered = b""
            for chunk in stream:
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
                if stop.is_set():
                    break
            back = "all"  # the next revision's log from its start

    def destroy(self, service: str) -> None:
        self._remove(self._revisions(service))


def _close_on(stop: threading.Event, stream: Any) -> Callable[[], None]:
    def wait_and_close() -> None:
        stop.wait()
        with contextlib.suppress(Exception):
            stream.close()

    return wait_and_close
