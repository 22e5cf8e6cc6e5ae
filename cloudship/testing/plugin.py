"""pytest fixtures for testing code that ships with cloudship (registered via ``pytest11``).

- ``cloudship_engine``: the local Docker engine (session). Without one, tests that use it are
  skipped with the reason, except under CI (``CI`` set), where they fail: CI must not pass
  by skipping what it was meant to run.
- ``cloudship_registry``: a throw-away registry without auth (session).
- ``cloudship_auth_registry``: ``factory(users={"AWS": "123456789012-auth-token"})`` → a
  registry that accepts exactly those logins (session, cached per user set).
- ``cloudship_docker_config_guard``: fails the test if ``~/.docker/config.json`` was created
  or changed.

Provider-specific fixtures live in the provider packages, each a ``pytest11`` plugin of its own
(``cloudship_local.testing``, ``cloudship_aws.testing``, ``cloudship_azure.testing``,
``cloudship_kubernetes.testing``): the core's test kit imports no provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cloudship.engine import Engine
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
def cloudship_registry(cloudship_engine: Engine) -> Iterator[ThrowawayRegistry]:
    from cloudship.testing.registry import ThrowawayRegistry

    with ThrowawayRegistry() as registry:
        yield registry


@pytest.fixture(scope="session")
def cloudship_auth_registry(
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


@pytest.fixture
def cloudship_docker_config_guard() -> Iterator[Path]:
    path = Path.home() / ".docker" / "config.json"
    before = path.read_bytes() if path.exists() else None
    yield path
    after = path.read_bytes() if path.exists() else None
    assert after == before, f"{path} was written during the test"
