"""Where the tasks run: subnets and security groups, given or derived from the default VPC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def _ensure_security_group(ec2: EC2Client, service: str, vpc_id: str, port: int) -> str:
    """A group named ``cloudship-<service>`` allowing TCP ``port`` from anywhere (the task has
    a public IP and nothing else in front of it)."""
    name = security_group_name(service)
    with aws_errors(f"ensuring security group {name}", DeployError):
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["SecurityGroups"]
        if found:
            group_id = found[0]["GroupId"]
        else:
            group_id = ec2.create_security_group(
                GroupName=name,
                Description=f"cloudship service {service}",
                VpcId=vpc_id,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": "managed-by", "Value": "cloudship"}],
                    }
                ],
            )["GroupId"]
        try:
            ec2.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "cloudship"}],
                    }
                ],
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.Duplicate":
                raise
    return group_id


def resolve(ec2: EC2Client, settings: AwsSettings, service: str, port: int) -> Network:
    """The subnets and security groups for ``service``, creating its security group when none
    are configured."""
    subnets, vpc_id = _subnets(ec2, settings)
    groups = tuple(settings.security_groups) or (
        _ensure_security_group(ec2, service, vpc_id, port),
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
