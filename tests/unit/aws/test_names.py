"""AWS's name, ARN and host rules, checked before any call (cloudship_aws.names)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloudship.errors import ConfigError
from cloudship_aws import AwsSettings
from cloudship_aws.iam import execution_policy
from cloudship_aws.names import check_repository_name, dns_suffix, partition, policy_resource
from cloudship_aws.taskdef import secret_arns
from tests.unit.aws.test_taskdef import spec

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


@pytest.mark.parametrize("name", ["a", "a--b", "-ab", "ab-", "Web", "a..b"])
def test_names_ecr_refuses_are_refused_first(name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid ECR repository name"):
        check_repository_name(name)


@pytest.mark.parametrize("name", ["ab", "web-1", "team/web", "a.b_c-d"])
def test_names_ecr_accepts(name: str) -> None:
    check_repository_name(name)


@pytest.mark.parametrize("days", [0, 2, 10, 31, 366, 5000])
def test_retention_days_cloudwatch_rejects_are_refused(days: int) -> None:
    with pytest.raises(ValidationError, match="CloudWatch Logs keeps logs for one of"):
        AwsSettings(log_retention_days=days)


def test_retention_days_cloudwatch_accepts() -> None:
    assert AwsSettings(log_retention_days=14).log_retention_days == 14


def test_partitions_and_hosts() -> None:
    assert (partition("cn-north-1"), dns_suffix("cn-north-1")) == ("aws-cn", "amazonaws.com.cn")
    assert partition("us-gov-west-1") == "aws-us-gov"
    assert (partition("eu-west-1"), dns_suffix("eu-west-1")) == ("aws", "amazonaws.com")
    assert execution_policy("cn-northwest-1").startswith("arn:aws-cn:iam::aws:policy/")


@pytest.mark.parametrize(
    ("value_from", "resource"),
    [
        (SECRET, SECRET),
        (f"{SECRET}:password::", SECRET),  # a JSON key
        (f"{SECRET}:password:AWSPREVIOUS:", SECRET),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:db",  # partial ARN
         "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-??????"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/app/db",
         "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"),
    ],
)  # fmt: skip
def test_the_execution_role_policy_names_the_secret_itself(value_from: str, resource: str) -> None:
    from pydantic import SecretStr

    assert secret_arns(spec(secrets={"DB": SecretStr(value_from)})) == {"DB": value_from}
    assert policy_resource(value_from) == resource


def test_china_secret_arns_are_accepted() -> None:
    from pydantic import SecretStr

    arn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-AbCdEf"
    assert secret_arns(spec(secrets={"DB": SecretStr(arn)})) == {"DB": arn}
