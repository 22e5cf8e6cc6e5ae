"""ship() to the aws target for real: the engine pushes to a registry that accepts exactly the
login moto's ECR token decodes to, and ECS/IAM/EC2/Logs state is read back from moto."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloudship import ConfigError, PlatformMismatchError, plan, rollback, ship, status
from cloudship.errors import AuthError, HealthCheckFailed
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_aws import FargateRuntime
from cloudship_aws.iam import EXECUTION_POLICY, EXECUTION_ROLE
from cloudship_aws.testing import (
    MOTO_ECR_LOGIN,
    record_push,
)
from tests.conftest import write_app
from tests.integration.aws.conftest import AwsTargets

pytestmark = pytest.mark.usefixtures("cloudship_docker_config_guard")

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-AbCdEf"
# ship(timeout=...) below what a real rollout needs (110 s behind the ALB) is refused before
# the build; moto answers in seconds, so 120 s is only a ceiling here.


def registry_digest(registry: ThrowawayRegistry, repository: str, tag: str) -> str | None:
    response = httpx.head(
        f"http://{registry.address}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        auth=MOTO_ECR_LOGIN,
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def record_calls(runtime: Any, operation: str) -> list[dict[str, Any]]:
    """Requests the runtime's real ECS client sends for ``operation`` (observed, not altered):
    moto drops ``deploymentConfiguration`` from what it reports back."""
    assert isinstance(runtime, FargateRuntime)
    seen: list[dict[str, Any]] = []
    runtime.clients.ecs.meta.events.register(
        f"provide-client-params.ecs.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


def nothing_created(aws: AwsTargets) -> None:
    assert aws.client("ecr").describe_repositories()["repositories"] == []
    assert aws.client("ecs").list_clusters()["clusterArns"] == []
    assert aws.client("ecs").list_task_definitions()["taskDefinitionArns"] == []
    roles = aws.client("iam").list_roles()["Roles"]
    assert EXECUTION_ROLE not in [r["RoleName"] for r in roles]


def assert_load_balanced(
    aws: AwsTargets, service: dict[str, Any], group: dict[str, Any], url: str | None, vpc_id: str
) -> None:
    """What an AWS engineer checks of a load-balanced web service on the ALB."""
    ec2 = aws.client("ec2")
    # The load-balanced web service: the cluster's ALB, an ip target group on the port with
    # the health path and a 30 s deregistration delay, a rule, and tasks reachable only from
    # the ALB's security group.
    elbv2 = aws.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers(Names=["cloudship-cloudship"])["LoadBalancers"]
    assert balancer["Scheme"] == "internet-facing" and balancer["Type"] == "application"
    assert url == f"http://{balancer['DNSName']}"
    (lb_group,) = balancer["SecurityGroups"]
    (permission,) = group["IpPermissions"]
    assert (permission["FromPort"], permission["ToPort"]) == (8000, 8000)
    assert [g["GroupId"] for g in permission["UserIdGroupPairs"]] == [lb_group]
    assert permission["IpRanges"] == []
    (alb_sg,) = ec2.describe_security_groups(GroupIds=[lb_group])["SecurityGroups"]
    assert {p["FromPort"] for p in alb_sg["IpPermissions"]} == {80}
    (attached,) = service["loadBalancers"]
    assert (attached["containerName"], attached["containerPort"]) == ("app", 8000)
    (target_group,) = elbv2.describe_target_groups(TargetGroupArns=[attached["targetGroupArn"]])[
        "TargetGroups"
    ]
    assert target_group["TargetType"] == "ip" and target_group["Port"] == 8000
    assert target_group["HealthCheckPath"] == "/"
    assert target_group["VpcId"] == vpc_id
    attributes = elbv2.describe_target_group_attributes(
        TargetGroupArn=target_group["TargetGroupArn"]
    )["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in attributes
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTP", 80)
    assert listener["DefaultActions"][0]["Type"] == "fixed-response"
    rules = [
        r
        for r in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        if not r["IsDefault"]
    ]
    (rule,) = rules
    assert rule["Actions"][0]["TargetGroupArn"] == target_group["TargetGroupArn"]
    # the gate saw the task's IP healthy in the target group (registered by EcsScheduler)
    health = elbv2.describe_target_health(TargetGroupArn=target_group["TargetGroupArn"])
    assert [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]] == ["healthy"]


def test_ship_creates_repo_task_definition_and_service(aws: AwsTargets, app_dir: Path) -> None:
    name = aws.name("web")
    target = aws.target()
    creates = record_calls(target.runtime, "CreateService")
    shipment = ship(
        app_dir,
        target=target,
        name=name,
        port=8000,
        env={"MODE": "prod"},
        secrets={"API_KEY": SecretStr(SECRET_ARN)},
        timeout=120,
    )
    assert shipment.changed and shipment.revision == "r1"
    assert shipment.image == f"{aws.registry.address}/{name}@{shipment.digest}"
    # The push went through the engine to the registry with the ECR login.
    assert registry_digest(aws.registry, name, shipment.tag or "") == shipment.digest

    (repo,) = aws.client("ecr").describe_repositories()["repositories"]
    assert repo["repositoryName"] == name
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"

    ecs = aws.client("ecs")
    (service,) = ecs.describe_services(cluster="cloudship", services=[name])["services"]
    td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
    definition = td["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    assert container["image"] == shipment.image
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    assert definition["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert container["secrets"] == [{"name": "API_KEY", "valueFrom": SECRET_ARN}]
    assert {"name": "MODE", "value": "prod"} in container["environment"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == f"/cloudship/{name}"
    assert any(t["key"] == "cloudship:fingerprint" for t in td["tags"])

    iam = aws.client("iam")
    role = iam.get_role(RoleName=EXECUTION_ROLE)["Role"]
    assert definition["executionRoleArn"] == role["Arn"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert trust == {"Service": "ecs-tasks.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=EXECUTION_ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [EXECUTION_POLICY]
    secrets_policy = iam.get_role_policy(
        RoleName=EXECUTION_ROLE, PolicyName=f"cloudship-secrets-{name}"
    )
    assert secrets_policy["PolicyDocument"]["Statement"][0]["Resource"] == [SECRET_ARN]

    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=f"/cloudship/{name}")
    assert groups["logGroups"][0]["retentionInDays"] == 30

    # Network: the default VPC's default subnets and a group opening the port.
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    default_subnets = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    awsvpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(awsvpc["subnets"]) == sorted(s["SubnetId"] for s in default_subnets)
    assert awsvpc["assignPublicIp"] == "ENABLED"
    (group,) = ec2.describe_security_groups(GroupIds=awsvpc["securityGroups"])["SecurityGroups"]
    assert group["GroupName"] == f"cloudship-{name}"
    assert service["launchType"] == "FARGATE"

    assert_load_balanced(aws, service, group, shipment.url, vpc["VpcId"])

    (create,) = creates
    assert create["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }


def test_second_unchanged_ship_changes_nothing(aws: AwsTargets, app_dir: Path) -> None:
    name = aws.name("same")
    target = aws.target()
    first = ship(app_dir, target=target, name=name, port=8000, timeout=120)
    # moto's ECR never sees the push (it has no registry endpoint): record it as ECR would.
    record_push(aws.client("ecr"), aws.registry, name, first.tag or "")
    registrations = record_calls(target.runtime, "RegisterTaskDefinition")
    updates = record_calls(target.runtime, "UpdateService")

    planned = plan(app_dir, target=target, name=name, port=8000)
    assert not planned.changed, planned.actions

    again = ship(app_dir, target=target, name=name, port=8000, timeout=120)
    assert not again.changed
    assert again.push is not None and again.push.skipped
    assert again.revision == first.revision == "r1"
    assert registrations == [] and updates == []
    assert (
        len(aws.client("ecs").list_task_definitions(familyPrefix=name)["taskDefinitionArns"]) == 1
    )


READ_ONLY = ("Describe", "List", "Get", "BatchGet", "BatchCheck")


def record_operations(target: Any) -> list[str]:
    """Every AWS operation any of the target's clients sends (``service.Operation``), seen
    through botocore's own event system (nothing is altered)."""
    runtime = target.runtime
    assert isinstance(runtime, FargateRuntime)
    seen: list[str] = []
    clients = runtime.clients
    for service in (
        "ecr",
        "ecs",
        "iam",
        "ec2",
        "logs",
        "secretsmanager",
        "sts",
        "elbv2",
        "autoscaling",
        "route53",
    ):
        client = getattr(clients, service)
        client.meta.events.register(
            "before-call",
            lambda model, _service=service, **_: seen.append(f"{_service}.{model.name}"),
        )
    return seen


