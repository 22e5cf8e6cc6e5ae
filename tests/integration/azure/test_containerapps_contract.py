"""Container Apps and ACR keep the core's contracts, on the ARM fake (real azure-mgmt clients,
revisions run on the engine, images pushed to the ACR-style token registry)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.registry import Registry
from cloudship.runtime import Runtime
from cloudship.targets import Target
from cloudship.testing.contract import RegistryContract, Release, ReleaseFactory, RuntimeContract
from cloudship_azure.testing import AzureTargetFactory
from tests.conftest import write_app

EXITS = '["sh", "-c", "echo failing on purpose; exit 1"]'


@pytest.fixture
def target(cloudship_azure_target: AzureTargetFactory) -> Target:
    return cloudship_azure_target.target()


@pytest.fixture
def pushed(cloudship_engine: Engine) -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    from docker.errors import APIError

    for ref in refs:
        with contextlib.suppress(APIError):
            cloudship_engine.client.images.remove(ref, noprune=False)


def _push(
    engine: Engine,
    registry: Registry,
    folder: Path,
    pushed: list[str],
    address: str,
    tag: str,
    answer: str,
    *,
    healthy: bool = True,
) -> str:
    app = write_app(folder / uuid.uuid4().hex[:8], answer, **({} if healthy else {"cmd": EXITS}))
    built = engine.build(app, tag=f"cloudship-contract/{app.name}:latest")
    ref = ImageRef.parse(address).with_tag(tag)
    engine.tag(built.image_id, ref)
    pushed.extend([str(ref), f"cloudship-contract/{app.name}:latest"])
    return engine.push(ref, registry.credentials()).digest


class TestAcrRegistry(RegistryContract):
    @pytest.fixture
    def cloudship_contract_registry(self, target: Target) -> Registry:
        return target.registry

    @pytest.fixture
    def cloudship_contract_push(
        self, target: Target, cloudship_engine: Engine, tmp_path: Path, pushed: list[str]
    ) -> Callable[[str, str], str]:
        return lambda address, tag: _push(
            cloudship_engine, target.registry, tmp_path, pushed, address, tag, "x"
        )


class TestContainerAppsRuntime(RuntimeContract):
    @pytest.fixture
    def cloudship_contract_runtime(self, target: Target) -> Runtime:
        return target.runtime

    @pytest.fixture(autouse=True)
    def _gateway(self, cloudship_azure_target: AzureTargetFactory) -> None:
        self._gateway_url = cloudship_azure_target.runner.gateway_url

    @pytest.fixture
    def cloudship_contract_release(
        self, target: Target, cloudship_engine: Engine, tmp_path: Path, pushed: list[str]
    ) -> ReleaseFactory:
        address = target.registry.repository(f"contract-{uuid.uuid4().hex[:8]}")

        def release(answer: str, *, healthy: bool = True) -> Release:
            digest = _push(
                cloudship_engine,
                target.registry,
                tmp_path,
                pushed,
                address,
                answer,
                answer,
                healthy=healthy,
            )
            return Release(ImageRef.parse(address).with_digest(digest), None)

        return release

    def answer_of(self, runtime: Runtime, service: str, url: str | None) -> str | None:
        """``https://<fqdn>`` is answered by the fake's gateway, as Azure's edge would."""
        assert url is not None and url.startswith("https://")
        fqdn = url.removeprefix("https://")
        return httpx.get(f"{self._gateway_url}/{fqdn}/", timeout=10).text.strip()
