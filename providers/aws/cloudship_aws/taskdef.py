"""The task definition cloudship registers for a service, and its fingerprint.

Everything that defines a revision is in the registration request, so the fingerprint is a
hash of that request. It is stored as a tag on the task definition: re-shipping the same image
with the same spec finds it on the serving revision and registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cloudship.errors import ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws.fargate import TaskSize
from cloudship_aws.settings import AwsSettings

CONTAINER = "app"
LOG_STREAM_PREFIX = "ecs"
FINGERPRINT_TAG = "cloudship:fingerprint"
SERVICE_TAG = "cloudship:service"
#: the ship that registered a task definition (see concurrency.py)
SHIP_TAG = "cloudship:ship"

# ECS reads a container secret from Secrets Manager or SSM Parameter Store by ARN
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html).
_SECRET_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+(:[^:\s]*){0,3}"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/\S+)$"
)


def revision_id(task_definition_arn: str) -> str:
    """``arn:…:task-definition/web:7`` → ``r7``."""
    return "r" + task_definition_arn.rsplit(":", 1)[-1]


def family_of(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def log_group(service: str) -> str:
    return f"/cloudship/{service}"


def log_stream(task_id: str) -> str:
    """The stream ``awslogs`` writes a task's container output to."""
    return f"{LOG_STREAM_PREFIX}/{CONTAINER}/{task_id}"


def secret_arns(spec: ServiceSpec) -> dict[str, str]:
    """``name → ARN`` of the spec's secrets; ``ConfigError`` (never quoting the value) when one
    is not a Secrets Manager or SSM parameter ARN."""
    arns: dict[str, str] = {}
    for name, value in sorted(spec.secrets.items()):
        arn = value.get_secret_value()
        if not _SECRET_ARN.match(arn):
            raise ConfigError(
                f"secret {name!r} must be the ARN of a Secrets Manager secret or an SSM "
                "parameter on the aws target (its value is not shown)",
                fix="store the value first (aws secretsmanager create-secret --name ... "
                f"--secret-string ...) and pass secrets={{{name!r}: 'arn:aws:secretsmanager:...'}}",
            )
        arns[name] = arn
    return arns


def health_check(command: str) -> dict[str, Any]:
    # The ECS healthCheck parameters and their defaults:
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html
    return {
        "command": ["CMD-SHELL", command],
        "interval": 15,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 30,
    }


@dataclass(frozen=True)
class TaskDefinition:
    """A ``RegisterTaskDefinition`` request and the fingerprint of its content."""

    request: dict[str, Any]
    fingerprint: str

    def register_kwargs(self, service: str, *, ship: str | None = None) -> dict[str, Any]:
        """The request with cloudship's tags; ``ship`` names the ship registering it
        (``concurrency.SHIP_TAG``), so that a concurrent ship can say who it met."""
        tags = [
            {"key": FINGERPRINT_TAG, "value": self.fingerprint},
            {"key": SERVICE_TAG, "value": service},
        ]
        if ship:
            tags.append({"key": SHIP_TAG, "value": ship})
        return {**self.request, "tags": tags}


def build(
    spec: ServiceSpec,
    image: ImageRef,
    size: TaskSize,
    settings: AwsSettings,
    *,
    execution_role: str,
    region: str,
    repository_credentials: str | None = None,
) -> TaskDefinition:
    """The registration request. ``repository_credentials`` is the ARN of the secret ECS pulls
    a non-ECR image with (``pullsecret``)."""
    if not image.digest:
        raise ConfigError(f"{image} is not pinned by digest", fix="deploy repo@sha256:…")
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": str(image),
        "essential": True,
        "portMappings": [{"containerPort": spec.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.env.items())],
        # valueFrom only: the secret itself never enters the task definition
        "secrets": [{"name": k, "valueFrom": arn} for k, arn in secret_arns(spec).items()],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group(spec.name),
                "awslogs-region": region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }
    if repository_credentials:
        container["repositoryCredentials"] = {"credentialsParameter": repository_credentials}
    if settings.health_command:
        container["healthCheck"] = health_check(settings.health_command)
    request: dict[str, Any] = {
        "family": spec.name,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(size.cpu),
        "memory": str(size.memory_mib),
        "runtimePlatform": {
            "cpuArchitecture": settings.cpu_architecture,
            "operatingSystemFamily": "LINUX",
        },
        "executionRoleArn": execution_role,
        "containerDefinitions": [container],
    }
    if settings.task_role_arn:
        request["taskRoleArn"] = settings.task_role_arn
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:32]
    return TaskDefinition(request=request, fingerprint=digest)
