"""``Runtime.rollout_seconds``: a given timeout below what the rollout needs is refused before
anything is built; without one, the timeout is derived from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudship import ship
from cloudship.errors import ConfigError
from cloudship.runtime import ServiceSpec
from cloudship.targets import Target
from cloudship.testing.memory import MemoryEngine, MemoryRegistry, MemoryRuntime


class SlowRollout(MemoryRuntime):
    """A memory runtime whose rollouts need 400 s, and which notes the timeout it is given."""

    given: list[float]

    def rollout_seconds(self, spec: ServiceSpec) -> tuple[float, str]:
        return 400.0, "deregistration delay 300 s + start 100 s"

    def deploy(self, *args: Any, timeout: float, **kwargs: Any) -> Any:
        self.given.append(timeout)
        return super().deploy(*args, timeout=timeout, **kwargs)


def target() -> tuple[Target, MemoryEngine, SlowRollout]:
    registry = MemoryRegistry()
    runtime = SlowRollout(registry)
    runtime.given = []
    return Target(registry=registry, runtime=runtime, name="slow"), MemoryEngine(registry), runtime


def app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text('FROM scratch\nCOPY . /app\nEXPOSE 8000\nCMD ["serve"]\n')
    return folder


def test_a_timeout_below_the_rollout_is_refused_before_the_build(tmp_path: Path) -> None:
    tgt, engine, runtime = target()
    with pytest.raises(ConfigError, match="at least 400 s") as caught:
        ship(app(tmp_path / "web"), tgt, engine=engine, timeout=120)
    assert "deregistration delay 300 s" in str(caught.value)
    assert caught.value.fix and "timeout=400" in caught.value.fix
    assert runtime.calls == [] and runtime.given == []  # refused before validate, build, push
    registry = tgt.registry
    assert isinstance(registry, MemoryRegistry) and registry.created == []


def test_without_a_timeout_it_is_derived_from_the_rollout(tmp_path: Path) -> None:
    tgt, engine, runtime = target()
    ship(app(tmp_path / "web"), tgt, engine=engine)
    (given,) = runtime.given
    assert 700 < given <= 800  # 2 x 400 s, less the moments the build and push took