def test_a_no_op_reship_makes_no_mutating_aws_call(aws: AwsTargets, app_dir: Path) -> None:
    """With a domain in a hosted zone too: its alias record is read, not rewritten."""
    name = aws.name("noop")
    aws.client("route53").create_hosted_zone(Name="example.com", CallerReference=name)
    target = aws.target(domain=f"{name}.example.com")
    first = ship(app_dir, target=target, name=name, port=8000, secrets={"K": SecretStr(SECRET_ARN)})
    record_push(aws.client("ecr"), aws.registry, name, first.tag or "")
    operations = record_operations(target)
    again = ship(app_dir, target=target, name=name, port=8000, secrets={"K": SecretStr(SECRET_ARN)})
    assert not again.changed
    assert operations, "the recorder saw the calls"
    writes = [op for op in operations if not op.split(".", 1)[1].startswith(READ_ONLY)]
    assert writes == []
    assert "route53.ListResourceRecordSets" in operations
    print(f"no-op re-ship: {len(operations)} AWS calls: {operations}")


def test_scaling_updates_the_service_without_a_new_revision(aws: AwsTargets, app_dir: Path) -> None:
    name = aws.name("scale")
    target = aws.target()
    ship(app_dir, target=target, name=name, port=8000, timeout=120)
    registrations = record_calls(target.runtime, "RegisterTaskDefinition")
    updates = record_calls(target.runtime, "UpdateService")
    scaled = ship(app_dir, target=target, name=name, port=8000, replicas=2, timeout=120)
    assert scaled.changed and scaled.revision == "r1" and scaled.previous_revision is None
    assert registrations == []
    (update,) = updates
    assert update["desiredCount"] == 2 and update["taskDefinition"].endswith(f"{name}:1")
    (service,) = aws.client("ecs").describe_services(cluster="cloudship", services=[name])[
        "services"
    ]
    assert service["desiredCount"] == 2


