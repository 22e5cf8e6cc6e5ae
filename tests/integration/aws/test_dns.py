"""``domain`` + a Route 53 hosted zone → an alias record to the ALB, on moto's Route 53 and
elbv2 (EcsScheduler plays ECS). Alias records to an ALB name its DNS name and its canonical
hosted zone id (https://docs.aws.amazon.com/Route53/latest/APIReference/API_AliasTarget.html)."""

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


def image(tag: str) -> ImageRef:
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return ImageRef.parse(f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app@{digest}")


def runtime(**settings: Any) -> FargateRuntime:
    given = AwsSettings(poll_interval=0.02, **settings)
    return FargateRuntime(given, AwsClients(given))


def zone(moto: MotoServer, name: str) -> str:
    created = moto.client("route53").create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)
    return str(created["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def records(moto: MotoServer, zone_id: str, name: str) -> list[dict[str, Any]]:
    found = moto.client("route53").list_resource_record_sets(HostedZoneId=zone_id)
    return [r for r in found["ResourceRecordSets"] if r["Name"] == name + "."]


@pytest.fixture
def name(cloudship_ecs_scheduler: EcsScheduler) -> str:
    return f"dns-{uuid.uuid4().hex[:8]}"


def test_domain_in_a_hosted_zone_gets_an_alias_to_the_alb(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    zone(cloudship_aws_env, "example.com")
    sub = zone(cloudship_aws_env, "shop.example.com")  # the longest suffix wins
    domain = f"{name}.shop.example.com"
    rt = runtime(domain=domain)
    spec = ServiceSpec(name=name, port=8000)
    rt.validate(spec)
    deployment = rt.deploy(spec, image("v1"), None, timeout=30)
    assert deployment.url == f"http://{domain}"
    (balancer,) = cloudship_aws_env.client("elbv2").describe_load_balancers()["LoadBalancers"]
    (record,) = records(cloudship_aws_env, sub, domain)
    assert record["Type"] == "A"  # cloudship's ALB is IPv4: no AAAA
    alias = record["AliasTarget"]
    assert alias["HostedZoneId"] == balancer["CanonicalHostedZoneId"]
    assert alias["DNSName"].rstrip(".") == balancer["DNSName"].lower()

    rt.destroy(name)
    assert records(cloudship_aws_env, sub, domain) == []


def test_without_a_zone_for_the_domain_no_record_is_made(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    other = zone(cloudship_aws_env, "example.org")
    deployment = runtime(domain=f"{name}.example.com").deploy(
        ServiceSpec(name=name, port=8000), image("v1"), None, timeout=30
    )
    assert deployment.url == f"http://{name}.example.com"
    assert records(cloudship_aws_env, other, f"{name}.example.com") == []


def nothing_created(moto: MotoServer) -> None:
    assert moto.client("ecs").list_clusters()["clusterArns"] == []
    assert moto.client("elbv2").describe_load_balancers()["LoadBalancers"] == []


def test_a_given_zone_that_does_not_hold_the_domain_is_refused_first(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    other = zone(cloudship_aws_env, "example.org")
    spec = ServiceSpec(name=name, port=8000)
    with pytest.raises(ConfigError, match="is not in hosted zone") as caught:
        runtime(domain=f"{name}.example.com", hosted_zone_id=other).validate(spec)
    assert caught.value.fix and "hosted_zone_id" in caught.value.fix
    with pytest.raises(ConfigError, match="does not exist"):
        runtime(domain=f"{name}.example.com", hosted_zone_id="Z0000000NOTHERE").validate(spec)
    nothing_created(cloudship_aws_env)


def test_a_name_with_someone_elses_record_is_refused_first(
    name: str, cloudship_aws_env: MotoServer
) -> None:
    zone_id = zone(cloudship_aws_env, "example.com")
    domain = f"{name}.example.com"
    cloudship_aws_env.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": domain,
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "elsewhere.example.net"}],
                    },
                }
            ]
        },
    )
    with pytest.raises(ConfigError, match="already has a CNAME record"):
        runtime(domain=domain).validate(ServiceSpec(name=name, port=8000))
    nothing_created(cloudship_aws_env)
    (kept,) = records(cloudship_aws_env, zone_id, domain)
    assert kept["Type"] == "CNAME"
