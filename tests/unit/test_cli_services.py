"""services(), destroy(missing_ok=) and the default polling follow_logs, on the memory doubles."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import cloudship
from cloudship.errors import CloudshipError, ServiceNotFoundError
from cloudship.runtime import Runtime, _new_lines
from cloudship.testing.memory import memory_target
from tests.conftest import write_app


def test_services_and_destroy(tmp_path: Path) -> None:
    target, engine = memory_target()
    assert cloudship.services(target) == []
    for name in ("web", "api"):
        cloudship.ship(write_app(tmp_path / name), target, name=name, engine=engine)
    assert cloudship.services(target) == ["api", "web"]
    assert cloudship.destroy("web", target) is True
    assert cloudship.services(target) == ["api"]
    with pytest.raises(ServiceNotFoundError, match="'web' is not deployed on target 'memory'"):
        cloudship.destroy("web", target)
    assert cloudship.destroy("web", target, missing_ok=True) is False
    assert ("destroy", "web") in target.runtime.created  # type: ignore[attr-defined]


def test_a_runtime_without_services_refuses_clearly() -> None:
    class Minimal(Runtime):
        kind = "minimal"
        platforms = frozenset({"linux/amd64"})
        plan = deploy = status = rollback = logs = destroy = None  # type: ignore[assignment]

    with pytest.raises(CloudshipError, match="runtime 'minimal' cannot list its services"):
        Minimal().services()


def test_the_default_follow_polls_and_yields_only_new_lines(tmp_path: Path) -> None:
    target, engine = memory_target()
    cloudship.ship(write_app(tmp_path / "web"), target, name="web", engine=engine)
    runtime = target.runtime
    runtime.poll_interval = 0.01  # type: ignore[misc]
    written = runtime.lines[("web", 1)]  # type: ignore[attr-defined]
    written[:] = ["a", "b"]
    stop = threading.Event()
    got: list[str] = []
    for line in runtime.follow_logs("web", tail=1, stop=stop):
        got.append(line)
        if line == "b":
            written += ["c", "b"]  # a repeated line is still new
        if len(got) == 3:
            stop.set()
    assert got == ["b", "c", "b"]


@pytest.mark.parametrize(
    ("seen", "now", "new"),
    [
        ([], ["a"], ["a"]),
        (["a", "b"], ["a", "b", "c"], ["c"]),
        (["a", "b"], ["b", "c"], ["c"]),  # the tail window moved on
        (["a", "b"], ["x", "y"], ["x", "y"]),  # no overlap: all of it is new
        (["a"], ["a"], []),
    ],
)
def test_new_lines(seen: list[str], now: list[str], new: list[str]) -> None:
    assert _new_lines(seen, now) == new
