"""The ECS Fargate runtime keeps the core's RuntimeContract, on moto with ECS's scheduler
played by ``EcsScheduler`` (tasks started, registered as ALB targets, failing images stopped
for their ELB health checks).

moto pulls nothing and the ALB's DNS name does not resolve here, so "what the service
answers" is read as ECS would serve it: the image of the task definition the service runs."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from cloudship.images import ImageRef
from cloudship.runtime import Runtime
from cloudship.testing.contract import Release, ReleaseFactory, RuntimeContract
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.testing import MOTO_ACCOUNT, EcsScheduler, MotoServer


class TestFargateRuntime(RuntimeContract):
    answers: dict[str, str]

    @pytest.fixture
    def cloudship_contract_runtime(
        self, cloudship_aws_env: MotoServer, cloudship_ecs_scheduler: EcsScheduler
    ) -> Runtime:
        settings = AwsSettings(poll_interval=0.05)
        return FargateRuntime(settings, AwsClients(settings))

    @pytest.fixture
    def cloudship_contract_release(self, cloudship_ecs_scheduler: EcsScheduler) -> ReleaseFactory:
        self.answers = {}
        repository = f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/c-{uuid.uuid4().hex[:8]}"

        def release(answer: str, *, healthy: bool = True) -> Release:
            digest = "sha256:" + hashlib.sha256(f"{repository}/{answer}".encode()).hexdigest()
            image = ImageRef.parse(repository).with_digest(digest)
            self.answers[str(image)] = answer
            if not healthy:
                cloudship_ecs_scheduler.failing_images.add(str(image))
            return Release(image, None)

        return release

    def answer_of(self, runtime: Runtime, service: str, url: str | None) -> str | None:
        assert isinstance(runtime, FargateRuntime)
        assert url is not None and url.startswith("http://"), "a serving service has a URL"
        ecs = runtime.clients.ecs
        (found,) = ecs.describe_services(cluster="cloudship", services=[service])["services"]
        definition = ecs.describe_task_definition(taskDefinition=found["taskDefinition"])
        return self.answers.get(definition["taskDefinition"]["containerDefinitions"][0]["image"])
