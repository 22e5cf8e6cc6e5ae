"""examples/ship_aws.py, run as a user runs it, against moto (with ECS's scheduler played by
``EcsScheduler``), then the resources it leaves checked as an AWS engineer would."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from cloudship.testing.registry import ThrowawayRegistry
from cloudship_aws.testing import EcsScheduler, MotoServer

EXAMPLE = Path(__file__).parents[3] / "examples" / "ship_aws.py"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cloudship_docker_config_guard")]


def test_example_ships_the_monitor_app_behind_the_alb(
    cloudship_aws_env: MotoServer,
    cloudship_ecr_registry: ThrowawayRegistry,
    cloudship_ecs_scheduler: EcsScheduler,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What a user's environment would hold; here the endpoints are moto and the local
    # registry that accepts moto's ECR login (moto has no registry endpoint).
    monkeypatch.setenv("CLOUDSHIP_AWS_REGISTRY", cloudship_ecr_registry.address)
    monkeypatch.setenv("CLOUDSHIP_AWS_POLL_INTERVAL", "0.05")
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "shipped: monitor r1" in out

    ecs, elbv2, ec2 = (cloudship_aws_env.client(s) for s in ("ecs", "elbv2", "ec2"))
    (service,) = ecs.describe_services(cluster="cloudship", services=["monitor"])["services"]
    assert service["status"] == "ACTIVE" and service["launchType"] == "FARGATE"
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])[
        "taskDefinition"
    ]
    (container,) = definition["containerDefinitions"]
    assert "@sha256:" in container["image"]  # pinned by digest
    assert "healthCheck" not in container  # python:3.11-slim has no wget/curl
    (attached,) = service["loadBalancers"]
    (group,) = elbv2.describe_target_groups(TargetGroupArns=[attached["targetGroupArn"]])[
        "TargetGroups"
    ]
    assert group["HealthCheckPath"] == "/health"  # from the app's cloudship.toml
    (balancer,) = elbv2.describe_load_balancers(LoadBalancerArns=group["LoadBalancerArns"])[
        "LoadBalancers"
    ]
    assert f"url    http://{balancer['DNSName']}" in out
    health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
    assert [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]] == ["healthy"]
    # the tasks admit traffic from the ALB's group only
    task_groups = service["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
    (task_group,) = ec2.describe_security_groups(GroupIds=task_groups)["SecurityGroups"]
    sources = [
        pair["GroupId"] for p in task_group["IpPermissions"] for pair in p["UserIdGroupPairs"]
    ]
    assert sources == balancer["SecurityGroups"]
    assert all(not p["IpRanges"] for p in task_group["IpPermissions"])

    # Re-running it unchanged deploys nothing, as its docstring says. (The push is redone
    # here only because moto's ECR never saw the first one: it has no registry endpoint.)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    again = capsys.readouterr()
    assert "unchanged r1 serves it" in again.out + again.err
    assert "pushed 0 layers" in again.out + again.err
