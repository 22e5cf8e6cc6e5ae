"""The task execution role: what ECS itself uses to pull the image, write logs and read secrets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from cloudship.errors import DeployError
from cloudship_aws import names
from cloudship_aws.errors import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

EXECUTION_ROLE = "cloudship-ecs-task-execution"
EXECUTION_POLICY_PATH = "iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#: the managed policy in the commercial partition (``execution_policy(region)`` for others)
EXECUTION_POLICY = f"arn:aws:{EXECUTION_POLICY_PATH}"


def execution_policy(region: str) -> str:
    """``AmazonECSTaskExecutionRolePolicy`` in ``region``'s partition (aws-cn, aws-us-gov)."""
    return f"arn:{names.partition(region)}:{EXECUTION_POLICY_PATH}"


SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
ECS_SERVICE_PRINCIPAL = "ecs.amazonaws.com"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def ensure_execution_role(iam: IAMClient, region: str = "us-east-1") -> str:
    """The ARN of ``cloudship-ecs-task-execution`` (created with the managed
    ``AmazonECSTaskExecutionRolePolicy`` when missing)."""
    with aws_errors(f"ensuring IAM role {EXECUTION_ROLE}", DeployError):
        try:
            arn = iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"]
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            arn = iam.create_role(
                RoleName=EXECUTION_ROLE,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="ECS task execution role for services shipped by cloudship",
                Tags=[{"Key": "managed-by", "Value": "cloudship"}],
            )["Role"]["Arn"]
        policy = execution_policy(region)
        attached = iam.list_attached_role_policies(RoleName=EXECUTION_ROLE)["AttachedPolicies"]
        if not any(p.get("PolicyArn") == policy for p in attached):
            iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=policy)
    return arn


def ensure_service_linked_role(iam: IAMClient) -> None:
    """Make sure ``AWSServiceRoleForECS`` exists before the first cluster is created.

    ECS creates it on first use, but a ``CreateCluster`` racing that creation fails ("Unable
    to assume the service linked role"); creating it explicitly, as AWS Copilot does
    (aws/copilot-cli#1324), closes the race. "Already exists" is success: IAM answers
    ``InvalidInput`` ("has been taken in this account")
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
    """
    with aws_errors("ensuring the ECS service-linked role", DeployError):
        try:
            iam.get_role(RoleName=SERVICE_LINKED_ROLE)
            return
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        try:
            iam.create_service_linked_role(AWSServiceName=ECS_SERVICE_PRINCIPAL)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            taken = error_code(exc) == "InvalidInput" and "has been taken" in message
            if not taken and error_code(exc) != "EntityAlreadyExists":
                raise


def secrets_policy_name(service: str) -> str:
    return f"cloudship-secrets-{service}"


def grant_secrets(iam: IAMClient, service: str, arns: list[str]) -> None:
    """Let the execution role read exactly ``service``'s secrets: the managed policy does not
    include ``secretsmanager:GetSecretValue`` / ``ssm:GetParameters``
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html)."""
    name = secrets_policy_name(service)
    with aws_errors(f"granting the execution role access to {service}'s secrets", DeployError):
        # read first: an unchanged policy is not written again (a no-op ship writes nothing)
        try:
            current = iam.get_role_policy(RoleName=EXECUTION_ROLE, PolicyName=name)
            existing: Any = current["PolicyDocument"]
            if isinstance(existing, str):
                existing = json.loads(unquote(existing))
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            existing = None
        if not arns:
            if existing is not None:
                iam.delete_role_policy(RoleName=EXECUTION_ROLE, PolicyName=name)
            return
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"],
                    # the secrets' own ARNs: JSON-key tails dropped, partial ARNs completed
                    "Resource": sorted({names.policy_resource(arn) for arn in arns}),
                }
            ],
        }
        if existing != document:
            iam.put_role_policy(
                RoleName=EXECUTION_ROLE, PolicyName=name, PolicyDocument=json.dumps(document)
            )