def route_out(ec2: Any, vpc: str, subnet: str, *, nat: bool) -> None:
    """A route table for ``subnet`` whose 0.0.0.0/0 goes to a NAT gateway or to an IGW."""
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    if nat:
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        gateway = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)
        nat_id = gateway["NatGateway"]["NatGatewayId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
    else:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)


@pytest.mark.parametrize(
    ("routes", "match"),
    [(None, "has no route to 0.0.0.0/0"), ("igw", "no public IP")],
)
def test_subnets_without_a_way_out_are_refused_before_anything_is_created(
    aws: AwsTargets, app_dir: Path, routes: str | None, match: str
) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    if routes == "igw":
        route_out(ec2, vpc, subnet, nat=False)
    name = aws.name("stuck")
    with pytest.raises(ConfigError, match=match) as caught:
        ship(app_dir, target=aws.target(subnets=[subnet]), name=name, port=8000, public=False)
    assert subnet in str(caught.value)
    nothing_created(aws)


def test_a_private_service_in_given_subnets_has_no_load_balancer_and_no_public_ip(
    aws: AwsTargets, app_dir: Path
) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    route_out(ec2, vpc, subnet, nat=True)
    name = aws.name("own")
    shipment = ship(
        app_dir, target=aws.target(subnets=[subnet]), name=name, port=8000, public=False
    )
    (service,) = aws.client("ecs").describe_services(cluster="cloudship", services=[name])[
        "services"
    ]
    awsvpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert awsvpc["subnets"] == [subnet]
    assert awsvpc["assignPublicIp"] == "DISABLED"
    assert service.get("loadBalancers", []) == []
    assert aws.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    (group,) = ec2.describe_security_groups(GroupIds=awsvpc["securityGroups"])["SecurityGroups"]
    assert group["VpcId"] == vpc
    # the port is open to the VPC only, never to the internet
    (permission,) = group["IpPermissions"]
    assert [r["CidrIp"] for r in permission["IpRanges"]] == ["10.20.0.0/16"]
    assert shipment.url is None


