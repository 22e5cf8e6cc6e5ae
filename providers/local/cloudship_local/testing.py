"""pytest fixtures of the ``local`` target (a ``pytest11`` plugin, loaded with cloudship).

- ``cloudship_local_target``: a ``LocalTargetFactory``: ``.target(**settings)`` builds a ``local``
  Target on ``cloudship_registry`` and ``.name("web")`` a unique service name; every service named
  through it is destroyed at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cloudship.targets import Target
    from cloudship.testing.registry import ThrowawayRegistry


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
def cloudship_local_target(cloudship_registry: ThrowawayRegistry) -> Iterator[LocalTargetFactory]:
    factory = LocalTargetFactory(cloudship_registry)
    yield factory
    factory.cleanup()


__all__ = ["LocalTargetFactory", "cloudship_local_target"]
