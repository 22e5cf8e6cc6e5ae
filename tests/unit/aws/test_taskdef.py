"""The task definition request: pinned image, secrets by reference only, a stable fingerprint."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import SecretStr

from cloudship.errors import ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws.fargate import TaskSize
from cloudship_aws.settings import AwsSettings
from cloudship_aws.taskdef import build, log_stream, secret_arns


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


DIGEST = digest_of(b"image v1")
IMAGE = ImageRef.parse(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}")
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/cloudship-ecs-task-execution"


def spec(**changes: object) -> ServiceSpec:
    values: dict[str, object] = {
        "name": "web",
        "port": 8000,
        "env": {"MODE": "prod"},
        "secrets": {"API_KEY": SecretStr(ARN)},
        "health_path": "/health",
    }
    values.update(changes)
    return ServiceSpec.model_validate(values)


def settings(**values: object) -> AwsSettings:
    return AwsSettings.model_validate(values)


def test_request_content() -> None:
    td = build(
        spec(), IMAGE, TaskSize(256, 512), settings(), execution_role=ROLE, region="eu-west-1"
    )
    request = td.request
    assert request["requiresCompatibilities"] == ["FARGATE"]
    assert request["networkMode"] == "awsvpc"
    assert (request["cpu"], request["memory"]) == ("256", "512")
    assert request["runtimePlatform"] == {
        "cpuArchitecture": "X86_64",
        "operatingSystemFamily": "LINUX",
    }
    assert request["executionRoleArn"] == ROLE
    assert "taskRoleArn" not in request
    (container,) = request["containerDefinitions"]
    assert container["image"] == str(IMAGE)
    assert container["portMappings"] == [{"containerPort": 8000, "protocol": "tcp"}]
    assert container["environment"] == [{"name": "MODE", "value": "prod"}]
    assert container["secrets"] == [{"name": "API_KEY", "valueFrom": ARN}]
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == "/cloudship/web"
    assert options["awslogs-region"] == "eu-west-1"
    assert "awslogs-create-group" not in options  # the log group is created by cloudship
    # No container health check unless asked: python:3.11-slim has neither wget nor curl.
    assert "healthCheck" not in container


def test_secret_values_never_become_environment() -> None:
    td = build(spec(), IMAGE, TaskSize(256, 512), settings(), execution_role=ROLE, region="r")
    environment = td.request["containerDefinitions"][0]["environment"]
    assert all(entry["name"] != "API_KEY" for entry in environment)


def test_arm64_task_role_and_an_opt_in_health_command() -> None:
    command = "python -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:8000/\")'"
    chosen = settings(
        cpu_architecture="ARM64",
        task_role_arn="arn:aws:iam::1:role/app",
        health_command=command,
    )
    td = build(spec(), IMAGE, TaskSize(512, 1024), chosen, execution_role=ROLE, region="r")
    assert td.request["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert td.request["taskRoleArn"] == "arn:aws:iam::1:role/app"
    check = td.request["containerDefinitions"][0]["healthCheck"]
    assert check["command"] == ["CMD-SHELL", command]


def test_fingerprint_is_stable_and_follows_the_content() -> None:
    size = TaskSize(256, 512)
    first = build(spec(), IMAGE, size, settings(), execution_role=ROLE, region="r")
    again = build(spec(), IMAGE, size, settings(), execution_role=ROLE, region="r")
    changed = build(
        spec(env={"MODE": "dev"}), IMAGE, size, settings(), execution_role=ROLE, region="r"
    )
    other_image = build(
        spec(),
        IMAGE.with_digest(digest_of(b"image v2")),
        size,
        settings(),
        execution_role=ROLE,
        region="r",
    )
    assert first.fingerprint == again.fingerprint
    assert len({first.fingerprint, changed.fingerprint, other_image.fingerprint}) == 3
    tags = first.register_kwargs("web")["tags"]
    assert {"key": "cloudship:fingerprint", "value": first.fingerprint} in tags


def test_image_must_be_pinned() -> None:
    with pytest.raises(ConfigError, match="not pinned by digest"):
        build(
            spec(),
            IMAGE.with_tag("v1"),
            TaskSize(256, 512),
            settings(),
            execution_role=ROLE,
            region="r",
        )


def test_a_plain_secret_value_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        secret_arns(spec(secrets={"API_KEY": SecretStr("hunter2-very-secret")}))
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)
    assert "API_KEY" in str(caught.value)


def test_ssm_parameters_are_accepted() -> None:
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db-password"
    assert secret_arns(spec(secrets={"DB": SecretStr(arn)})) == {"DB": arn}


def test_request_is_json_serialisable_and_log_stream_naming() -> None:
    td = build(spec(), IMAGE, TaskSize(256, 512), settings(), execution_role=ROLE, region="r")
    json.dumps(td.request)
    assert log_stream("abc123") == "ecs/app/abc123"
