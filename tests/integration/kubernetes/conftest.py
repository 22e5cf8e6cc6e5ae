"""Kubernetes tests run on the fake cluster, pulling from a registry that needs a login: the
pods can only start if cloudship's pull secret carries the registry's credentials."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.testing.contract import Release, ReleaseFactory
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_kubernetes.fake import FakeCluster
from cloudship_kubernetes.testing import KubernetesTargetFactory
from tests.conftest import write_app

EXITS = '["sh", "-c", "echo failing on purpose; exit 1"]'
USER, PASSWORD = "puller", "k8s-pull-secret-9f2"


@pytest.fixture(scope="session")
def k8s_registry(
    cloudship_auth_registry: Callable[[dict[str, str]], ThrowawayRegistry],
) -> ThrowawayRegistry:
    return cloudship_auth_registry({USER: PASSWORD})


@pytest.fixture
def k8s(
    cloudship_fake_cluster: FakeCluster, k8s_registry: ThrowawayRegistry
) -> KubernetesTargetFactory:
    factory = KubernetesTargetFactory(cloudship_fake_cluster, k8s_registry)
    return factory


@pytest.fixture
def k8s_settings() -> dict[str, str]:
    return {"username": USER, "password": PASSWORD}


class Images:
    """Builds and pushes tiny busybox apps; removes every tag it made."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder, self.refs = engine, folder, list[str]()

    def push(
        self,
        address: str,
        tag: str,
        answer: str,
        *,
        healthy: bool = True,
        auth: RegistryAuth | None = None,
    ) -> ImageRef:
        app = write_app(
            self.folder / uuid.uuid4().hex[:8], answer, **({} if healthy else {"cmd": EXITS})
        )
        built = self.engine.build(app, tag=f"cloudship-k8s-test/{app.name}:latest")
        ref = ImageRef.parse(address).with_tag(tag)
        self.engine.tag(built.image_id, ref)
        self.refs += [str(ref), f"cloudship-k8s-test/{app.name}:latest"]
        auth = auth or RegistryAuth(
            username=USER, password=SecretStr(PASSWORD), server=ref.registry
        )
        digest = self.engine.push(ref, auth).digest
        return ImageRef.parse(address).with_digest(digest)

    def cleanup(self) -> None:
        from docker.errors import APIError

        for ref in self.refs:
            with contextlib.suppress(APIError):
                self.engine.client.images.remove(ref, noprune=False)


@pytest.fixture
def images(cloudship_engine: Engine, tmp_path: Path) -> Iterator[Images]:
    made = Images(cloudship_engine, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def k8s_release(
    k8s: KubernetesTargetFactory, images: Images, k8s_settings: dict[str, str]
) -> ReleaseFactory:
    target = k8s.target(**k8s_settings)
    address = target.registry.repository(f"k8s-{uuid.uuid4().hex[:8]}")

    def make(answer: str, *, healthy: bool = True) -> Release:
        return Release(
            images.push(address, answer, answer, healthy=healthy), target.registry.credentials()
        )

    return make
