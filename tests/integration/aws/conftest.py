"""AWS integration fixtures: moto server + the ECR-login registry come from cloudship.testing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cloudship.config import ConfigFile
from cloudship.targets import Target
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_aws.testing import EcsScheduler, MotoServer

pytest.importorskip("boto3")


class AwsTargets:
    """Builds ``aws`` targets whose pushes go to the local ECR-login registry."""

    def __init__(
        self, moto: MotoServer, registry: ThrowawayRegistry, scheduler: EcsScheduler
    ) -> None:
        self.moto = moto
        self.registry = registry
        self.scheduler = scheduler

    def target(self, **settings: Any) -> Target:
        from cloudship_aws import provider

        settings.setdefault("registry", self.registry.address)
        settings.setdefault("poll_interval", 0.05)
        return provider.target(ConfigFile(), settings)

    @staticmethod
    def name(base: str = "svc") -> str:
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def client(self, service: str) -> Any:
        return self.moto.client(service)


@pytest.fixture
def aws(
    cloudship_aws_env: MotoServer,
    cloudship_ecr_registry: ThrowawayRegistry,
    cloudship_ecs_scheduler: EcsScheduler,
) -> AwsTargets:
    """moto plus ECS's scheduler (tasks started and registered as the ALB's targets)."""
    return AwsTargets(cloudship_aws_env, cloudship_ecr_registry, cloudship_ecs_scheduler)
