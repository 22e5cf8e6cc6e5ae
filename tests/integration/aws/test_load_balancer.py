"""The ALB's listeners and rules on moto's elbv2 (EcsScheduler plays ECS): HTTPS with a
certificate and HTTP redirecting to it
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html),
and a rule clash refused in preflight, before anything is created."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from cloudship.errors import ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.loadbalancer import target_group_name
from cloudship_aws.testing import MOTO_ACCOUNT, EcsScheduler, MotoServer

IMAGE = ImageRef.parse(
    f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app@sha256:"
    + hashlib.sha256(b"v1").hexdigest()
)


def runtime(**settings: Any) -> FargateRuntime:
    given = AwsSettings(poll_interval=0.02, **settings)
    return FargateRuntime(given, AwsClients(given))


@pytest.fixture
def name(cloudship_ecs_scheduler: EcsScheduler) -> str:
    return f"lb-{uuid.uuid4().hex[:8]}"


def test_a_certificate_adds_https_and_http_redirects_to_it(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    cert = cloudship_aws_env.client("acm").request_certificate(DomainName="app.example.com")[
        "CertificateArn"
    ]
    deployment = runtime(certificate_arn=cert).deploy(
        ServiceSpec(name=name, port=8000), IMAGE, None, timeout=30
    )
    elbv2, ec2 = cloudship_aws_env.client("elbv2"), cloudship_aws_env.client("ec2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    assert deployment.url == f"https://{balancer['DNSName']}"
    listeners = {
        li["Port"]: li
        for li in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    }
    assert set(listeners) == {80, 443}
    https, http = listeners[443], listeners[80]
    assert https["Protocol"] == "HTTPS"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [cert]
    (redirect,) = http["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    # the service's rule sits on the HTTPS listener; HTTP only redirects
    (rule,) = [
        r
        for r in elbv2.describe_rules(ListenerArn=https["ListenerArn"])["Rules"]
        if not r["IsDefault"]
    ]
    (group,) = elbv2.describe_target_groups(Names=[target_group_name(AwsSettings(), name)])[
        "TargetGroups"
    ]
    assert rule["Actions"][0]["TargetGroupArn"] == group["TargetGroupArn"]
    assert [
        r
        for r in elbv2.describe_rules(ListenerArn=http["ListenerArn"])["Rules"]
        if not r["IsDefault"]
    ] == []
    # the ALB's group admits 80 (for the redirect) and 443 from anywhere
    (alb_group,) = ec2.describe_security_groups(GroupIds=balancer["SecurityGroups"])[
        "SecurityGroups"
    ]
    assert {p["FromPort"] for p in alb_group["IpPermissions"]} == {80, 443}


def test_a_rule_clash_is_refused_before_anything_is_created(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    first = runtime(path="/api/*")
    spec = ServiceSpec(name=name, port=8000)
    first.deploy(spec, IMAGE, None, timeout=30)
    first.validate(spec)  # its own rule is no clash

    other = f"{name}-b"
    with pytest.raises(
        ConfigError, match=r"already routes path-pattern /api/\* to another"
    ) as caught:
        runtime(path="/api/*").validate(ServiceSpec(name=other, port=8000))
    assert caught.value.fix and "path=" in caught.value.fix
    # nothing of the second service exists
    elbv2 = cloudship_aws_env.client("elbv2")
    groups = [g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]]
    assert target_group_name(AwsSettings(), other) not in groups
    services = cloudship_aws_env.client("ecs").list_services(cluster="cloudship")["serviceArns"]
    assert [s.rsplit("/", 1)[-1] for s in services] == [name]
    security = cloudship_aws_env.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"cloudship-{other}"]}]
    )["SecurityGroups"]
    assert security == []
    # another path is fine
    runtime(path="/web/*").validate(ServiceSpec(name=other, port=8000))
