"""Two ships of one ECS service at once, on moto with ECS's scheduler played by EcsScheduler
(deployments PRIMARY/ACTIVE as ECS documents them): never two successes, never a lost update.

Each ship is its own runtime with its own clients, as two processes would be. Images are
digest-pinned ECR references: moto's ECS does not pull them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import pytest

from cloudship.errors import CloudshipError, ConcurrentShipError
from cloudship.images import ImageRef
from cloudship.runtime import Deployment, ServiceSpec
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.testing import MOTO_ACCOUNT, EcsScheduler, MotoServer


def runtime() -> FargateRuntime:
    settings = AwsSettings(poll_interval=0.02)
    return FargateRuntime(settings, AwsClients(settings))


def image(tag: str) -> ImageRef:
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return ImageRef.parse(f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app@{digest}")


def spec(name: str) -> ServiceSpec:
    return ServiceSpec(name=name, port=8000, public=False)


def ship_tag(moto: MotoServer, td_arn: str) -> str:
    tags = moto.client("ecs").list_tags_for_resource(resourceArn=td_arn)["tags"]
    return next(t["value"] for t in tags if t["key"] == "cloudship:ship")


def serving(moto: MotoServer, name: str) -> str:
    (service,) = moto.client("ecs").describe_services(cluster="cloudship", services=[name])[
        "services"
    ]
    return str(service["taskDefinition"])


@pytest.fixture
def name(cloudship_ecs_scheduler: EcsScheduler) -> str:
    name = f"race-{uuid.uuid4().hex[:8]}"
    runtime().deploy(spec(name), image("v1"), None, timeout=30)  # r1 serves
    return name


def on_call(rt: FargateRuntime, event: str, action: Any) -> None:
    """Run ``action`` once, inside ``rt``'s ECS client, at botocore ``event``."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    rt.clients.ecs.meta.events.register(event, hook)


def test_another_ship_switching_before_the_re_read_is_refused(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    """B ships r3 to completion while A is registering r2: A's re-read finds r3, A does not
    switch and names B."""
    a, b = runtime(), runtime()
    won: list[Deployment] = []
    on_call(
        a,
        "after-call.ecs.RegisterTaskDefinition",
        lambda: won.append(b.deploy(spec(name), image("v3"), None, timeout=30)),
    )
    with pytest.raises(ConcurrentShipError) as caught:
        a.deploy(spec(name), image("v2"), None, timeout=30)
    (winner,) = won
    now = serving(cloudship_aws_env, name)
    assert winner.changed and now.endswith(f":{winner.revision[1:]}")
    assert caught.value.holder == ship_tag(cloudship_aws_env, now)
    assert "since this ship read it" in str(caught.value)


def test_another_ship_switching_after_the_re_read_is_not_lost(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    """B ships r3 to completion between A's re-read and A's UpdateService (the window ECS's
    lack of a conditional update leaves): UpdateService's answer shows B's deployment, so A
    puts r3 back and raises; B's success stays true."""
    a, b = runtime(), runtime()
    won: list[Deployment] = []
    on_call(
        a,
        "before-call.ecs.UpdateService",
        lambda: won.append(b.deploy(spec(name), image("v3"), None, timeout=30)),
    )
    with pytest.raises(ConcurrentShipError) as caught:
        a.deploy(spec(name), image("v2"), None, timeout=30)
    (winner,) = won
    now = serving(cloudship_aws_env, name)
    assert now.endswith(f":{winner.revision[1:]}")
    assert caught.value.holder == ship_tag(cloudship_aws_env, now)
    assert f"{winner.revision} serves again" in str(caught.value)


@pytest.mark.parametrize("attempt", range(3))
def test_two_racing_ships_never_both_succeed(
    name: str, cloudship_aws_env: MotoServer, attempt: int
) -> None:
    """Two threads, both past their first read (a barrier after registration): whatever the
    interleaving, at most one succeeds, the service serves the winner's revision, and the
    loser names the ship whose revision serves."""
    ships = [runtime(), runtime()]
    barrier = threading.Barrier(2, timeout=30)
    for rt in ships:
        on_call(rt, "after-call.ecs.RegisterTaskDefinition", barrier.wait)
    results: dict[int, Deployment | CloudshipError] = {}

    def run(i: int) -> None:
        try:
            results[i] = ships[i].deploy(spec(name), image(f"v{i}-{attempt}"), None, timeout=30)
        except CloudshipError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2, results
    wins = [r for r in results.values() if isinstance(r, Deployment)]
    losses = [r for r in results.values() if not isinstance(r, Deployment)]
    assert all(isinstance(r, ConcurrentShipError) for r in losses), losses
    assert len(wins) <= 1 and losses, results
    now = serving(cloudship_aws_env, name)
    if wins:
        assert now.endswith(f":{wins[0].revision[1:]}")
    assert not now.endswith(":1")  # one of the two revisions serves, never neither
    tags = {ship_tag(cloudship_aws_env, now)}
    assert any(isinstance(r, ConcurrentShipError) and r.holder in tags for r in losses)
