"""Docker Hub + ECS: ECS pulls a private Hub image with repositoryCredentials from Secrets
Manager. The Hub is the token-auth registry + Hub API fake; ECS, IAM and Secrets Manager are
moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudship import ConfigError, ship
from cloudship.config import ConfigFile
from cloudship.targets import Target
from cloudship.testing.token_registry import TokenRegistry
from cloudship_aws.iam import EXECUTION_ROLE
from cloudship_aws.pullsecret import secret_name
from cloudship_dockerhub import provider as hub_provider
from cloudship_dockerhub.fake import FakeHub
from tests.integration.aws.conftest import AwsTargets

USER, PAT = "alice", "dckr_pat_ecs-pull-test-value"


@pytest.fixture
def hub() -> Iterator[tuple[TokenRegistry, FakeHub]]:
    with TokenRegistry(users={USER: PAT}) as registry, FakeHub(users={USER: PAT}) as api:
        yield registry, api


def test_ecs_pulls_a_private_hub_image_with_repository_credentials(
    aws: AwsTargets, app_dir: Path, hub: tuple[TokenRegistry, FakeHub]
) -> None:
    registry, api = hub
    hub_registry = hub_provider.registry(
        ConfigFile(),
        {
            "username": USER,
            "token": PAT,
            "registry": registry.address,
            "registry_api": registry.address,
            "hub_api": api.url,
        },
    )
    # paired: the loopback test registry stands in for Docker Hub, which ECS could reach.
    target = Target(
        registry=hub_registry, runtime=aws.target().runtime, name="hub-ecs", paired=True
    )
    name = aws.name("hubpull")
    shipped = ship(app_dir, target, name=name, port=8000, timeout=120)
    assert shipped.image.startswith(f"{registry.address}/{USER}/{name}@sha256:")
    assert api.repositories[(USER, name)].is_private

    ecs = aws.client("ecs")
    (service,) = ecs.describe_services(cluster="cloudship", services=[name])["services"]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    (container,) = definition["taskDefinition"]["containerDefinitions"]
    secret = aws.client("secretsmanager").get_secret_value(SecretId=secret_name(name))
    assert container["repositoryCredentials"] == {"credentialsParameter": secret["ARN"]}
    assert json.loads(secret["SecretString"]) == {"username": USER, "password": PAT}
    assert PAT not in json.dumps(definition, default=str), "only the secret's ARN is in it"
    policy = aws.client("iam").get_role_policy(
        RoleName=EXECUTION_ROLE, PolicyName=f"cloudship-secrets-{name}"
    )
    assert secret["ARN"] in policy["PolicyDocument"]["Statement"][0]["Resource"]

    again = ship(app_dir, target, name=name, port=8000, timeout=120)
    assert not again.changed
    assert len(ecs.list_task_definitions(familyPrefix=name)["taskDefinitionArns"]) == 1
    versions = aws.client("secretsmanager").list_secret_version_ids(SecretId=secret_name(name))
    assert len(versions["Versions"]) == 1, "unchanged credentials are not rewritten"

    target.runtime.destroy(name)
    listed = aws.client("secretsmanager").list_secrets()["SecretList"]
    assert secret_name(name) not in [s["Name"] for s in listed]


def test_ecs_cannot_pull_from_a_loopback_registry(aws: AwsTargets, app_dir: Path) -> None:
    (app_dir / "cloudship.toml").write_text(
        '[targets.mixed]\nregistry = "local"\nruntime = "ecs"\n'
        'local = { registry = "127.0.0.1:5000", embedded = false }\n'
    )
    with pytest.raises(ConfigError, match=r"cannot pull from the registry at 127\.0\.0\.1:5000"):
        ship(app_dir, "mixed", name=aws.name("mixed"), port=8000)
    assert aws.client("ecs").list_clusters()["clusterArns"] == []
    assert aws.client("ecr").describe_repositories()["repositories"] == []
