"""The provider: settings precedence, platforms, and validation before any AWS call."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from pydantic import SecretStr

from cloudship.config import ConfigFile
from cloudship.errors import ConfigError
from cloudship.runtime import ServiceSpec
from cloudship.targets import load_provider
from cloudship_aws import AwsSettings, EcrRegistry, FargateRuntime, provider
from cloudship_aws.session import AwsClients


def test_aws_target_resolves_to_ecr_and_fargate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIP_AWS_CLUSTER", "from-env")
    assert load_provider("aws") is provider
    config = ConfigFile.model_validate(
        {"aws": {"cluster": "from-file", "cpu_architecture": "ARM64"}}
    )
    target = provider.target(config, {"subnets": ["subnet-1"]})
    assert isinstance(target.registry, EcrRegistry)
    assert isinstance(target.runtime, FargateRuntime)
    assert target.paired
    assert isinstance(target.runtime, FargateRuntime)
    settings = target.runtime.settings
    assert settings.cluster == "from-env"
    assert settings.cpu_architecture == "ARM64"
    assert settings.subnets == ["subnet-1"]
    assert target.runtime.supported_platforms() == {"linux/arm64"}


def test_unknown_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="clustr"):
        provider.target(ConfigFile(), {"clustr": "x"})


def test_default_platform_is_amd64(offline_clients: AwsClients) -> None:
    runtime = FargateRuntime(AwsSettings(), offline_clients)
    assert runtime.supported_platforms() == {"linux/amd64"}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"cpu": 0.25, "memory": "4Gi"}, "512Mi, 1Gi, 2Gi"),
        ({"cpu": 3}, "0.25, 0.5, 1, 2, 4, 8, 16"),
        ({"secrets": {"TOKEN": SecretStr("plain-value")}}, "must be the ARN"),
        ({"replicas": 2, "max_replicas": 1}, "max_replicas=1 is below replicas=2"),
    ],
)
def test_validate_refuses_before_any_aws_call(
    offline_clients: AwsClients, changes: dict[str, object], match: str
) -> None:
    runtime = FargateRuntime(AwsSettings(subnets=["subnet-1"]), offline_clients)
    spec = ServiceSpec.model_validate({"name": "web", "port": 8000, **changes})
    # Active stubbers with nothing queued: any AWS call would raise UnStubbedResponseError.
    with (
        Stubber(offline_clients.ec2),
        Stubber(offline_clients.ecs),
        Stubber(offline_clients.iam),
        pytest.raises(ConfigError, match=match),
    ):
        runtime.validate(spec)


def test_validate_checks_given_subnets_read_only(offline_clients: AwsClients) -> None:
    runtime = FargateRuntime(AwsSettings(subnets=["subnet-1"]), offline_clients)
    spec = ServiceSpec(name="web", port=8000)
    with Stubber(offline_clients.ec2) as stub:
        stub.add_client_error(
            "describe_subnets",
            service_error_code="InvalidSubnetID.NotFound",
            service_message="The subnet ID 'subnet-1' does not exist",
            expected_params={"SubnetIds": ["subnet-1"]},
        )
        with pytest.raises(ConfigError, match="subnet-1"):
            runtime.validate(spec)
        stub.assert_no_pending_responses()


def test_the_rollout_needs_start_health_checks_and_deregistration_delay(
    offline_clients: AwsClients,
) -> None:
    """Behind cloudship's ALB: start 60 s + 10 s x 2 healthy checks + 30 s deregistration
    delay; computed without any AWS call (no Stubber response is queued)."""
    spec = ServiceSpec(name="web", port=8000)
    with Stubber(offline_clients.ecs), Stubber(offline_clients.elbv2):
        runtime = FargateRuntime(AwsSettings(), offline_clients)
        seconds, why = runtime.rollout_seconds(spec)
        assert seconds == 110 and "deregistration delay 30 s" in why
        slow = FargateRuntime(AwsSettings(deregistration_delay=600), offline_clients)
        assert slow.rollout_seconds(spec)[0] == 680
        private = spec.model_copy(update={"public": False})
        assert runtime.rollout_seconds(private)[0] == 60
        checked = FargateRuntime(AwsSettings(health_command="true"), offline_clients)
        assert checked.rollout_seconds(private)[0] == 60 + 30 + 15
