"""The boto3 session and clients every part of the AWS target shares.

The clients are built once per target with cloudship's retry configuration (standard mode:
exponential backoff with jitter on throttling and transient errors) and are plain attributes,
so a test can wrap the very client the runtime uses in a botocore ``Stubber``.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cloudship_aws.settings import AwsSettings

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

USER_AGENT = "cloudship"


def client_config() -> Config:
    """Standard retry mode (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html):
    throttling and 5xx answers are retried with backoff; everything else surfaces at once."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        user_agent_extra=USER_AGENT,
        connect_timeout=10,
        read_timeout=60,
    )


class AwsClients:
    """Lazily created clients of one boto3 session (no network call until first use)."""

    def __init__(self, settings: AwsSettings, session: boto3.Session | None = None) -> None:
        self._settings = settings
        self._given_session = session

    @cached_property
    def session(self) -> boto3.Session:
        import boto3

        if self._given_session is not None:
            return self._given_session
        return boto3.Session(profile_name=self._settings.profile, region_name=self._settings.region)

    @property
    def region(self) -> str:
        from cloudship.errors import ConfigError

        # botocore reads AWS_DEFAULT_REGION; AWS_REGION is what the other AWS SDKs and the
        # ECS/Lambda runtimes set, so it is honoured too.
        region = self.session.region_name or os.environ.get("AWS_REGION")
        if not region:
            raise ConfigError(
                "no AWS region is configured",
                fix="set AWS_REGION (or AWS_DEFAULT_REGION), a profile region, or region= "
                "in [aws] / CLOUDSHIP_AWS_REGION",
            )
        return region

    def _client(self, service: str) -> Any:
        # ``endpoint_url=None`` lets botocore apply AWS_ENDPOINT_URL(_<SERVICE>) itself.
        return self.session.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self._settings.endpoint_url,
            config=client_config(),
        )

    @cached_property
    def ecr(self) -> ECRClient:
        client: ECRClient = self._client("ecr")
        return client

    @cached_property
    def ecs(self) -> ECSClient:
        client: ECSClient = self._client("ecs")
        return client

    @cached_property
    def iam(self) -> IAMClient:
        client: IAMClient = self._client("iam")
        return client

    @cached_property
    def ec2(self) -> EC2Client:
        client: EC2Client = self._client("ec2")
        return client

    @cached_property
    def logs(self) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self._client("logs")
        return client

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager")
        return client

    @cached_property
    def sts(self) -> STSClient:
        client: STSClient = self._client("sts")
        return client

    @cached_property
    def autoscaling(self) -> Any:
        # Application Auto Scaling; untyped like elbv2 (its stubs are not a dependency)
        return self._client("application-autoscaling")

    @cached_property
    def route53(self) -> Any:
        # Untyped like elbv2; Route 53 is global (botocore routes it to its endpoint)
        return self._client("route53")

    @cached_property
    def elbv2(self) -> Any:
        # Untyped: boto3-stubs' elbv2 extra is not a dependency; only two read calls use it.
        return self._client("elbv2")
