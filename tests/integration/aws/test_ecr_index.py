"""One tag over several platforms in ECR: the registry adapter writes the image index over the
registry API with its ``GetAuthorizationToken`` login, and a ship's plan says it will.

moto has no registry endpoint: pushes and the index go to the throwaway registry that accepts
exactly moto's ECR login (``cloudship_ecr_registry``), as they would go to ECR's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudship import plan
from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_aws import EcrRegistry, provider
from cloudship_aws.testing import MotoServer
from tests.integration.aws.conftest import AwsTargets
from tests.integration.test_build import ARM64_BASE, _emulation_or_fail, write

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@pytest.fixture
def tags(cloudship_engine: Engine) -> Iterator[list[str]]:
    """Local tags a test made; removed at the end (the shared engine keeps nothing of ours)."""
    made: list[str] = []
    yield made
    for tag in made:
        cloudship_engine.client.images.remove(tag)


def test_write_index_lists_both_pushed_platforms(
    cloudship_aws_env: MotoServer,
    cloudship_ecr_registry: ThrowawayRegistry,
    cloudship_engine: Engine,
    tags: list[str],
) -> None:
    _emulation_or_fail(cloudship_engine)
    registry = provider.target(ConfigFile(), {"registry": cloudship_ecr_registry.address}).registry
    assert isinstance(registry, EcrRegistry) and registry.writes_indexes
    name = f"multi-{uuid.uuid4().hex[:8]}"
    address = registry.repository(name)
    pushed: dict[str, str] = {}  # platform → digest
    for platform, image in (("linux/amd64", "busybox:latest"), ("linux/arm64", ARM64_BASE)):
        ref = ImageRef.parse(address).with_tag(f"v1-{platform.replace('/', '-')}")
        cloudship_engine.tag(image, ref)
        tags.append(str(ref))
        pushed[platform] = cloudship_engine.push(ref, registry.credentials()).digest
    assert pushed["linux/amd64"] != pushed["linux/arm64"]

    digest = registry.write_index(name, "v1", {d: p for p, d in pushed.items()})

    api = registry.distribution()
    media_type, body = api.manifest(name, "v1")
    assert media_type == DOCKER_MANIFEST_LIST
    listed = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in json.loads(body)["manifests"]
    }
    assert listed == pushed
    assert api.manifest_digest(name, "v1") == digest
    # the docker CLI's reader of the index agrees, logged in as ECR's token says
    inspected = cloudship_engine.client.api.inspect_distribution(
        f"{address}:v1", auth_config=registry.credentials().docker_auth_config()
    )
    assert {f"{p['os']}/{p['architecture']}" for p in inspected["Platforms"]} == set(pushed)


def test_plan_of_two_architectures_on_one_ecr_writes_an_index(
    aws: AwsTargets, cloudship_engine: Engine, tmp_path: Path, tags: list[str]
) -> None:
    """X86_64 and ARM64 services pushing to one ECR: each gets ``<tag>-<os>-<arch>`` and the
    plan says the tag becomes an index of both (no Notice that ECR cannot take one)."""
    import dataclasses

    _emulation_or_fail(cloudship_engine)
    base = f"cloudship-test/ecr-index-{uuid.uuid4().hex[:8]}"
    for arch, image in (("amd64", "busybox:latest"), ("arm64", ARM64_BASE)):
        cloudship_engine.tag(image, ImageRef.parse(f"{base}:{arch}"))
        tags.append(f"{base}:{arch}")
    folder = write(
        tmp_path / "multi",
        {"Dockerfile": f"FROM {base}:$TARGETARCH\nEXPOSE 8000\nCMD httpd -f -p 8000\n"},
    )
    amd = dataclasses.replace(aws.target(cpu_architecture="X86_64"), name="amd")
    arm = dataclasses.replace(aws.target(cpu_architecture="ARM64"), name="arm")
    planned = plan(folder, [amd, arm], name=aws.name("multi"), tag="v1", port=8000)
    assert [a for p in planned for a in p.actions if "image index" in a] == [
        f"write v1 as an image index of every platform pushed to {amd.registry.address}"
    ] * 2
    assert [p.image.rpartition(":")[2] for p in planned] == ["v1-linux-amd64", "v1-linux-arm64"]
    assert aws.client("ecr").describe_repositories()["repositories"] == []  # a plan creates none
