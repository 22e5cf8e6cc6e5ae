"""The task execution role: what ECS itself uses to pull the image, write logs and read secrets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from cloudship.errors import DeployError
from cloudship_aws.errors import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

EXECUTION_ROLE = "cloudship-ecs-task-execution"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
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


def ensure_execution_role(iam: IAMClient) -> str:
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
        attached = iam.list_attached_role_policies(RoleName=EXECUTION_ROLE)["AttachedPolicies"]
        if not any(p.get("PolicyArn") == EXECUTION_POLICY for p in attached):
            iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=EXECUTION_POLICY)
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
        if not arns:
            try:
                iam.delete_role_policy(RoleName=EXECUTION_ROLE, PolicyName=name)
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
            return
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"],
                    "Resource": sorted(arns),
                }
            ],
        }
        iam.put_role_policy(
            RoleName=EXECUTION_ROLE, PolicyName=name, PolicyDocument=json.dumps(document)
        )
