"""The ``kubernetes`` target: any Docker Registry v2 + a Kubernetes cluster from a kubeconfig.

``ship(src, target="kubernetes", kubeconfig=..., context=..., namespace=...)``; without them
the current context of ``KUBECONFIG`` / ``~/.kube/config``, as kubectl. The test kit's
``cloudship_kubernetes.testing.FakeCluster`` is a cluster to try it on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from cloudship.config import ConfigFile, load_settings
from cloudship.targets import Provider, Target
from cloudship_kubernetes.runtime import KubernetesRuntime
from cloudship_kubernetes.settings import KubernetesSettings


class KubernetesProvider(Provider):
    name: ClassVar[str] = "kubernetes"
    settings_model: ClassVar[type[BaseModel]] = KubernetesSettings
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"kubernetes"})

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        from cloudship_local.registry import V2Registry
        from cloudship_local.settings import LocalSettings

        settings = load_settings(KubernetesSettings, config.section(self.name), overrides)
        registry = V2Registry(
            LocalSettings(
                registry=settings.registry,
                username=settings.username,
                password=settings.password,
                insecure=settings.insecure,
                embedded=False,
            )
        )
        runtime = KubernetesRuntime(settings)
        # The pair is checked like a composed one: a remote cluster cannot pull from loopback.
        return Target(registry=registry, runtime=runtime, name=self.name)


provider = KubernetesProvider()

__all__ = ["KubernetesProvider", "KubernetesRuntime", "KubernetesSettings", "provider"]
