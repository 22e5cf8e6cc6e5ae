"""pytest fixtures for the Kubernetes target: a fake cluster and targets wired to it.

Registered as a pytest plugin (entry point ``pytest11``); lightkube and the fake are imported
only inside the fixtures.

- ``FakeCluster``: the HTTPS API-server fake (``cloudship_kubernetes.fake``), usable without
  pytest: ``with FakeCluster() as cluster: cluster.kubeconfig``;
- ``cloudship_fake_cluster``: one per test (state never leaks between tests), on the local engine;
- ``cloudship_kubernetes_target``: ``.target(**settings)`` builds a ``kubernetes`` Target on the
  fake cluster and the test registry;
- ``cloudship_aks_target``: ``.target(**settings)`` builds an ``aks`` Target on the Azure ARM
  fake (``cloudship_fake_arm``) serving a managed cluster (``fake.aks.FakeAks``) whose API
  server is a fake cluster; ``.aks`` and ``.cluster`` are those.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

    from cloudship.targets import Target
    from cloudship.testing.registry import ThrowawayRegistry
    from cloudship_azure.fake import FakeArmServer
    from cloudship_kubernetes.fake.aks import FakeAks

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


class AudienceCredential:
    """A ``TokenCredential`` that answers each audience (scope) with its own token, as Entra
    ID does, so the fake API server can refuse an ARM token: ``tokens[scope]``."""

    def __init__(self, base: Any, *scopes: str) -> None:
        import secrets

        self._base = base
        self.tokens = {scope: f"fake-aad-{secrets.token_urlsafe(16)}" for scope in scopes}

    def __repr__(self) -> str:
        return "AudienceCredential(tokens=**********)"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        import time

        from azure.core.credentials import AccessToken

        if scopes and scopes[0] in self.tokens:
            return AccessToken(self.tokens[scopes[0]], int(time.time() + 3600))
        token: AccessToken = self._base.get_token(*scopes, **kwargs)
        return token


class AksTargetFactory:
    """Builds ``aks`` targets on the ARM fake's managed cluster ``cluster_name``."""

    resource_group = "cloudship-test"
    cluster_name = "cs-aks"

    def __init__(
        self, server: FakeArmServer, aks: FakeAks, cluster: FakeCluster, credential: Any
    ) -> None:
        self.server, self.aks, self.cluster, self.credential = server, aks, cluster, credential

    def name(self, base: str = "svc") -> str:
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def settings(self, **settings: Any) -> dict[str, Any]:
        from cloudship_azure.testing import ACR_NAME

        return {
            "subscription": next(iter(self.server.arm.subscriptions)),
            "resource_group": self.resource_group,
            "cluster": self.cluster_name,
            "registry": ACR_NAME,
            "arm_endpoint": self.server.url,
            "ca_bundle": self.server.ca_path,
            "poll_interval": 0.1,
            "credential": self.credential,
            **settings,
        }

    def target(self, **settings: Any) -> Target:
        from cloudship.config import ConfigFile
        from cloudship_kubernetes.aks import provider

        return provider.target(ConfigFile(), self.settings(**settings))


@pytest.fixture
def cloudship_aks_target(
    cloudship_fake_arm: FakeArmServer,
    cloudship_azure_credential: Any,
    cloudship_acr_puller_password: str,
) -> Iterator[AksTargetFactory]:
    """An AKS cluster with Entra ID sign-in on the ARM fake; its nodes pull from the ACR
    (``cloudship_acr_token_registry``) only once the kubelet identity holds AcrPull."""
    from cloudship_azure.testing import PULLER
    from cloudship_kubernetes.aks import AKS_SERVER_ID
    from cloudship_kubernetes.fake.aks import FakeAks

    scope = f"{AKS_SERVER_ID}/.default"
    credential = AudienceCredential(cloudship_azure_credential, scope)
    aks = FakeAks(
        cloudship_fake_arm.arm,
        resource_group=AksTargetFactory.resource_group,
        name=AksTargetFactory.cluster_name,
        aad_tokens={credential.tokens[scope]},
        pull_login={"username": PULLER, "password": cloudship_acr_puller_password},
    )
    with FakeCluster(
        authenticate=aks.authenticate, node_credentials=aks.node_credentials
    ) as cluster:
        aks.attach(cluster)
        yield AksTargetFactory(cloudship_fake_arm, aks, cluster, credential)


__all__ = ["AksTargetFactory", "AudienceCredential", "FakeCluster", "KubernetesTargetFactory"]
