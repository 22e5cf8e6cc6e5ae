"""Pull-based ``docker run`` on the local engine, health-gated, switched without downtime.

Each revision is one container labelled with its service, revision, digest and spec
fingerprint, on the ``cloudship`` network and published on a loopback port only. The service's
stable host port belongs to its proxy container (nginx, see :mod:`cloudship_local.proxy`). A
deploy:

1. takes the service's lock (:mod:`cloudship_local.lock`): one ship per service at a time;
2. tidies what an interrupted ship left (an unproven revision, a revision still running
   beside the serving one);
3. pulls ``repo@sha256:…`` (what runs is what the registry holds), starts the new revision and
   probes it on its loopback port while the old one keeps serving; meanwhile it arms the
   proxy (a graceful reload to a configuration that serves the new revision once a flag file
   exists; a first deploy starts its proxy here, answering 503 until then);
4. creates the flag file, which points every proxy worker at that same container at once,
   confirms through the stable port that it answers, and returns;
5. after the return, on a thread that still holds the lock: lets the old connections drain,
   stops the old revision (kept for rollback) and prunes (:class:`_Retirements`).

Whatever stops a ship (an error, SIGINT, SIGTERM, SIGKILL, a lost engine), the proxy serves
either the previous revision or the new one after it passed its gate: never nothing and never
an unproven one. Rollback switches back the same way.

Services deployed before the proxy existed (their revision publishes the stable port itself)
move behind a proxy on their next ship; that one switch has a gap of well under a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cloudship.config import data_dir
from cloudship.deadline import Deadline
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
from cloudship.images import ImageRef, normalize_platform
from cloudship.probe import ProbeResult, wait_healthy
from cloudship.registry import RegistryAuth
from cloudship.revisions import choose_rollback, is_unchanged
from cloudship.runtime import (
    Deployment,
    Plan,
    Revision,
    Runtime,
    ServiceSpec,
    ServiceStatus,
    memory_bytes,
)
from cloudship_local import proxy
from cloudship_local.lock import if_free, lock_path, service_lock
from cloudship_local.proxy import ProxyState
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
#: "proxy" on revisions that serve through the proxy; absent on those from before it
L_LAYOUT = PREFIX + "layout"

SERVING, CANARY, PROXY = "serving", "canary", "proxy"
_PORT_RANGE = (20000, 29999)
#: how long the proxy may take to answer for a new revision after a reload
_CONFIRM_SECONDS = 15.0
#: how long the health gate polls at its shortest interval before it backs off
_FAST_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class _Rev:
    """A revision container as read back from its labels."""

    container: Container
    name: str
    state: str
    number: int
    role: str
    digest: str
    image: str
    fingerprint: str
    host_port: int
    health_path: str
    created: datetime | None
    behind_proxy: bool

    @property
    def id(self) -> str:
        return f"r{self.number}"

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")

    @classmethod
    def read(cls, container: Container, name: str, labels: dict[str, str], state: str) -> _Rev:
        created = labels.get(L_CREATED)
        return cls(
            container=container,
            name=name.lstrip("/"),
            state=state,
            number=int(labels.get(L_REVISION, "0")),
            role=labels.get(L_ROLE, SERVING),
            digest=labels.get(L_DIGEST, ""),
            image=labels.get(L_IMAGE, ""),
            fingerprint=labels.get(L_FINGERPRINT, ""),
            host_port=int(labels.get(L_PORT, "0")),
            health_path=labels.get(L_HEALTH, "/"),
            created=datetime.fromisoformat(created) if created else None,
            behind_proxy=labels.get(L_LAYOUT) == PROXY,
        )

    @classmethod
    def of(cls, container: Container) -> _Rev:
        """From a fully inspected container (one this runtime just started)."""
        return cls.read(container, container.name or "", container.labels, container.status)


@dataclass
class _View:
    """One service as the engine has it: revisions, legacy canaries, the proxy and its state."""

    revisions: list[_Rev] = field(default_factory=list)  # newest first
    canaries: list[_Rev] = field(default_factory=list)
    proxy: Container | None = None
    proxy_port: int | None = None
    proxy_running: bool = False
    state: ProxyState | None = None

    @property
    def serving(self) -> _Rev | None:
        if self.state is not None:
            return next((r for r in self.revisions if r.number == self.state.revision), None)
        # Before the proxy: the running revision that publishes the stable port itself.
        return next((r for r in self.revisions if r.running and not r.behind_proxy), None)

    def proven(self, rev: _Rev) -> bool:
        """Passed its health gate (so it may serve again)."""
        if self.state is not None:
            return rev.number in self.state.proven
        return not rev.behind_proxy  # before the proxy, only proven revisions were kept

    @property
    def next_number(self) -> int:
        return (self.revisions[0].number + 1) if self.revisions else 1


def _death(container: Container) -> str | None:
    """Why ``container`` can no longer become healthy, or None while it still might."""
    with _docker_errors("watching the new revision"):
        container.reload()
    state = container.attrs.get("State", {})
    if state.get("Restarting") or int(container.attrs.get("RestartCount", 0)) > 0:
        return f"the container is crash-looping (exit code {state.get('ExitCode')})"
    if state.get("Status") in ("exited", "dead"):
        return f"the container exited with code {state.get('ExitCode')}"
    return None


@dataclass(frozen=True)
class _EarlyProxy:
    """The proxy being prepared beside the gate (started, or armed): the container and the
    stable port once ready, and the armed state."""

    started: Future[tuple[Container, int]]
    armed: ProxyState


class _Retirements:
    """The ends of this process's ships that go on after ``deploy`` returned: the old
    revision's drain and stop (a graceful stop is the app's own time, 0.3 s for uvicorn,
    up to docker's 10 s), each on a thread that holds the service's lock until it is done.

    The threads are not daemons, so the interpreter joins them before it exits (a script's
    last ship still stops what it replaced); a ship killed meanwhile leaves the old revision
    running beside the new one, which the next ship's (or ``status``'s) tidy stops. A later
    deploy, rollback or destroy of the service in this process waits for its thread first
    (:meth:`wait_for`): the lock is our own, and a rollback must not start the revision a
    retirement is about to stop."""

    def __init__(self) -> None:
        self._threads: dict[Path, threading.Thread] = {}
        self._guard = threading.Lock()

    def start(self, lock: Path, held: contextlib.ExitStack, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                with held, contextlib.suppress(CloudshipError):
                    work()  # a failure here is the next ship's tidy's to finish
            finally:
                with self._guard:
                    if self._threads.get(lock) is threading.current_thread():
                        del self._threads[lock]

        thread = threading.Thread(target=run, name=f"cloudship-retire-{lock.stem}")
        with self._guard:
            self._threads[lock] = thread
        thread.start()

    def busy(self, lock: Path) -> bool:
        with self._guard:
            return lock in self._threads

    def wait_for(self, lock: Path) -> None:
        with self._guard:
            thread = self._threads.get(lock)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def wait_all(self) -> None:
        """Join every retirement under way (tests that count running containers)."""
        with self._guard:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()


_retiring = _Retirements()
#: for tests and scripts that look at the engine right after a ship
wait_for_retirements = _retiring.wait_all


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
        """The engine's own platform plus each one it emulates (a binfmt handler with the F
        flag, e.g. qemu-user-static's arm64): ``cloudship plan`` names the one it builds for.
        With the ``platform`` setting, that one only, if the engine can run it."""
        runs = frozenset({self._engine.host_platform}) | self._engine.emulated_platforms()
        if self._settings.platform is None:
            return runs
        wanted = normalize_platform(self._settings.platform)
        if wanted not in runs:
            raise ConfigError(
                f"local setting platform={wanted!r}: this engine runs {', '.join(sorted(runs))}",
                fix="enable emulation for it (scripts/dev-env enables arm64: qemu-user-static), "
                "or drop the setting",
            )
        return frozenset({wanted})

    def validate(self, spec: ServiceSpec) -> None:
        """One replica only, and the service's host port must be free (or already ours)."""
        self._check_replicas(spec)
        self._host_port(spec, self._view(spec.name, state=False))

    @staticmethod
    def _check_replicas(spec: ServiceSpec) -> None:
        if spec.replicas != 1 or (spec.max_replicas or 1) != 1:
            raise ConfigError(
                f"the local target runs exactly one replica (asked for {spec.replicas})",
                fix="use replicas=1 for the local target",
            )

    # -- locking -------------------------------------------------------------------------

    @functools.cached_property
    def _engine_id(self) -> str:
        """The engine's own id: one lock per engine however its address is spelled."""
        with _docker_errors("asking the engine for its id"):
            info = self._engine.client.info()
        return str(info.get("ID") or info.get("Name") or "default")

    def _lock_file(self, service: str) -> Path:
        folder = self._settings.data_dir or data_dir()
        return lock_path(folder, self._engine_id, self._project, service)

    @contextlib.contextmanager
    def _locked(self, service: str, what: str, on_event: EventSink) -> Iterator[None]:
        path = self._lock_file(service)
        # A ship of this process may still be retiring the revision it replaced (it holds
        # the lock until then): wait for it, whatever lock_wait says; it is our own work.
        _retiring.wait_for(path)
        with service_lock(
            path,
            service=service,
            what=what,
            wait=self._settings.lock_wait,
            on_event=on_event,
        ):
            yield

    # -- reading state -------------------------------------------------------------------

    def _listing(self, label: str) -> list[dict[str, Any]]:
        # The low-level list: docker-py's containers.list() inspects each container again.
        with _docker_errors("listing cloudship containers"):
            found: list[dict[str, Any]] = self._engine.client.api.containers(
                all=True, filters={"label": [label, f"{L_PROJECT}={self._project}"]}
            )
        return found

    def _view(self, service: str, *, state: bool = True) -> _View:
        """The service's containers and its proxy's state. ``state=False`` skips reading the
        state of a running proxy (one engine call fewer): enough for the port checks, which
        take a running proxy's port from its label."""
        client = self._engine.client
        view = _View()
        for entry in self._listing(f"{L_SERVICE}={service}"):
            labels = entry.get("Labels") or {}
            container = client.containers.prepare_model({"Id": entry["Id"]})
            name = (entry.get("Names") or [""])[0]
            if labels.get(L_ROLE) == PROXY:
                view.proxy = container
                view.proxy_port = int(labels.get(L_PORT, "0"))
                view.proxy_running = entry.get("State") in ("running", "restarting")
                continue
            rev = _Rev.read(container, name, labels, entry.get("State", ""))
            (view.canaries if rev.role == CANARY else view.revisions).append(rev)
        view.revisions.sort(key=lambda r: r.number, reverse=True)
        if view.proxy is not None and (state or not view.proxy_running):
            with _docker_errors(f"reading the proxy of {service}"):
                view.state = proxy.read_state(view.proxy)
        return view

    def _url(self, port: int) -> str:
        host = self._settings.bind
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"

    def _tidy(self, service: str, view: _View) -> _View:
        """Clean up after an interrupted ship (call with the lock held): remove revisions that
        never passed their gate and stop proven ones that still run beside the serving one."""
        serving = view.serving
        stale_proxy = view.proxy is not None and view.state is None
        if stale_proxy:
            # A proxy created but never configured: its ship died before the first switch.
            assert view.proxy is not None
            self._remove_containers([view.proxy])
        unproven = [r for r in view.revisions if r is not serving and not view.proven(r)]
        self._remove(view.canaries + unproven)
        for rev in view.revisions:
            if rev is not serving and rev.running and view.proven(rev) and rev.behind_proxy:
                with _docker_errors(f"stopping {rev.id} of {service}"):
                    rev.container.stop(timeout=10)
        if unproven or view.canaries or stale_proxy:
            return self._view(service)
        return view

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

    def _owned_port(self, view: _View) -> int | None:
        """The stable port this service holds right now (its proxy's, or a legacy revision's)."""
        if view.proxy is not None and view.proxy_running:
            return view.proxy_port
        legacy = view.serving
        return legacy.host_port if legacy is not None and not legacy.behind_proxy else None

    def _host_port(self, spec: ServiceSpec, view: _View) -> int:
        """The service's stable host port: configured, else the one it already has, else one
        derived from its name (stable across destroy/ship), moving up past taken ports."""
        if self._settings.host_port:
            port = self._settings.host_port
        elif view.proxy_port:
            port = view.proxy_port
        elif view.revisions:
            port = (view.serving or view.revisions[0]).host_port
        else:
            low, high = _PORT_RANGE
            seed = f"{self._project}/{spec.name}".encode()
            start = low + int(hashlib.sha256(seed).hexdigest(), 16) % (high - low)
            claimed = self._claimed_ports()
            for candidate in range(start, start + 200):
                if candidate not in claimed and self._port_free(candidate):
                    return candidate
            raise PortInUseError(f"no free host port near {start} for service {spec.name!r}")
        if self._owned_port(view) != port and not self._port_free(port):
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
        view = self._view(spec.name)
        serving = view.serving
        current = serving.digest if serving else None
        wanted = spec.fingerprint(str(image))
        if serving and image.digest and is_unchanged(serving.fingerprint, wanted, force=False):
            return Plan(
                service=spec.name,
                image=str(image),
                changed=False,
                current_digest=current,
                actions=[f"nothing to do: {serving.id} already runs this image and spec"],
            )
        number = view.next_number
        port = self._host_port(spec, view)
        actions = [
            f"pull {image} from the registry",
            f"start r{number} on a loopback port and probe {spec.health_path}",
        ]
        if serving:
            actions += [
                f"switch the proxy on port {port} to r{number} (graceful reload: no connection "
                "refused, no restart)",
                f"stop {serving.id} once its connections drain (kept for rollback)",
            ]
        else:
            actions.append(f"serve r{number} through a proxy on port {port}")
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
        deadline = Deadline(timeout)
        fingerprint = spec.fingerprint(str(image))
        if _retiring.busy(self._lock_file(spec.name)):
            # Our own last ship of it is retiring the revision it replaced: that changes
            # nothing about what serves, so an unchanged ship need not wait for it.
            view = self._view(spec.name)
            serving = view.serving
            if serving and is_unchanged(serving.fingerprint, fingerprint, force=force):
                return self._unchanged(spec.name, view, serving, on_event)
        with contextlib.ExitStack() as held:
            held.enter_context(self._locked(spec.name, f"ship of {image}", on_event))
            view = self._tidy(spec.name, self._view(spec.name))
            serving = view.serving
            if serving and is_unchanged(serving.fingerprint, fingerprint, force=force):
                return self._unchanged(spec.name, view, serving, on_event)

            port = self._host_port(spec, view)
            number = view.next_number
            with _docker_errors("preparing the local proxy"):
                proxy.ensure_image(self._engine, on_event)
                proxy.ensure_network(self._engine)
            on_event(DeployPhase(phase="pull", detail=str(image)))
            self._engine.pull(image, pull, deadline=deadline)
            deadline.check(f"deploy of {spec.name}")

            on_event(DeployPhase(phase="start", detail=f"r{number} on a loopback port"))
            early = self._start_proxy_early(spec, view, number, port)
            try:
                new = self._run(spec, image, number, fingerprint, port)
            except BaseException:
                self._drop_early_proxy(early, view)
                raise
            try:
                self._gate(
                    new,
                    spec,
                    deadline,
                    rolled_back_to=serving.id if serving else None,
                    on_event=on_event,
                )
                port, proxy_container = self._switch(
                    spec, view, _Rev.of(new), port, deadline, on_event, early=early
                )
            except BaseException:
                # SIGINT, a failed switch, a lost engine: unless the proxy already serves it
                # (it passed its gate), the new revision must not stay behind, nor a proxy
                # started for it.
                self._drop_early_proxy(early, view)
                self._discard_unless_serving(spec.name, new)
                raise
            on_event(DeployPhase(phase="done", detail=f"r{number} serves {self._url(port)}"))
            # The new revision serves: what is left (the old one's connections drain, then it
            # stops; old standbys are pruned) goes on after the ship returns, still under the
            # service's lock, on a thread the interpreter joins before it exits.
            _retiring.start(
                self._lock_file(spec.name),
                held.pop_all(),
                functools.partial(
                    self._retire,
                    view,
                    proxy_container,
                    settle=early.armed.promoted() if early else None,
                ),
            )
            return self._deployment(
                spec.name,
                _Rev.of(new),
                changed=True,
                previous=serving.id if serving else None,
                port=port,
            )

    def _unchanged(
        self, service: str, view: _View, serving: _Rev, on_event: EventSink
    ) -> Deployment:
        on_event(DeployPhase(phase="unchanged", detail=f"{serving.id} already serves it"))
        return self._deployment(
            service,
            serving,
            changed=False,
            previous=None,
            port=view.proxy_port or serving.host_port,
        )

    def _start_proxy_early(
        self, spec: ServiceSpec, view: _View, number: int, port: int
    ) -> _EarlyProxy | None:
        """Prepare the proxy on a thread while the new revision starts and is gated, so that
        passing the gate only has to create a flag file (``ProxyState`` explains arming):

        - a first deploy: start the proxy (a container start is ~0.3 s of the engine's
          time), armed with nothing active: it answers 503 until the gate passes;
        - a running proxy: arm it with a graceful reload, which returns once only workers
          with the armed configuration accept (nginx's old ones accept for 100 ms more).

        Either way the stable port never serves an unproven revision. None when the proxy
        is stopped, or a revision from before the proxy holds the stable port until the
        switch (those switch the slow way)."""
        legacy = view.serving
        name = self._name(spec.name, f"r{number}")
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloudship-proxy")
        try:
            if view.proxy is not None and view.proxy_running and view.state is not None:
                armed = view.state.armed(name, number, spec.port)
                started = pool.submit(self._arm, view.proxy, armed, port)
            elif view.proxy is None and not (legacy is not None and legacy.running):
                earlier = frozenset(r.number for r in view.revisions if view.proven(r))
                armed = ProxyState("", 0, 0, earlier).armed(name, number, spec.port)
                started = pool.submit(
                    self._start_proxy, spec.name, port, armed, derived=not view.revisions
                )
            else:
                return None
        finally:
            pool.shutdown(wait=False)
        return _EarlyProxy(started, armed)

    def _arm(self, container: Container, armed: ProxyState, port: int) -> tuple[Container, int]:
        with _docker_errors("arming the proxy for the new revision"):
            proxy.apply(container, armed)  # returns once only armed workers accept
        return container, port

    def _drop_early_proxy(self, early: _EarlyProxy | None, view: _View) -> None:
        """After a failed deploy: wait for the proxy's preparation; then remove a first
        deploy's proxy, or disarm a running one, unless its candidate already serves (the
        gate passed and the failure came later)."""
        if early is None:
            return
        with contextlib.suppress(Exception):  # its own failure is the deploy's to report
            container, _ = early.started.result()
            with contextlib.suppress(CloudshipError), _docker_errors("reading the proxy"):
                now = proxy.read_state(container)
                if view.proxy is None and now is None:  # a first deploy's own proxy
                    self._remove_containers([container])
                elif view.state is not None and now == view.state:  # armed, not switched
                    proxy.apply(container, view.state)

    def _discard_unless_serving(self, service: str, container: Container) -> None:
        with contextlib.suppress(CloudshipError):
            view = self._view(service)
            if view.serving is None or view.serving.container.id != container.id:
                self._remove_containers([container])

    def _switch(
        self,
        spec: ServiceSpec,
        view: _View,
        new: _Rev,
        port: int,
        deadline: Deadline,
        on_event: EventSink,
        *,
        early: _EarlyProxy | None = None,
    ) -> tuple[int, Container]:
        """Serve ``new`` (proven) through the proxy. Returns the stable port (a derived one
        may move up if a concurrent program took it) and the proxy container. What served
        before keeps running until :meth:`_retire` (its connections drain first). ``early``:
        the proxy a first deploy started beside the gate, which now only has to be told."""
        old = view.serving
        earlier = frozenset(r.number for r in view.revisions if view.proven(r))
        base = view.state or ProxyState(new.name, new.number, spec.port, earlier)
        state = base.to(new.name, new.number, spec.port)
        if early is not None:
            container, port = early.started.result()
            with _docker_errors(f"switching the proxy of {spec.name} to {new.id}"):
                proxy.serve_candidate(container, new.number)
        elif view.proxy is None:
            legacy = old if old is not None and old.running else None
            if legacy is not None:  # it publishes the stable port itself: free it, once
                with _docker_errors(f"stopping {legacy.id} of {spec.name}"):
                    legacy.container.stop(timeout=10)
            try:
                container, port = self._start_proxy(
                    spec.name, port, state, derived=not view.revisions
                )
            except BaseException:
                if legacy is not None:
                    with contextlib.suppress(CloudshipError), _docker_errors("restoring"):
                        legacy.container.start()
                raise
        else:
            container = view.proxy
            with _docker_errors(f"switching the proxy of {spec.name} to {new.id}"):
                if view.proxy_running:
                    proxy.apply(container, state)
                else:  # stopped by hand, or the engine restarted without it: no reload to do
                    proxy.write_initial(container, state)
                    container.start()
        on_event(DeployPhase(phase="switch", detail=f"{new.id} behind {self._url(port)}"))
        try:
            self._confirm(self._url(port) + spec.health_path, new.id, deadline)
        except CloudshipError:
            if view.state is not None and old is not None:
                with contextlib.suppress(CloudshipError), _docker_errors("switching back"):
                    proxy.apply(container, view.state)
            raise
        with _docker_errors(f"starting {new.id} with the engine"):
            new.container.update(restart_policy={"Name": "unless-stopped"})
        return port, container

    def _retire(
        self,
        view: _View,
        proxy_container: Container,
        *,
        prune: bool = True,
        settle: ProxyState | None = None,
    ) -> None:
        """After a switch: let the revision that served before finish the requests it holds
        (the proxy's old workers drain), stop it (kept for rollback) and prune old standbys.
        ``view`` is the service as the deploy read it before the switch (the lock is still
        held, so nothing else changed it since): no second listing of the engine.
        ``settle``: the state an armed proxy now serves, to replace its armed configuration
        (a graceful reload to the same revision), after which its flag files go."""
        old = view.serving
        stopped: _Rev | None = None
        stop_old = old is not None and old.behind_proxy and old.running and view.proxy is not None
        with _docker_errors("settling the proxy after the switch"):
            if settle is not None:
                proxy.apply(proxy_container, settle)
            if settle is not None or stop_old:
                proxy.wait_drained(proxy_container)
            if stop_old:
                assert old is not None
                old.container.stop(timeout=10)
                stopped = old
            if settle is not None:
                proxy.forget_flags(proxy_container)
        if old is not None and old.running and not old.behind_proxy:
            stopped = old  # a legacy revision: the switch stopped it to free the stable port
        if prune:
            self._prune(view, stopped)

    def _confirm(self, url: str, revision: str, deadline: Deadline) -> None:
        """Wait until the stable port answers for ``revision`` (the reload has taken effect)."""
        import httpx

        seconds = min(max(deadline.remaining(), 3.0), _CONFIRM_SECONDS)
        give_up = time.monotonic() + seconds
        last = "no answer"
        from cloudship.distribution import system_ssl_context

        # A fresh connection per try: a kept-alive one stays with the nginx worker that
        # accepted it, and an old worker keeps answering on it for the old revision while
        # the new workers already serve every new connection. The shared SSL context: httpx
        # builds a new one (~20 ms) per client otherwise, even for this plain-http URL.
        with httpx.Client(
            timeout=2.0,
            verify=system_ssl_context(),
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            while time.monotonic() < give_up:
                try:
                    response = client.get(url)
                    seen = response.headers.get(proxy.REVISION_HEADER)
                    if seen == revision and response.status_code < 400:
                        return
                    last = f"HTTP {response.status_code} from {seen or 'no revision'}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.02)
        raise DeployError(
            f"the proxy did not serve {revision} at {url} within {seconds:.0f} s ({last})",
            fix="see `docker logs` of the service's -proxy container",
        )

    def _start_proxy(
        self, service: str, port: int, state: ProxyState, *, derived: bool
    ) -> tuple[Container, int]:
        """Create the service's proxy on ``port``. A port cloudship picked itself (first
        deploy, none configured) may be taken between the check and the start by a concurrent
        program: then the next free one is tried."""
        for _ in range(5):
            try:
                return self._run_proxy(service, port, state), port
            except PortInUseError:
                if not derived or self._settings.host_port:
                    raise
                claimed = self._claimed_ports()
                free = (p for p in range(port + 1, port + 200) if p not in claimed)
                port = next((p for p in free if self._port_free(p)), 0)
                if not port:
                    break
        raise PortInUseError(f"could not find a free host port for service {service!r}")

    def _name(self, service: str, suffix: str) -> str:
        prefix = "cloudship" if self._project == "default" else f"cloudship-{self._project}"
        return f"{prefix}-{service}-{suffix}"

    def _run_proxy(self, service: str, port: int, state: ProxyState) -> Container:
        name = self._name(service, "proxy")
        client = self._engine.client
        with _docker_errors(f"starting the proxy of {service} on port {port}"):
            self._remove_named(name)
            container: Container = client.containers.create(
                proxy.PROXY_IMAGE,
                name=name,
                detach=True,
                labels={
                    L_SERVICE: service,
                    L_PROJECT: self._project,
                    L_ROLE: PROXY,
                    L_PORT: str(port),
                    L_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
                },
                ports={f"{proxy.LISTEN}/tcp": (self._settings.bind, port)},
                network=proxy.NETWORK,
                restart_policy={"Name": "unless-stopped"},
            )
            try:
                proxy.write_initial(container, state)
                container.start()
            except BaseException:
                self._remove_named(name)
                raise
        return container

    def _run(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        number: int,
        fingerprint: str,
        stable_port: int,
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
            L_ROLE: SERVING,
            L_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
            L_HEALTH: spec.health_path,
            L_LAYOUT: PROXY,
        }
        options: dict[str, Any] = {}
        if spec.cpu:
            options["nano_cpus"] = int(spec.cpu * 1_000_000_000)
        if spec.memory:
            options["mem_limit"] = memory_bytes(spec.memory)
        name = self._name(spec.name, f"r{number}")
        client = self._engine.client
        with _docker_errors(f"starting revision r{number} of {spec.name}"):
            self._remove_named(name)  # left behind by an interrupted deploy
            try:
                # No restart policy until it serves: a crash during the gate is an exit the
                # gate sees at once, not a restart back-off to wait out.
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
                    # Loopback only, for cloudship's probe; the proxy reaches it by name.
                    ports={f"{spec.port}/tcp": ("127.0.0.1", None)},
                    network=proxy.NETWORK,
                    **options,
                )
            except BaseException:
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
        deadline: Deadline,
        *,
        rolled_back_to: str | None,
        on_event: EventSink,
        remove: bool = True,
    ) -> None:
        """Return when ``container`` answers its health probe on its loopback port; otherwise
        remove (or, ``remove=False``, stop) it and raise ``HealthCheckFailed`` with its last
        log lines and what it answered."""
        deadline.check(f"the health gate of {spec.name}")
        port = self._published_port(container, spec.port)
        if port is None:  # an app that dies at once never gets its port published
            reason = _death(container) or "the container has no published port"
            result = ProbeResult(False, reason, 0)
        else:
            url = f"http://127.0.0.1:{port}{spec.health_path}"
            revision = f"r{container.labels.get(L_REVISION)}"
            on_event(DeployPhase(phase="probe", detail=f"{revision} at {url}"))
            result = wait_healthy(
                url,
                timeout=deadline.remaining(),
                check_alive=lambda: _death(container),
                # On this machine: poll every 20 ms while most apps come up, and ask the
                # engine whether the container died every 0.1 s, not on every refusal.
                fast_for=_FAST_PROBE_SECONDS,
                alive_every=0.1,
                on_progress=lambda seen: on_event(
                    DeployPhase(phase="probe", detail=f"{revision} waiting, {seen}")
                ),
            )
        if result.healthy:
            return
        tail = self._log_tail(container, 20)
        if remove:
            self._remove_containers([container])
        else:
            with contextlib.suppress(CloudshipError), _docker_errors("stopping"):
                container.stop(timeout=5)
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
        with _docker_errors("inspecting the new revision"):
            container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{port}/tcp"
        )
        return int(bindings[0]["HostPort"]) if bindings else None

    def _remove(self, revisions: list[_Rev]) -> None:
        self._remove_containers([r.container for r in revisions])

    def _remove_containers(self, containers: list[Container]) -> None:
        from docker.errors import NotFound

        for container in containers:
            with _docker_errors("removing a container"), contextlib.suppress(NotFound):
                container.remove(force=True)

    def _prune(self, view: _View, stopped: _Rev | None) -> None:
        """Keep the serving revision and the newest ``keep_revisions`` stopped ones. ``view``
        is the service as the deploy read it before starting the new revision (with the lock
        held, so nothing else changed it since) and ``stopped`` the revision its retirement
        stopped: no second listing of the engine."""
        standby = [r for r in view.revisions if not r.running or r is stopped]
        self._remove(standby[self._settings.keep_revisions :])

    def _deployment(
        self,
        service: str,
        rev: _Rev,
        *,
        changed: bool,
        previous: str | None,
        port: int | None = None,
    ) -> Deployment:
        """``port``: the stable port, when the caller knows it (no second look at the engine)."""
        if port is None:
            view = self._view(service)
            port = view.proxy_port or rev.host_port
        return Deployment(
            service=service,
            revision=rev.id,
            image=rev.image,
            digest=rev.digest,
            url=self._url(port),
            changed=changed,
            previous=previous,
        )

    # -- day-2 operations ----------------------------------------------------------------

    def status(self, service: str) -> ServiceStatus | None:
        """What serves and the history. Leftovers of an interrupted ship are tidied first,
        unless a ship of the service is under way (then they are its work in progress). A
        retirement of this process's last ship of it is waited for: status after ship() in
        one script shows what that ship left, not a moment of it."""
        path = self._lock_file(service)
        _retiring.wait_for(path)
        view = self._view(service)
        with if_free(path) as free:
            if free:
                view = self._tidy(service, view)
        return self._status(service, view)

    def _status(self, service: str, view: _View) -> ServiceStatus | None:
        if not view.revisions:
            return None
        serving = view.serving
        url = self._url(view.proxy_port or (serving.host_port if serving else 0))
        listed = []
        state: Literal["serving", "standby", "failed"]
        for r in view.revisions:
            if r is serving:
                state = "serving"
            elif view.proven(r):
                state = "standby"
            elif r.running:
                continue  # a ship under way is proving it
            else:
                state = "failed"
            listed.append(
                Revision(
                    number=r.number,
                    native_id=r.name or r.container.id,
                    image=r.image,
                    digest=r.digest,
                    state=state,
                    created=r.created,
                    url=url if r is serving else None,
                )
            )
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
        deadline = Deadline(timeout)
        with self._locked(service, f"rollback to {to or 'the previous revision'}", on_event):
            view = self._tidy(service, self._view(service))
            listed = self._status(service, view)
            if listed is None:
                raise ServiceNotFoundError(
                    f"service {service!r} is not deployed on the local target",
                    fix="ship it first, or check the name with `cloudship status`",
                )
            serving = view.serving
            picked = choose_rollback(service, listed.revisions, to)
            chosen = next(r for r in view.revisions if r.number == picked.number)
            if serving is not None and chosen.number == serving.number:
                return self._deployment(service, serving, changed=False, previous=None)
            on_event(DeployPhase(phase="rollback", detail=chosen.id))
            if not chosen.behind_proxy:
                return self._rollback_legacy(service, serving, chosen, deadline)
            spec = ServiceSpec(
                name=service, port=self._container_port(chosen), health_path=chosen.health_path
            )
            with _docker_errors(f"starting {chosen.id} of {service}"):
                chosen.container.start()
            self._gate(
                chosen.container,
                spec,
                deadline,
                rolled_back_to=serving.id if serving else None,
                on_event=on_event,
                remove=False,
            )
            try:
                port = self._host_port(spec, view)
                _, proxy_container = self._switch(spec, view, chosen, port, deadline, on_event)
                self._retire(view, proxy_container, prune=False)
            except BaseException:
                with contextlib.suppress(CloudshipError):
                    now = self._view(service)
                    if now.serving is None or now.serving.number != chosen.number:
                        with _docker_errors("stopping"):
                            chosen.container.stop(timeout=5)
                raise
            return self._deployment(
                service, chosen, changed=True, previous=serving.id if serving else None
            )

    def _container_port(self, rev: _Rev) -> int:
        with _docker_errors(f"inspecting {rev.id}"):
            rev.container.reload()
        exposed = rev.container.attrs.get("HostConfig", {}).get("PortBindings") or {}
        first = next(iter(exposed), "80/tcp")
        return int(first.split("/")[0])

    def _rollback_legacy(
        self, service: str, serving: _Rev | None, chosen: _Rev, deadline: Deadline
    ) -> Deployment:
        """A revision from before the proxy publishes the stable port itself: stop, start."""
        if serving is not None:
            with _docker_errors(f"stopping {serving.id}"):
                serving.container.stop(timeout=10)
        with _docker_errors(f"starting {chosen.id}"):
            chosen.container.start()
        url = self._url(chosen.host_port) + chosen.health_path
        result = wait_healthy(
            url, timeout=deadline.remaining(), check_alive=lambda: _death(chosen.container)
        )
        if not result.healthy:
            tail = self._log_tail(chosen.container, 20)
            with _docker_errors(f"stopping {chosen.id}"):
                chosen.container.stop(timeout=5)
            if serving is not None:
                with _docker_errors(f"restoring {serving.id}"):
                    serving.container.start()
            raise HealthCheckFailed(
                f"rollback of {service!r} to {chosen.id} failed: {result.reason}",
                log_tail=tail,
                rolled_back_to=serving.id if serving else None,
            )
        return self._deployment(
            service, chosen, changed=True, previous=serving.id if serving else None
        )

    def logs(self, service: str, tail: int = 100) -> list[str]:
        view = self._view(service)
        rev = view.serving or next(iter(view.revisions), None)
        if rev is None:
            raise ServiceNotFoundError(
                f"service {service!r} is not deployed on the local target",
                fix="check the name with `cloudship status`",
            )
        return self._log_tail(rev.container, tail)

    @staticmethod
    def _log_tail(container: Container, tail: int) -> list[str]:
        import requests
        from docker.errors import APIError

        try:
            raw: bytes = container.logs(tail=tail)
        except (APIError, requests.exceptions.RequestException):
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
            view = self._view(service)
            rev = view.serving or (None if following else next(iter(view.revisions), None))
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
        with self._locked(service, f"destroy of {service}", ignore):
            view = self._view(service)
            self._remove(view.revisions + view.canaries)
            if view.proxy is not None:
                self._remove_containers([view.proxy])


def _close_on(stop: threading.Event, stream: Any) -> Callable[[], None]:
    def wait_and_close() -> None:
        stop.wait()
        with contextlib.suppress(Exception):
            stream.close()

    return wait_and_close
