"""The Kubernetes runtime keeps the core's contract on the fake cluster (real pods on the
engine, real pulls with the pull secret, real readiness probes and crash loops)."""

from __future__ import annotations

import pytest

from cloudship.runtime import Runtime
from cloudship.testing.contract import ReleaseFactory, RuntimeContract
from cloudship_kubernetes.testing import KubernetesTargetFactory


class TestKubernetesRuntime(RuntimeContract):
    timeout = 60.0

    @pytest.fixture
    def cloudship_contract_runtime(
        self, k8s: KubernetesTargetFactory, k8s_settings: dict[str, str]
    ) -> Runtime:
        return k8s.target(**k8s_settings).runtime

    @pytest.fixture
    def cloudship_contract_release(self, k8s_release: ReleaseFactory) -> ReleaseFactory:
        return k8s_release
