"""The in-memory doubles keep the same contract as every real provider."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from cloudship.images import ImageRef
from cloudship.registry import Registry
from cloudship.runtime import Runtime
from cloudship.testing.contract import RegistryContract, Release, ReleaseFactory, RuntimeContract
from cloudship.testing.memory import MemoryImage, MemoryRegistry, MemoryRuntime


def _store(registry: MemoryRegistry, address: str, tag: str, *, answer: str, exits: bool) -> str:
    ref = ImageRef.parse(address)
    digest = "sha256:" + hashlib.sha256(f"{address}:{tag}:{answer}".encode()).hexdigest()
    registry.put(ref.path, tag, MemoryImage(digest=digest, exits=exits, answer=answer))
    return digest


@pytest.fixture
def memory_registry() -> MemoryRegistry:
    return MemoryRegistry()


class TestMemoryRuntime(RuntimeContract):
    @pytest.fixture
    def cloudship_contract_runtime(self, memory_registry: MemoryRegistry) -> Runtime:
        return MemoryRuntime(memory_registry)

    @pytest.fixture
    def cloudship_contract_release(self, memory_registry: MemoryRegistry) -> ReleaseFactory:
        address = memory_registry.repository("contract-app")

        def release(answer: str, *, healthy: bool = True) -> Release:
            digest = _store(memory_registry, address, answer, answer=answer, exits=not healthy)
            return Release(ImageRef.parse(address).with_digest(digest), None)

        return release

    def answer_of(self, runtime: Runtime, service: str, url: str | None) -> str | None:
        assert isinstance(runtime, MemoryRuntime)
        return runtime.serving(service)


class TestMemoryRegistry(RegistryContract):
    @pytest.fixture
    def cloudship_contract_registry(self, memory_registry: MemoryRegistry) -> Registry:
        return memory_registry

    @pytest.fixture
    def cloudship_contract_push(self, memory_registry: MemoryRegistry) -> Callable[[str, str], str]:
        return lambda address, tag: _store(memory_registry, address, tag, answer="x", exits=False)


def test_a_runtime_pulls_only_what_its_registry_has(memory_registry: MemoryRegistry) -> None:
    from cloudship.errors import DeployError
    from cloudship.runtime import ServiceSpec

    runtime = MemoryRuntime(memory_registry)
    missing = ImageRef.parse("registry.memory.test/cloudship/app@sha256:" + "0" * 64)
    with pytest.raises(DeployError, match="manifest unknown"):
        runtime.deploy(ServiceSpec(name="app", port=8000), missing, None, timeout=5)
    assert runtime.status("app") is None
