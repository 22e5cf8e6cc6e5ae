"""Where the tasks run: subnets and security groups, given or derived from the default VPC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cloudship.errors import ConfigError, DeployError
from cloudship_aws.errors import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from cloudship_aws.settings import AwsSettings


@dataclass(frozen=True)
class Network:
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    vpc_id: str


def security_group_name(service: str) -> str:
    return f"cloudship-{service}"


def check_given(ec2: EC2Client, settings: AwsSettings) -> None:
    """Read-only: the configured subnets and security groups exist (else ``ConfigError``)."""
    with aws_errors("checking the configured subnets", ConfigError):
        if settings.subnets:
            ec2.describe_subnets(SubnetIds=settings.subnets)
    with aws_errors("checking the configured security groups", ConfigError):
        if settings.security_groups:
            ec2.describe_security_groups(GroupIds=settings.security_groups)


def _default_route(ec2: EC2Client, subnet: str, vpc_id: str) -> dict[str, Any] | None:
    """The subnet's ``0.0.0.0/0`` route: from its own route table, else the VPC's main one
    (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html)."""
    tables = (
        ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
            "RouteTables"
        ]
        or ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
    )
    for table in tables:
        for route in table.get("Routes", []):
            if (
                route.get("DestinationCidrBlock") == "0.0.0.0/0"
                and route.get("State") != "blackhole"
            ):
                return dict(route)
    return None


def check_routes(ec2: EC2Client, settings: AwsSettings, *, public_ip: bool, region: str) -> None:
    """Read-only: each configured subnet has a way out for pulling the image and writing logs.

    A task with a public IP needs ``0.0.0.0/0`` via an internet gateway (or a NAT); one without
    needs a NAT gateway (or another non-IGW next hop), or ECR VPC endpoints. Otherwise the task
    sits PENDING for minutes and stops with "ResourceInitializationError: unable to pull secrets
    or registry auth"
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html).
    """
    if not settings.subnets:
        return  # the default VPC's default subnets route through its internet gateway
    with aws_errors("checking the subnets' routes", ConfigError):
        subnets = ec2.describe_subnets(SubnetIds=settings.subnets)["Subnets"]
        for subnet in subnets:
            subnet_id, vpc_id = subnet["SubnetId"], subnet["VpcId"]
            route = _default_route(ec2, subnet_id, vpc_id) or {}
            via_igw = str(route.get("GatewayId", "")).startswith("igw-")
            via_other = any(
                route.get(k)
                for k in ("NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "InstanceId")
            )
            if via_other or (via_igw and public_ip):
                continue
            endpoints = ec2.describe_vpc_endpoints(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "service-name", "Values": [f"com.amazonaws.{region}.ecr.dkr"]},
                ]
            )["VpcEndpoints"]
            if endpoints:
                continue
            if via_igw:
                raise ConfigError(
                    f"subnet {subnet_id} reaches the internet through an internet gateway, but "
                    "these tasks get no public IP, so they could not pull the image",
                    fix="use private subnets with a NAT gateway, add ECR/S3/Logs VPC endpoints, "
                    "or ship a public service with assign_public_ip=true",
                )
            raise ConfigError(
                f"subnet {subnet_id} has no route to 0.0.0.0/0 (no internet or NAT gateway) "
                "and its VPC has no ECR endpoint: tasks could not pull the image",
                fix="add a NAT gateway route (private subnets) or an internet gateway route "
                "(public subnets), or ECR/S3/Logs VPC endpoints",
            )


def _subnets(ec2: EC2Client, settings: AwsSettings) -> tuple[tuple[str, ...], str]:
    with aws_errors("looking up subnets", DeployError):
        if settings.subnets:
            found = ec2.describe_subnets(SubnetIds=settings.subnets)["Subnets"]
            vpcs = {s["VpcId"] for s in found}
            if len(vpcs) != 1:
                raise ConfigError(
                    f"subnets {settings.subnets} span {len(vpcs)} VPCs",
                    fix="give subnets of one VPC",
                )
            return tuple(settings.subnets), vpcs.pop()
        vpcs_found = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs_found:
            raise ConfigError(
                "this region has no default VPC, and no subnets are configured",
                fix="set subnets=[...] (public subnets, or private ones with a NAT gateway or "
                "ECR/S3/Logs VPC endpoints)",
            )
        vpc_id = vpcs_found[0]["VpcId"]
        subnets = ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "default-for-az", "Values": ["true"]},
            ]
        )["Subnets"]
    if not subnets:
        raise ConfigError(
            f"the default VPC {vpc_id} has no default subnets",
            fix="set subnets=[...] explicitly",
        )
    return tuple(sorted(s["SubnetId"] for s in subnets)), vpc_id


Permission = tuple[int, str]  # (port, source): a CIDR, or "sg-…" for a security group


def _permissions_of(group: dict[str, Any]) -> set[Permission]:
    found: set[Permission] = set()
    for p in group.get("IpPermissions", []):
        if p.get("IpProtocol") != "tcp" or p.get("FromPort") != p.get("ToPort"):
            continue
        port = int(p.get("FromPort", 0))
        found |= {(port, r["CidrIp"]) for r in p.get("IpRanges", []) if "CidrIp" in r}
        found |= {(port, r["CidrIpv6"]) for r in p.get("Ipv6Ranges", []) if "CidrIpv6" in r}
        found |= {(port, g["GroupId"]) for g in p.get("UserIdGroupPairs", []) if "GroupId" in g}
    return found


def _ip_permissions(permissions: set[Permission]) -> list[Any]:
    out: list[Any] = []
    for port, source in sorted(permissions):
        entry: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if source.startswith("sg-"):
            entry["UserIdGroupPairs"] = [{"GroupId": source, "Description": "cloudship"}]
        elif ":" in source:
            entry["Ipv6Ranges"] = [{"CidrIpv6": source, "Description": "cloudship"}]
        else:
            entry["IpRanges"] = [{"CidrIp": source, "Description": "cloudship"}]
        out.append(entry)
    return out


def ensure_security_group(
    ec2: EC2Client, name: str, description: str, vpc_id: str, wanted: set[Permission]
) -> str:
    """The group ``name`` in ``vpc_id`` admitting exactly ``wanted`` (TCP port, source).

    Only what differs is written: an unchanged group costs one DescribeSecurityGroups. Rules
    cloudship no longer wants (the world-open task port of earlier versions) are revoked.
    """
    with aws_errors(f"ensuring security group {name}", DeployError):
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["SecurityGroups"]
        if found:
            group_id = found[0]["GroupId"]
            have = _permissions_of(dict(found[0]))
        else:
            group_id = ec2.create_security_group(
                GroupName=name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": "managed-by", "Value": "cloudship"}],
                    }
                ],
            )["GroupId"]
            have = set()
        if wanted - have:
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=_ip_permissions(wanted - have)
            )
        if have - wanted:
            ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=_ip_permissions(have - wanted)
            )
    return group_id


def vpc_cidrs(ec2: EC2Client, vpc_id: str) -> set[str]:
    with aws_errors(f"reading VPC {vpc_id}", DeployError):
        (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    cidrs = {a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", []) if "CidrBlock" in a}
    return cidrs or {vpc["CidrBlock"]}


def locate(ec2: EC2Client, settings: AwsSettings) -> tuple[tuple[str, ...], str]:
    """The task subnets and their VPC (given, or the default VPC's default subnets)."""
    return _subnets(ec2, settings)


def resolve(
    ec2: EC2Client,
    settings: AwsSettings,
    service: str,
    port: int,
    *,
    subnets: tuple[str, ...],
    vpc_id: str,
    admit_from: set[str],
) -> Network:
    """The subnets and security groups for ``service``: the configured groups, or
    ``cloudship-<service>`` admitting ``port`` only from ``admit_from`` (the load balancer's
    groups for a public service, the VPC's CIDRs for a private one)."""
    groups = tuple(settings.security_groups) or (
        ensure_security_group(
            ec2,
            security_group_name(service),
            f"cloudship service {service}",
            vpc_id,
            {(port, source) for source in admit_from},
        ),
    )
    return Network(subnets=subnets, security_groups=groups, vpc_id=vpc_id)


def delete_security_group(ec2: EC2Client, service: str) -> None:
    """Remove the group cloudship made for ``service``, if any; a group still attached to a
    draining task's ENI stays (AWS refuses), which is harmless."""
    name = security_group_name(service)
    with aws_errors(f"deleting security group {name}", DeployError):
        found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
        for group in found["SecurityGroups"]:
            try:
                ec2.delete_security_group(GroupId=group["GroupId"])
            except ClientError as exc:
                if error_code(exc) != "DependencyViolation":
                    raise
