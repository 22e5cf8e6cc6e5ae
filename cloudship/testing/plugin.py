"""pytest fixtures for testing code that ships with cloudship (registered via ``pytest11``).

- ``cloudship_engine``: the local Docker engine (session). Without one, tests that use it are
  skipped with the reason, except under CI (``CI`` set), where they fail: CI must not pass
  by skipping what it was meant to run.
- ``registry_server``: a throw-away registry without auth (session).
- ``auth_registry_factory``: ``factory(users={"AWS": "123456789012-auth-token"})`` → a
  registry that accepts exactly those logins (session, cached per user set).
- ``local_target``: a ``LocalTargetFactory``: ``.target(**settings)`` builds a ``local``
  Target on ``registry_server`` and ``.name("web")`` a unique service name; every service named
  through it is destroyed at teardown.
- ``docker_config_guard``: fails the test if ``~/.docker/config.json`` was created or changed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cloudship.engine import Engine
    from cloudship.targets import Target
    from cloudship.testing.registry import ThrowawayRegistry


@pytest.fixture(scope="session")
def cloudship_engine() -> Engine:
    from cloudship.engine import Engine
    from cloudship.errors import EngineError

    engine = Engine.shared()
    try:
        _ = engine.client
    except EngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine and none answers: {exc}")
        pytest.skip(f"no Docker engine (run scripts/dev-env): {exc.message}")
    return engine


@pytest.fixture(scope="session")
def registry_server(cloudship_engine: Engine) -> Iterator[ThrowawayRegistry]:
    from cloudship.testing.registry import ThrowawayRegistry

    with ThrowawayRegistry() as registry:
        yield registry


@pytest.fixture(scope="session")
def auth_registry_factory(
    cloudship_engine: Engine,
) -> Iterator[Callable[[dict[str, str]], ThrowawayRegistry]]:
    from cloudship.testing.registry import ThrowawayRegistry

    made: dict[tuple[tuple[str, str], ...], ThrowawayRegistry] = {}

    def factory(users: dict[str, str]) -> ThrowawayRegistry:
        key = tuple(sorted(users.items()))
        if key not in made:
            made[key] = ThrowawayRegistry(users=users)
            made[key].start()
        return made[key]

    yield factory
    for registry in made.values():
        registry.stop()


class LocalTargetFactory:
    """Builds ``local`` targets on a test registry and cleans up the services it named."""

    def __init__(self, registry: ThrowawayRegistry) -> None:
        self.registry = registry
        self._names: list[str] = []
        self._targets: list[Target] = []

    def name(self, base: str = "svc") -> str:
        name = f"{base}-{uuid.uuid4().hex[:8]}"
        self._names.append(name)
        return name

    def target(self, **settings: Any) -> Target:
        from cloudship.config import ConfigFile
        from cloudship_local import provider

        settings.setdefault("registry", self.registry.address)
        settings.setdefault("embedded", False)
        target = provider.target(ConfigFile(), settings)
        self._targets.append(target)
        return target

    def cleanup(self) -> None:
        for target in self._targets or [self.target()]:
            for name in self._names:
                target.runtime.destroy(name)


@pytest.fixture
def local_target(registry_server: ThrowawayRegistry) -> Iterator[LocalTargetFactory]:
    factory = LocalTargetFactory(registry_server)
    yield factory
    factory.cleanup()


@pytest.fixture
def docker_config_guard() -> Iterator[Path]:
    path = Path.home() / ".docker" / "config.json"
    before = path.read_bytes() if path.exists() else None
    yield path
    after = path.read_bytes() if path.exists() else None
    assert after == before, f"{path} was written during the test"