def test_target_group_makes_the_load_balancer_the_url(aws: AwsTargets, app_dir: Path) -> None:
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    balancer = elbv2.create_load_balancer(
        Name="cs-test", Subnets=[s["SubnetId"] for s in subnets["Subnets"][:2]]
    )["LoadBalancers"][0]
    group = elbv2.create_target_group(
        Name="cs-test", Protocol="HTTP", Port=8000, VpcId=vpc["VpcId"], TargetType="ip"
    )["TargetGroups"][0]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    name = aws.name("alb")
    target = aws.target(target_group_arn=group["TargetGroupArn"])
    creates = record_calls(target.runtime, "CreateService")
    shipment = ship(app_dir, target=target, name=name, port=8000, timeout=120)
    assert shipment.url == f"http://{balancer['DNSName']}"
    (create,) = creates
    assert create["loadBalancers"] == [
        {"targetGroupArn": group["TargetGroupArn"], "containerName": "app", "containerPort": 8000}
    ]


def test_change_update_url_status_and_rollback(aws: AwsTargets, tmp_path: Path) -> None:
    name = aws.name("roll")
    target = aws.target()
    app = write_app(tmp_path / "app", "v1")
    first = ship(app, target=target, name=name, port=8000, timeout=120)
    (balancer,) = aws.client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert first.url == f"http://{balancer['DNSName']}"  # stable across deploys

    updates = record_calls(target.runtime, "UpdateService")
    write_app(app, "v2")
    second = ship(app, target=target, name=name, port=8000, env={"MODE": "v2"}, timeout=120)
    assert second.changed and second.revision == "r2" and second.previous_revision == "r1"
    assert second.digest != first.digest
    (update,) = updates
    assert update["taskDefinition"].endswith(f"{name}:2")
    # loadBalancers on UpdateService too, not only on create
    assert [lb["containerPort"] for lb in update["loadBalancers"]] == [8000]
    assert update["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"] is True

    assert second.url == first.url
    ecs = aws.client("ecs")
    current = status(name, target=target)
    assert current.url == first.url
    assert [(r.id, r.state) for r in current.revisions] == [("r2", "serving"), ("r1", "standby")]
    assert current.current is not None and current.current.digest == second.digest

    back = rollback(name, target=target, timeout=120)
    assert back.changed and back.revision == "r1" and back.previous == "r2"
    assert back.digest == first.digest
    (service,) = ecs.describe_services(cluster="cloudship", services=[name])["services"]
    assert service["taskDefinition"].endswith(f"{name}:1")
    # rollback never deregisters: both revisions stay
    assert len(ecs.list_task_definitions(familyPrefix=name)["taskDefinitionArns"]) == 2


def test_plan_of_a_new_service_creates_nothing(aws: AwsTargets, app_dir: Path) -> None:
    planned = plan(app_dir, target=aws.target(), name=aws.name("plan"), port=8000)
    assert planned.changed
    text = "\n".join(planned.actions)
    assert f"create IAM role {EXECUTION_ROLE}" in text
    assert "create ECS service" in text and "circuit breaker" in text
    nothing_created(aws)


