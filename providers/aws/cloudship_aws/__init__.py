"""The ``aws`` target: Amazon ECR for images + Amazon ECS on Fargate for services.

Credentials come from boto3's own chain; ``AWS_ENDPOINT_URL`` (moto, LocalStack, private
endpoints) is honoured by boto3 itself. See docs/aws.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from cloudship.config import ConfigFile, load_settings
from cloudship.targets import Provider, Target
from cloudship_aws.settings import AwsSettings

if TYPE_CHECKING:
    from cloudship_aws.ecr import EcrRegistry
    from cloudship_aws.ecs import FargateRuntime
    from cloudship_aws.session import AwsClients

# The modules that import boto3/botocore load on first use, so importing this package (as
# pytest does for the ``cloudship_aws.testing`` plugin) works without the ``aws`` extra.
_LAZY = {
    "EcrRegistry": "cloudship_aws.ecr",
    "FargateRuntime": "cloudship_aws.ecs",
    "AwsClients": "cloudship_aws.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudship_aws' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class AwsProvider(Provider):
    name: ClassVar[str] = "aws"
    settings_model: ClassVar[type[BaseModel]] = AwsSettings
    registry_kinds: ClassVar[frozenset[str]] = frozenset({"ecr"})
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"ecs"})

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        settings = load_settings(AwsSettings, config.section(self.name), overrides)
        return self.from_settings(settings)

    def from_settings(self, settings: AwsSettings, clients: AwsClients | None = None) -> Target:
        """A target from ready settings; pass ``clients`` to share (or stub) boto3 clients."""
        from cloudship_aws.ecr import EcrRegistry
        from cloudship_aws.ecs import FargateRuntime
        from cloudship_aws.session import AwsClients

        clients = clients or AwsClients(settings)
        return Target(
            registry=EcrRegistry(settings, clients),
            runtime=FargateRuntime(settings, clients),
            name=self.name,
            # ECS pulls from ECR with its execution role; a ``registry`` override is the
            # user's statement that ECS reaches it (a private endpoint, or a test double).
            paired=True,
        )


provider = AwsProvider()

__all__ = [
    "AwsClients",
    "AwsProvider",
    "AwsSettings",
    "EcrRegistry",
    "FargateRuntime",
    "provider",
]
