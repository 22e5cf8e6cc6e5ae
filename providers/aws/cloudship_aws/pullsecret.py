"""Pulling from a registry other than ECR (e.g. a private Docker Hub repository).

ECS pulls such images with credentials kept in a Secrets Manager secret that the container
definition names in ``repositoryCredentials.credentialsParameter``, and the task execution
role must be allowed to read it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/private-auth.html). cloudship keeps
one secret per service, ``cloudship/<service>/registry-credentials``, written from the
registry's in-memory credentials and rewritten only when they change.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from cloudship.errors import DeployError
from cloudship.registry import RegistryAuth
from cloudship_aws.errors import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def is_ecr_host(host: str) -> bool:
    return bool(_ECR_HOST.match(host))


def secret_name(service: str) -> str:
    return f"cloudship/{service}/registry-credentials"


def existing_arn(secrets: SecretsManagerClient, service: str) -> str | None:
    """The secret's ARN if it exists (read-only: for ``plan``)."""
    with aws_errors("looking up the registry-credentials secret", DeployError):
        try:
            return secrets.describe_secret(SecretId=secret_name(service))["ARN"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    return None


def ensure(secrets: SecretsManagerClient, service: str, auth: RegistryAuth) -> str:
    """The ARN of the service's registry-credentials secret, holding ``auth``."""
    name = secret_name(service)
    body = json.dumps(
        {"username": auth.username, "password": auth.password.get_secret_value()},
        sort_keys=True,
    )
    with aws_errors(f"storing pull credentials for {auth.server} in Secrets Manager", DeployError):
        try:
            current = secrets.get_secret_value(SecretId=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            created = secrets.create_secret(
                Name=name,
                SecretString=body,
                Description=f"cloudship: pull credentials for {auth.server}",
                Tags=[{"Key": "managed-by", "Value": "cloudship"}],
            )
            return created["ARN"]
        if current.get("SecretString") != body:
            secrets.put_secret_value(SecretId=name, SecretString=body)
        return current["ARN"]


def delete(secrets: SecretsManagerClient, service: str) -> None:
    """Remove the service's registry-credentials secret, if any (at ``destroy``)."""
    with aws_errors("deleting the registry-credentials secret", DeployError):
        try:
            secrets.delete_secret(SecretId=secret_name(service), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