def test_logs_and_destroy(aws: AwsTargets, app_dir: Path) -> None:
    name = aws.name("gone")
    target = aws.target()
    ship(
        app_dir,
        target=target,
        name=name,
        port=8000,
        secrets={"K": SecretStr(SECRET_ARN)},
        timeout=120,
    )
    logs = aws.client("logs")
    now_ms = int(time.time() * 1000)  # older events than the 30-day retention are rejected
    logs.create_log_stream(logGroupName=f"/cloudship/{name}", logStreamName="ecs/app/task1")
    logs.put_log_events(
        logGroupName=f"/cloudship/{name}",
        logStreamName="ecs/app/task1",
        logEvents=[{"timestamp": now_ms + i, "message": f"line {i}"} for i in range(5)],
    )
    assert target.runtime.logs(name, tail=3) == ["line 2", "line 3", "line 4"]

    target.runtime.destroy(name)
    target.runtime.destroy(name)  # no error the second time
    assert target.runtime.status(name) is None
    assert (
        aws.client("ecs").list_task_definitions(familyPrefix=name, status="ACTIVE")[
            "taskDefinitionArns"
        ]
        == []
    )
    groups = aws.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"cloudship-{name}"]}]
    )["SecurityGroups"]
    assert groups == []
    policies = aws.client("iam").list_role_policies(RoleName=EXECUTION_ROLE)["PolicyNames"]
    assert f"cloudship-secrets-{name}" not in policies


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"cpu": 0.25, "memory": "4Gi"}, ConfigError, "with cpu=0.25 use memory 512Mi, 1Gi, 2Gi"),
        ({"subnets": ["subnet-0123456789abcdef0"]}, ConfigError, "subnet-0123456789abcdef0"),
        ({"secrets": {"TOKEN": "s3cr3t-plain-value"}}, ConfigError, "must be the ARN"),
        # start 60 s + health checks 10 s x 2 + deregistration delay 30 s
        ({"timeout": 50}, ConfigError, "its rollout needs at least 110 s"),
        # ECS runs health_command with /bin/sh -c: the busybox image has wget, not curl
        (
            {"health_command": "curl -f http://localhost:8000/ || exit 1"},
            ConfigError,
            "has no curl",
        ),
        # Fargate on ARM64 gets an arm64 build; asking for another platform is refused
        (
            {"cpu_architecture": "ARM64", "platform": "linux/amd64"},
            PlatformMismatchError,
            "linux/amd64 but target 'aws' runs linux/arm64",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_created(
    aws: AwsTargets, app_dir: Path, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    name = aws.name("bad")
    with pytest.raises(error, match=match) as caught:
        # options mixes ship() options and aws settings: the untyped keyword path, on purpose
        given: dict[str, Any] = {"registry": aws.registry.address, **options}
        ship(app_dir, target="aws", name=name, port=8000, **given)
    assert "s3cr3t" not in str(caught.value)
    nothing_created(aws)
    assert registry_digest(aws.registry, name, "latest") is None


def test_missing_credentials_are_refused_before_anything_is_created(
    aws: AwsTargets, app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AuthError, match="no usable AWS credentials"):
        ship(app_dir, target=aws.target(), name=aws.name("nocreds"), port=8000)
    nothing_created(aws)


IAM_PREFIX = {"elbv2": "elasticloadbalancing", "autoscaling": "application-autoscaling"}


def documented_actions() -> set[str]:
    """Every action the IAM policy in docs/aws.md allows."""
    import json
    import re

    text = (Path(__file__).parents[3] / "docs" / "aws.md").read_text()
    (block,) = re.findall(r"```json\n(\{\n  \"Version\".*?)\n```", text, flags=re.S)
    actions: set[str] = set()
    for statement in json.loads(block)["Statement"]:
        given = statement["Action"]
        actions |= {given} if isinstance(given, str) else set(given)
    return actions


def test_documented_iam_policy_covers_every_call(aws: AwsTargets, tmp_path: Path) -> None:
    name = aws.name("iam")
    aws.client("route53").create_hosted_zone(Name="example.com", CallerReference=name)
    target = aws.target(domain=f"{name}.example.com")
    operations = record_operations(target)
    app = write_app(tmp_path / "app", "v1")
    ship(
        app,
        target=target,
        name=name,
        port=8000,
        secrets={"K": SecretStr(SECRET_ARN)},
        max_replicas=3,
        timeout=120,
    )
    write_app(app, "v2")
    ship(app, target=target, name=name, port=8000, timeout=120)
    status(name, target=target)
    assert target.runtime.services() == [name]
    target.runtime.logs(name, tail=5)
    rollback(name, target=target, timeout=120)
    target.runtime.destroy(name)
    used = {f"{IAM_PREFIX.get(s, s)}:{op}" for s, op in (o.split(".", 1) for o in operations)}
    missing = sorted(used - documented_actions())
    assert missing == [], f"docs/aws.md's IAM policy lacks {missing}"
    assert len(used) > 40  # the flow really exercised the provider


def test_an_app_failing_its_alb_health_checks_is_rolled_back_and_marked_failed(
    aws: AwsTargets, tmp_path: Path
) -> None:
    """EcsScheduler stops the failing app's task with ECS's reason; the gate fails fast,
    r1 serves again, and r2 is "failed" so that rollback never picks it."""
    name = aws.name("sick")
    target = aws.target()
    app = write_app(tmp_path / "app", "v1")
    ship(app, target=target, name=name, port=8000, timeout=120)
    aws.scheduler.failing.add(name)
    write_app(app, "v2")
    with pytest.raises(HealthCheckFailed) as caught:
        ship(app, target=target, name=name, port=8000, timeout=120)
    assert "Task failed ELB health checks" in str(caught.value)
    assert caught.value.rolled_back_to == "r1"
    current = status(name, target=target)
    assert [(r.id, r.state) for r in current.revisions] == [("r2", "failed"), ("r1", "serving")]


def test_max_replicas_scales_on_cpu_with_application_auto_scaling(
    aws: AwsTargets, app_dir: Path
) -> None:
    name = aws.name("auto")
    target = aws.target()
    # replicas=1: moto (MOTO_ECS_SERVICE_RUNNING=1) completes a new service's rollout only
    # when it desires one task
    first = ship(app_dir, target=target, name=name, port=8000, replicas=1, max_replicas=5)
    aas = aws.client("application-autoscaling")
    resource = f"service/cloudship/{name}"
    (scalable,) = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource])[
        "ScalableTargets"
    ]
    assert (scalable["MinCapacity"], scalable["MaxCapacity"]) == (1, 5)
    assert scalable["ScalableDimension"] == "ecs:service:DesiredCount"
    (policy,) = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)[
        "ScalingPolicies"
    ]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    # unchanged: nothing written, and a deploy never resets the count autoscaling owns
    record_push(aws.client("ecr"), aws.registry, name, first.tag or "")
    operations = record_operations(target)
    again = ship(app_dir, target=target, name=name, port=8000, replicas=1, max_replicas=5)
    assert not again.changed
    assert [o for o in operations if not o.split(".", 1)[1].startswith(READ_ONLY)] == []
    # dropping max_replicas removes the scaling
    ship(app_dir, target=target, name=name, port=8000, replicas=2)
    assert (
        aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource])[
            "ScalableTargets"
        ]
        == []
    )


def test_max_replicas_below_replicas_is_refused_before_anything_is_created(
    aws: AwsTargets, app_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="max_replicas=1 is below replicas=2"):
        ship(
            app_dir,
            target=aws.target(),
            name=aws.name("low"),
            port=8000,
            replicas=2,
            max_replicas=1,
        )
    nothing_created(aws)
