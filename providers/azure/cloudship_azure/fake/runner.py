"""Runs the fake's revisions on the local Docker engine, behind a path-routing HTTP gateway.

Each active revision is one container (pulled from the registry it names, published on a
loopback port). Nothing resolves ``*.azurecontainerapps.io`` here, so instead of faking DNS the
gateway answers ``http://127.0.0.1:PORT/<fqdn>/<path>`` by forwarding to the container that
serves ``<fqdn>`` — the app's fqdn goes to the revision with the most traffic, a revision's
fqdn to that revision. Point the runtime's ``probe_url`` setting at ``gateway_url``.

A revision with ``minReplicas: 0`` starts scaled to zero: no container runs until a request for
it arrives, which the gateway holds while the container starts (Azure's HTTP scaler wakes a
revision on its first request: learn.microsoft.com/azure/container-apps/scale-app).

Internal ingress (``<app>.internal.<domain>``, ``<app>--<suffix>.internal.<domain>``) is
reachable only from inside the environment (learn.microsoft.com/azure/container-apps/
ingress-overview: internal ingress "is only accessible from other container apps in the
environment" or its virtual network): ``gateway_url`` refuses those hosts; ``inside_url`` is the
gateway as seen from a machine in the environment's network, and serves them.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docker import DockerClient

LABEL = "org.cloudship.fake-arm.revision"
#: the detail ``state()`` gives for a revision that runs no replica yet
SCALED_TO_ZERO = "scaled to zero"


@dataclass
class _Running:
    thread: threading.Thread
    container_id: str | None = None
    host_port: int | None = None
    error: str | None = None
    port: int = 0
    #: False while the revision is scaled to zero (no container yet)
    started: bool = False


class LocalEngineRunner:
    """``pull_auth(server)`` returns the docker-py ``auth_config`` the emulated platform pulls
    with (the token registry's service account in tests), or None for anonymous pulls."""

    def __init__(
        self,
        pull_auth: Callable[[str], dict[str, str] | None] = lambda server: None,
        client: DockerClient | None = None,
    ) -> None:
        import docker

        self._client = client or docker.from_env()
        self._pull_auth = pull_auth
        self._running: dict[str, _Running] = {}
        self._routes: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.port = self._serve(inside=False)
        self.gateway_url = f"http://127.0.0.1:{self.port}"
        self.inside_url = f"http://127.0.0.1:{self._serve(inside=True)}"

    def _serve(self, *, inside: bool) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(inside))
        port = int(server.server_address[1])
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._servers.append(server)
        return port

    # -- RevisionRunner ------------------------------------------------------------------

    def start(
        self, revision: str, image: str, port: int, env: dict[str, str], *, lazy: bool = False
    ) -> None:
        entry = _Running(thread=threading.Thread(target=lambda: None))
        entry.thread = threading.Thread(
            target=self._run, args=(entry, revision, image, port, env), daemon=True
        )
        entry.port = port
        with self._lock:
            self._running[revision] = entry
        if not lazy:
            entry.started = True
            entry.thread.start()

    def _wake(self, entry: _Running, timeout: float = 20.0) -> None:
        """Start a scaled-to-zero revision and wait until its app answers HTTP. A TCP
        connection is not enough: the engine's docker-proxy accepts on the published port
        before the app listens, then drops the connection (a flaky 502 in CI); Azure holds the
        request until the replica is up."""
        with self._lock:
            first = not entry.started
            entry.started = True
        if first:
            entry.thread.start()
        entry.thread.join(timeout)
        deadline = time.monotonic() + timeout
        while entry.host_port and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{entry.host_port}/", timeout=1):
                    return
            except urllib.error.HTTPError:  # any HTTP answer: the app is up
                return
            except OSError:
                time.sleep(0.05)

    def _run(
        self, entry: _Running, revision: str, image: str, port: int, env: dict[str, str]
    ) -> None:
        from docker.errors import DockerException

        server = image.split("/", 1)[0]
        try:
            repository, _, digest = image.partition("@")
            self._client.api.pull(
                repository, digest or "latest", auth_config=self._pull_auth(server)
            )
            container = self._client.containers.run(
                image,
                detach=True,
                environment=env,
                ports={f"{port}/tcp": ("127.0.0.1", None)},
                labels={LABEL: revision},
            )
            container.reload()
            binding = (container.ports.get(f"{port}/tcp") or [{}])[0]
            entry.container_id = container.id
            entry.host_port = int(binding["HostPort"]) if binding.get("HostPort") else None
        except DockerException as exc:
            entry.error = f"Failed to pull or start image '{image}': {exc}"

    def state(self, revision: str) -> tuple[str, str]:
        from docker.errors import NotFound

        entry = self._running.get(revision)
        if entry is not None and not entry.started:
            return "Running", SCALED_TO_ZERO
        if entry is None or entry.thread.is_alive():
            return "Provisioning", ""
        if entry.error:
            return "Failed", entry.error
        try:
            container = self._client.containers.get(entry.container_id)
        except NotFound:
            return "Failed", "the container is gone"
        if container.status in ("running", "created"):
            return "Running", ""
        code = container.attrs.get("State", {}).get("ExitCode")
        return "Failed", f"container exited with code {code}"

    def stop(self, revision: str) -> None:
        from docker.errors import NotFound

        with self._lock:
            entry = self._running.pop(revision, None)
        if entry is None:
            return
        if entry.started:
            entry.thread.join(timeout=60)
        if entry.container_id:
            with contextlib.suppress(NotFound):
                self._client.containers.get(entry.container_id).remove(force=True)

    def logs(self, revision: str, tail: int) -> list[str]:
        entry = self._running.get(revision)
        if entry is None or not entry.container_id:
            return []
        raw = self._client.containers.get(entry.container_id).logs(tail=tail)
        return bytes(raw).decode(errors="replace").splitlines()

    def route(self, fqdn: str, revision: str | None) -> None:
        with self._lock:
            self._routes[fqdn.lower()] = revision

    def close(self) -> None:
        for revision in list(self._running):
            self.stop(revision)
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- gateway -------------------------------------------------------------------------

    def _backend(self, fqdn: str) -> int | None:
        with self._lock:
            revision = self._routes.get(fqdn.lower())
            entry = self._running.get(revision) if revision else None
        if entry is not None and not (entry.started and entry.host_port):
            self._wake(entry)
        return entry.host_port if entry else None

    def _handler(self, inside: bool) -> type[BaseHTTPRequestHandler]:
        runner = self

        class Gateway(BaseHTTPRequestHandler):
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waits ~40 ms on Nagle + delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: probes poll several times a second."""

            def do_GET(self) -> None:
                fqdn, _, rest = self.path.lstrip("/").partition("/")
                if ".internal." in fqdn.lower() and not inside:
                    # outside the environment an internal name leads nowhere
                    self._answer(404, b"internal ingress is not reachable from outside.\n")
                    return
                port = runner._backend(fqdn)
                if port is None:
                    self._answer(404, b"Container App is stopped or does not exist.\n")
                    return
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/{rest}", timeout=5
                    ) as upstream:
                        self._answer(upstream.status, upstream.read())
                except urllib.error.HTTPError as exc:
                    self._answer(exc.code, exc.read())
                except OSError:
                    self._answer(502, b"upstream connect error\n")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Gateway
