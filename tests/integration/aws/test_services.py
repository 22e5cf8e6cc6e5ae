"""``services()`` on ECS: the cluster's ACTIVE services that cloudship deployed (its tag), on
moto; and ``cloudship services --target aws`` on top of it."""

from __future__ import annotations

import hashlib
import json
import uuid

from typer.testing import CliRunner

from cloudship.cli import app
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.testing import MOTO_ACCOUNT, EcsScheduler, MotoServer


def image(tag: str) -> ImageRef:
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return ImageRef.parse(f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app@{digest}")


def test_services_lists_what_cloudship_deployed_in_the_cluster(
    cloudship_ecs_scheduler: EcsScheduler, cloudship_aws_env: MotoServer
) -> None:
    settings = AwsSettings(poll_interval=0.02)
    runtime = FargateRuntime(settings, AwsClients(settings))
    assert runtime.services() == []  # no cluster yet: nothing, and no error

    names = sorted(f"{base}-{uuid.uuid4().hex[:6]}" for base in ("api", "web", "gone"))
    for name in names:
        runtime.deploy(
            ServiceSpec(name=name, port=8000, public=False), image(name), None, timeout=30
        )
    gone = next(n for n in names if n.startswith("gone"))
    runtime.destroy(gone)
    # a service another tool created in the same cluster (no cloudship tag)
    ecs = cloudship_aws_env.client("ecs")
    family = ecs.register_task_definition(
        family="theirs", containerDefinitions=[{"name": "c", "image": "nginx", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="cloudship", serviceName="theirs", taskDefinition=family)

    expected = [n for n in names if n != gone]
    assert runtime.services() == expected

    listed = CliRunner().invoke(
        app, ["services", "--target", "aws", "--json", "--set", "poll_interval=0.02"]
    )
    assert listed.exit_code == 0, listed.output
    assert [one["name"] for one in json.loads(listed.stdout)] == expected
    assert all(one["revision"] == "r1" for one in json.loads(listed.stdout))
