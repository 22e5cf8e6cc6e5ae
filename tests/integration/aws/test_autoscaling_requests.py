"""``requests_per_target``: a second target-tracking policy on ``ALBRequestCountPerTarget``
beside CPU, on moto's Application Auto Scaling and elbv2 (EcsScheduler plays ECS)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from cloudship.errors import ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.testing import MOTO_ACCOUNT, EcsScheduler, MotoServer


def runtime(**settings: Any) -> FargateRuntime:
    given = AwsSettings(poll_interval=0.02, **settings)
    return FargateRuntime(given, AwsClients(given))


IMAGE = ImageRef.parse(
    f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app@sha256:"
    + hashlib.sha256(b"v1").hexdigest()
)


def policies(moto: MotoServer, name: str) -> dict[str, dict[str, Any]]:
    found = moto.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=f"service/cloudship/{name}"
    )["ScalingPolicies"]
    return {p["PolicyName"]: p["TargetTrackingScalingPolicyConfiguration"] for p in found}


def test_requests_per_target_adds_an_alb_request_count_policy(
    cloudship_ecs_scheduler: EcsScheduler, cloudship_aws_env: MotoServer
) -> None:
    name = f"busy-{uuid.uuid4().hex[:8]}"
    spec = ServiceSpec(name=name, port=8000, replicas=1, max_replicas=4)
    runtime(requests_per_target=500).deploy(spec, IMAGE, None, timeout=30)

    found = policies(cloudship_aws_env, name)
    assert set(found) == {f"cloudship-cpu-{name}", f"cloudship-requests-{name}"}
    metric = found[f"cloudship-requests-{name}"]["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert found[f"cloudship-requests-{name}"]["TargetValue"] == 500
    # app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>, from the real ARNs
    elbv2 = cloudship_aws_env.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (group,) = elbv2.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])[
        "TargetGroups"
    ]
    lb_part = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    tg_part = group["TargetGroupArn"].rsplit(":", 1)[1]
    assert metric["ResourceLabel"] == f"{lb_part}/{tg_part}"
    assert metric["ResourceLabel"].startswith(f"app/{balancer['LoadBalancerName']}/")
    assert tg_part.startswith(f"targetgroup/{group['TargetGroupName']}/")

    # unchanged: not written again; without the setting: the requests policy goes, CPU stays
    again = runtime(requests_per_target=500).deploy(spec, IMAGE, None, timeout=30)
    assert not again.changed
    runtime().deploy(spec, IMAGE, None, timeout=30)
    assert set(policies(cloudship_aws_env, name)) == {f"cloudship-cpu-{name}"}


@pytest.mark.parametrize(
    ("spec", "settings", "match"),
    [
        (ServiceSpec(name="a", port=8000), {}, "max_replicas is not set"),
        (ServiceSpec(name="a", port=8000, max_replicas=3, public=False), {}, "is not public"),
        (
            ServiceSpec(name="a", port=8000, max_replicas=3),
            {"target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"},
            "uses target_group_arn",
        ),
    ],
)
def test_requests_per_target_needs_autoscaling_behind_cloudships_alb(
    offline_settings: None, spec: ServiceSpec, settings: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        from cloudship_aws import autoscaling

        autoscaling.check(spec, AwsSettings(requests_per_target=100, **settings))


@pytest.fixture
def offline_settings() -> None:
    """autoscaling.check makes no call: nothing to set up."""
