"""The local runtime and any v2 registry keep the core's contract, on the real engine."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.registry import Registry
from cloudship.runtime import Runtime
from cloudship.targets import Target
from cloudship.testing.contract import RegistryContract, Release, ReleaseFactory, RuntimeContract
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

EXITS = '["sh", "-c", "echo failing on purpose; exit 1"]'


class _Images:
    """Builds and pushes tiny busybox apps; removes every tag it made."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder, self.refs = engine, folder, list[str]()

    def push(self, address: str, tag: str, answer: str, *, healthy: bool = True) -> str:
        app = write_app(
            self.folder / uuid.uuid4().hex[:8], answer, **({} if healthy else {"cmd": EXITS})
        )
        built = self.engine.build(app, tag=f"cloudship-contract/{uuid.uuid4().hex[:8]}:latest")
        ref = ImageRef.parse(address).with_tag(tag)
        self.engine.tag(built.image_id, ref)
        self.refs += [str(ref), f"cloudship-contract/{app.name}"]
        return self.engine.push(ref, None).digest

    def cleanup(self) -> None:
        from docker.errors import APIError

        for ref in self.refs:
            with contextlib.suppress(APIError):
                self.engine.client.images.remove(ref, noprune=False)


@pytest.fixture
def images(cloudship_engine: Engine, tmp_path: Path) -> Iterator[_Images]:
    made = _Images(cloudship_engine, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def target(cloudship_local_target: LocalTargetFactory) -> Target:
    return cloudship_local_target.target()


class TestLocalRuntime(RuntimeContract):
    @pytest.fixture
    def cloudship_contract_runtime(self, target: Target) -> Runtime:
        return target.runtime

    @pytest.fixture
    def cloudship_contract_release(self, target: Target, images: _Images) -> ReleaseFactory:
        address = target.registry.repository(f"contract-{uuid.uuid4().hex[:8]}")

        def release(answer: str, *, healthy: bool = True) -> Release:
            digest = images.push(address, answer, answer, healthy=healthy)
            return Release(ImageRef.parse(address).with_digest(digest), None)

        return release


class TestLocalRegistry(RegistryContract):
    @pytest.fixture
    def cloudship_contract_registry(self, target: Target) -> Registry:
        return target.registry

    @pytest.fixture
    def cloudship_contract_push(self, images: _Images) -> Callable[[str, str], str]:
        return lambda address, tag: images.push(address, tag, "x")
