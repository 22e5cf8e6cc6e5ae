"""pytest fixtures for the Kubernetes target: a fake cluster and targets wired to it.

Registered as a pytest plugin (entry point ``pytest11``); lightkube and the fake are imported
only inside the fixtures.

- ``FakeCluster``: the HTTPS API-server fake (``cloudship_kubernetes.fake``), usable without
  pytest: ``with FakeCluster() as cluster: cluster.kubeconfig``;
- ``cloudship_fake_cluster``: one per test (state never leaks between tests), on the local engine;
- ``cloudship_kubernetes_target``: ``.target(**settings)`` builds a ``kubernetes`` Target on the
  fake cluster and the test registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cloudship.targets import Target
    from cloudship.testing.registry import ThrowawayRegistry

from cloudship_kubernetes.fake import FakeCluster


@pytest.fixture
def cloudship_fake_cluster() -> Iterator[FakeCluster]:
    with FakeCluster() as cluster:
        yield cluster


class KubernetesTargetFactory:
    def __init__(self, cluster: FakeCluster, registry: ThrowawayRegistry) -> None:
        self.cluster, self.registry = cluster, registry

    def name(self, base: str = "svc") -> str:
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def settings(self, **settings: Any) -> dict[str, Any]:
        return {
            "registry": self.registry.address,
            "kubeconfig": self.cluster.kubeconfig,
            "poll_interval": 0.1,
            **settings,
        }

    def target(self, **settings: Any) -> Target:
        from cloudship.config import ConfigFile
        from cloudship_kubernetes import provider

        return provider.target(ConfigFile(), self.settings(**settings))


@pytest.fixture
def cloudship_kubernetes_target(
    cloudship_fake_cluster: FakeCluster, cloudship_registry: ThrowawayRegistry
) -> KubernetesTargetFactory:
    return KubernetesTargetFactory(cloudship_fake_cluster, cloudship_registry)


__all__ = ["FakeCluster", "KubernetesTargetFactory"]
