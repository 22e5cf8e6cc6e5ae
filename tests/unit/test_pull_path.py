"""A hand-composed target is checked for a pull path before anything is pushed."""

from __future__ import annotations

from typing import ClassVar

import pytest

from cloudship.config import ConfigFile
from cloudship.errors import ConfigError
from cloudship.events import EventSink, ignore
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.runtime import Deployment, Plan, Runtime, ServiceSpec, ServiceStatus
from cloudship.targets import Target, resolve


class RemoteRuntime(Runtime):
    """The smallest runtime that runs somewhere else: enough to exercise the core's check."""

    kind: ClassVar[str] = "remote-test"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux/amd64"})

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        raise AssertionError("not reached")

    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        raise AssertionError("not reached")

    def status(self, service: str) -> ServiceStatus | None:
        return None

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        raise AssertionError("not reached")

    def logs(self, service: str, tail: int = 100) -> list[str]:
        return []

    def destroy(self, service: str) -> None:
        return None


def test_remote_runtime_cannot_pull_from_loopback_registry() -> None:
    local = resolve("local", ConfigFile(), {"registry": "127.0.0.1:5999"})
    composed = Target(registry=local.registry, runtime=RemoteRuntime(), name="mixed")
    with pytest.raises(ConfigError, match=r"cannot pull from the registry at 127\.0\.0\.1:5999"):
        composed.check_pull_path()
    # The provider's own pair is trusted (a test registry on loopback is its business).
    local.check_pull_path()
    Target(registry=local.registry, runtime=local.runtime).check_pull_path()


def test_incomplete_runtime_fails_at_construction() -> None:
    class Half(Runtime):
        kind: ClassVar[str] = "half"
        platforms: ClassVar[frozenset[str]] = frozenset()

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]
