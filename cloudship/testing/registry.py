"""A throw-away Docker Registry v2 on a free loopback port, for tests.

It runs the ``docker-registry`` binary (Debian's package of distribution) when installed, else
the ``registry:2`` image on the local engine. With ``users`` it requires HTTP Basic auth from an
htpasswd file (bcrypt, the only format the registry accepts) — e.g. the exact login moto's ECR
token decodes to. Storage lives in a temporary folder removed on ``stop()``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx

from cloudship.errors import RegistryError
from cloudship.registry_config import registry_config

_HTPASSWD = """\
auth:
  htpasswd:
    realm: cloudship-test
    path: {path}
"""


#: ``host:port`` of every registry (and registry proxy) a test started in this process: the
#: images tagged with these are this process's own, to remove from a shared engine after a test
STARTED_HERE: set[str] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def loopback_listener() -> socket.socket:
    """A loopback socket bound to a port the OS picked (port 0) and listening.

    In-process servers that must know their URL before they start serving take one of these
    in ``__init__``: the port is theirs from that moment, so no other process can take it
    between choosing and binding (as it could with ``free_port()``, which only the external
    registry binary, which binds by itself, still needs)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def http_server_on(
    sock: socket.socket, handler: type[BaseHTTPRequestHandler]
) -> ThreadingHTTPServer:
    """A threading HTTP server serving on ``sock`` (from ``loopback_listener``), with Nagle
    disabled: ``BaseHTTPRequestHandler`` writes headers and body separately, and without
    ``TCP_NODELAY`` each answer waits ~40 ms for the client's delayed ACK."""
    host, port = sock.getsockname()[:2]
    if not handler.disable_nagle_algorithm:
        handler = type(handler.__name__, (handler,), {"disable_nagle_algorithm": True})
    server = ThreadingHTTPServer((host, port), handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = True
    return server


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:{hashed}"


class ThrowawayRegistry:
    """``with ThrowawayRegistry(users={"u": "p"}) as reg: reg.address  # 127.0.0.1:PORT``"""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._folder = Path(tempfile.mkdtemp(prefix="cloudship-registry-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._container_id: str | None = None

    def __enter__(self) -> ThrowawayRegistry:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _config(self, storage: str, addr: str, htpasswd: str | None) -> str:
        auth = _HTPASSWD.format(path=htpasswd) if htpasswd else ""
        return registry_config(storage, addr, secret="cloudship-test-only", auth=auth)

    def start(self) -> None:
        STARTED_HERE.add(self.address)
        if self.users:
            lines = [htpasswd_line(user, pw) for user, pw in self.users.items()]
            (self._folder / "htpasswd").write_text("\n".join(lines) + "\n")
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary:
            self._start_binary(binary)
        else:
            self._start_container()
        self._wait()

    def _start_binary(self, binary: str) -> None:
        storage = self._folder / "storage"
        storage.mkdir()
        htpasswd = str(self._folder / "htpasswd") if self.users else None
        config = self._folder / "config.yml"
        config.write_text(self._config(str(storage), self.address, htpasswd))
        log = (self._folder / "registry.log").open("wb")
        self._process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _start_container(self) -> None:
        import docker

        client = docker.from_env()
        htpasswd = "/auth/htpasswd" if self.users else None
        config = self._folder / "config.yml"
        config.write_text(self._config("/var/lib/registry", "0.0.0.0:5000", htpasswd))
        container = client.containers.run(
            "registry:2",
            ["/etc/docker/registry/config.yml"],
            detach=True,
            ports={"5000/tcp": ("127.0.0.1", self.port)},
            volumes={
                str(config): {"bind": "/etc/docker/registry/config.yml", "mode": "ro"},
                str(self._folder): {"bind": "/auth", "mode": "ro"},
            },
            labels={"org.cloudship.testing": "registry"},
        )
        self._container_id = container.id

    def _wait(self, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                status = httpx.get(f"http://{self.address}/v2/", timeout=1.0).status_code
                if status in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log = self._folder / "registry.log"
        text = log.read_text()[-2000:] if log.exists() else ""
        self.stop()
        raise RegistryError(f"test registry at {self.address} did not start:\n{text}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        if self._container_id is not None:
            import docker

            docker.from_env().containers.get(self._container_id).remove(force=True)
            self._container_id = None
        shutil.rmtree(self._folder, ignore_errors=True)
