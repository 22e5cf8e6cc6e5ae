"""The registry cloudship starts itself when nothing answers at the default local address.

Preferred: the ``registry:2`` image (when the engine has it or can pull it), run as the
container ``cloudship-registry``. Otherwise the ``docker-registry`` binary (Debian's package of
the same program), started detached. Either way it is bound to loopback only and keeps its
storage in ``<data dir>/registry/storage``, the layout ``scripts/dev-env`` uses too.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from cloudship.engine import Engine
from cloudship.errors import RegistryError
from cloudship.registry_config import registry_config

CONTAINER_NAME = "cloudship-registry"
IMAGE = "registry:2"


class EmbeddedRegistry:
    def __init__(self, engine: Engine, data_dir: Path, address: str) -> None:
        self._engine = engine
        self._folder = data_dir / "registry"
        self._address = address

    def start(self) -> str:
        """Start the registry and wait until it answers; return how it was started."""
        self._folder.mkdir(parents=True, exist_ok=True)
        how = self._start_container() or self._start_binary()
        if how is None:
            raise RegistryError(
                f"no registry answers at {self._address} and none could be started: the "
                f"{IMAGE} image cannot be pulled and the docker-registry binary is not installed",
                fix="run scripts/dev-env, or `apt-get install docker-registry`, or start any v2 "
                "registry and set CLOUDSHIP_LOCAL_REGISTRY",
            )
        self._wait()
        return how

    def _start_container(self) -> str | None:
        from docker.errors import APIError, ImageNotFound, NotFound

        client = self._engine.client
        try:
            existing = client.containers.get(CONTAINER_NAME)
        except NotFound:
            existing = None
        if existing is not None:
            existing.start()
            return f"restarted container {CONTAINER_NAME}"
        try:
            client.images.get(IMAGE)
        except ImageNotFound:
            try:
                client.images.pull(IMAGE)
            except APIError:
                return None  # no Docker Hub here: fall back to the binary
        host, port = self._address.rsplit(":", 1)
        storage = self._folder / "storage"
        storage.mkdir(exist_ok=True)
        client.containers.run(
            IMAGE,
            name=CONTAINER_NAME,
            detach=True,
            ports={"5000/tcp": (host, int(port))},
            volumes={str(storage): {"bind": "/var/lib/registry", "mode": "rw"}},
            restart_policy={"Name": "unless-stopped"},
            labels={"org.cloudship.embedded-registry": "true"},
        )
        return f"container {CONTAINER_NAME} from {IMAGE}, storage {storage}"

    def _start_binary(self) -> str | None:
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            return None
        storage = self._folder / "storage"
        storage.mkdir(exist_ok=True)
        config = self._folder / "config.yml"
        config.write_text(registry_config(str(storage), self._address))
        log = (self._folder / "registry.log").open("ab")
        # A session of its own, so the registry outlives this Python process like a daemon.
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self._folder / "registry.pid").write_text(f"{process.pid}\n")
        return f"{binary} (pid {process.pid}), storage {storage}"

    def _wait(self, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self._address}/v2/", timeout=1.0).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RegistryError(
            f"started a registry at {self._address} but it did not answer within {seconds:.0f} s",
            fix=f"see {self._folder / 'registry.log'}",
        )
