"""The registry cloudship starts when nothing answers at the default address."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from cloudship.engine import Engine
from cloudship.testing.registry import free_port
from cloudship_local.embedded import EmbeddedRegistry


def test_embedded_registry_starts_answers_and_keeps_storage_in_data_dir(
    tmp_path: Path, cloudship_engine: Engine
) -> None:
    address = f"127.0.0.1:{free_port()}"
    embedded = EmbeddedRegistry(cloudship_engine, tmp_path, address)
    how = embedded.start()
    try:
        assert httpx.get(f"http://{address}/v2/").status_code == 200
        assert str(tmp_path / "registry" / "storage") in how
        assert (tmp_path / "registry" / "storage").is_dir()
    finally:
        pid_file = tmp_path / "registry" / "registry.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        else:
            cloudship_engine.client.containers.get("cloudship-registry").remove(force=True)
