"""Every failure a user can cause: a clear CloudshipError, and nothing left half-done."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from cloudship import (
    AuthError,
    BuildError,
    ConfigError,
    EngineError,
    PlatformMismatchError,
    PortInUseError,
    RegistryError,
    ServiceNotFoundError,
    SourceError,
    logs,
    ship,
    status,
)
from cloudship.engine import Engine
from cloudship.events import Event
from cloudship.testing.registry import ThrowawayRegistry, free_port
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

pytestmark = pytest.mark.usefixtures("cloudship_docker_config_guard")


def containers(engine: Engine, service: str) -> list[str]:
    found = engine.client.containers.list(
        all=True, filters={"label": f"org.cloudship.service={service}"}
    )
    return [c.name for c in found]


def catalog(address: str, auth: tuple[str, str] | None = None) -> list[str]:
    body = httpx.get(f"http://{address}/v2/_catalog", auth=auth).json()
    return list(body.get("repositories") or [])


def test_missing_dockerfile(tmp_path: Path, cloudship_local_target: LocalTargetFactory) -> None:
    (tmp_path / "main.py").write_text("print('hi')\n")
    with pytest.raises(SourceError, match="has no Dockerfile") as info:
        ship(tmp_path, cloudship_local_target.target(), name=cloudship_local_target.name())
    assert "add a Dockerfile" in str(info.value)


def test_missing_directory_and_bad_reference(cloudship_local_target: LocalTargetFactory) -> None:
    with pytest.raises(SourceError, match="no such directory"):
        ship("./does-not-exist", cloudship_local_target.target())
    with pytest.raises(SourceError, match="neither a directory nor a valid image reference"):
        ship("Not A Ref!", cloudship_local_target.target())
    with pytest.raises(SourceError, match="not in the local Docker engine"):
        ship("cloudship-never-built:v9", cloudship_local_target.target(), port=80)


def test_build_error_pushes_and_starts_nothing(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    (app_dir / "Dockerfile").write_text(
        "FROM busybox:latest\nRUN echo 'compiling'; echo 'error: missing dep' >&2; exit 7\n"
    )
    name = cloudship_local_target.name()
    with pytest.raises(BuildError) as info:
        ship(app_dir, cloudship_local_target.target(), name=name)
    assert "error: missing dep" in "\n".join(info.value.log_tail)
    assert "exit code: 7" in str(info.value)  # BuildKit's wording
    assert name not in catalog(cloudship_local_target.registry.address)
    assert containers(cloudship_engine, name) == []


def test_engine_not_running(app_dir: Path, cloudship_local_target: LocalTargetFactory) -> None:
    engine = Engine("unix:///tmp/cloudship-no-such-docker.sock")
    with pytest.raises(EngineError, match="not reachable") as info:
        ship(
            app_dir,
            cloudship_local_target.target(),
            name=cloudship_local_target.name(),
            engine=engine,
        )
    assert "DOCKER_HOST" in str(info.value)


def test_registry_down(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    name = cloudship_local_target.name()
    down = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"registry {down} is not reachable"):
        ship(app_dir, cloudship_local_target.target(registry=down), name=name)
    assert containers(cloudship_engine, name) == []


def test_wrong_credentials_are_refused_and_never_printed(
    app_dir: Path,
    cloudship_local_target: LocalTargetFactory,
    cloudship_auth_registry: object,
    cloudship_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry: ThrowawayRegistry = cloudship_auth_registry({"ci": "right-password"})  # type: ignore[operator]
    name = cloudship_local_target.name()
    wrong = "wrong-password-value-42"
    events: list[Event] = []
    caplog.set_level(logging.DEBUG)
    target = cloudship_local_target.target(registry=registry.address, username="ci", password=wrong)
    with pytest.raises(AuthError) as info:
        ship(app_dir, target, name=name, on_event=events.append)
    assert "'ci'" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text, repr(events), repr(target)):
        assert wrong not in text
    assert name not in catalog(registry.address, ("ci", "right-password"))
    assert containers(cloudship_engine, name) == []


def test_basic_auth_push_and_pull_with_in_memory_credentials(
    app_dir: Path,
    cloudship_local_target: LocalTargetFactory,
    cloudship_auth_registry: object,
) -> None:
    # The exact login moto's ECR token decodes to: the same path the AWS target will take.
    users = {"AWS": "123456789012-auth-token"}
    registry: ThrowawayRegistry = cloudship_auth_registry(users)  # type: ignore[operator]
    target = cloudship_local_target.target(
        registry=registry.address, username="AWS", password="123456789012-auth-token"
    )
    name = cloudship_local_target.name()
    shipped = ship(app_dir, target, name=name)
    assert shipped.url is not None and httpx.get(shipped.url).text == "v1\n"
    assert name in catalog(registry.address, ("AWS", "123456789012-auth-token"))
    assert not ship(app_dir, target, name=name).changed


def test_port_in_use_is_refused_before_anything_moves(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    name = cloudship_local_target.name()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}") as info:
            ship(app_dir, cloudship_local_target.target(host_port=port), name=name)
    assert "host_port" in str(info.value)
    assert name not in catalog(cloudship_local_target.registry.address)
    assert containers(cloudship_engine, name) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad_Name"}, "name: must be 1-63 lower-case"),
        ({"replicas": 3}, "exactly one replica"),
        ({"health_path": "health"}, "health_path"),
        ({"memory": "lots"}, "memory: must be a number with a unit"),
        ({"env": {"BAD-NAME": "x"}}, "environment variable name"),
    ],
)
def test_bad_service_settings_push_nothing(
    app_dir: Path,
    cloudship_local_target: LocalTargetFactory,
    kwargs: dict[str, object],
    message: str,
) -> None:
    kwargs.setdefault("name", cloudship_local_target.name())
    with pytest.raises(ConfigError, match=message):
        ship(app_dir, cloudship_local_target.target(), **kwargs)  # type: ignore[arg-type]
    assert str(kwargs["name"]) not in catalog(cloudship_local_target.registry.address)


def test_platform_mismatch_refused_before_push(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    name = cloudship_local_target.name()
    with pytest.raises(PlatformMismatchError, match="linux/s390x") as info:
        ship(app_dir, cloudship_local_target.target(), name=name, platform="linux/s390x")
    assert "platform=" in str(info.value)
    assert name not in catalog(cloudship_local_target.registry.address)


def test_port_unknown_without_expose(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    app = write_app(tmp_path / "noexpose", expose=False)
    with pytest.raises(ConfigError, match="which port") as info:
        ship(app, cloudship_local_target.target(), name=cloudship_local_target.name())
    assert "port=8000" in str(info.value)


def test_unknown_service(cloudship_local_target: LocalTargetFactory) -> None:
    with pytest.raises(ServiceNotFoundError, match="not deployed"):
        status("never-shipped", cloudship_local_target.target())
    with pytest.raises(ServiceNotFoundError):
        logs("never-shipped", cloudship_local_target.target())
