"""Docker Hub + Container Apps: the app stores the read-only ``pull_token``, and a rotated one
reaches the app's registry secret.

Container Apps pulls a foreign registry's image with the app's ``registries`` entry and its
password secret (learn.microsoft.com/azure/container-apps/containers#container-registries), so
the ARM fake's revisions here pull with exactly that stored secret. The registry is the
token-auth registry behind the Hub fake: once the old token is revoked, a pull with it fails,
as new replicas would after a rotation if the secret kept the old token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloudship import ship
from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.registry import RegistryAuth
from cloudship.targets import Target
from cloudship.testing.token_registry import TokenRegistry, hub_grants
from cloudship_azure.containerapps import PULL_TAG
from cloudship_azure.testing import AzureTargetFactory, StaticTokenCredential
from cloudship_dockerhub import provider as hub_provider
from cloudship_dockerhub.fake import FakeHub, PersonalAccessToken
from tests.integration.test_dockerhub import untag

USER = "alice"
PUSH = "dckr_pat_push-token-000"  # Read, Write, Delete: creates and pushes
OLD, NEW = "dckr_pat_before-rotation-111", "dckr_pat_after-rotation-222"  # Read-only pulls

pytestmark = pytest.mark.usefixtures("cloudship_docker_config_guard")


class Rig:
    def __init__(self, registry: TokenRegistry, hub: FakeHub, azure: AzureTargetFactory) -> None:
        self.registry, self.hub, self.azure = registry, hub, azure

    def target(self, pull_token: str) -> Target:
        hub_registry = hub_provider.registry(
            ConfigFile(),
            {
                "username": USER,
                "token": PUSH,
                "pull_token": pull_token,
                "registry": self.registry.address,
                "registry_api": self.registry.address,
                "hub_api": self.hub.url,
            },
        )
        # paired: the loopback registry stands in for Docker Hub, which Azure could reach
        return Target(
            registry=hub_registry, runtime=self.azure.target().runtime, name="hub-aca", paired=True
        )

    def app(self, name: str) -> dict[str, Any]:
        key = next(k for k in self.azure.server.arm.apps.requests if k.endswith(f"/{name}"))
        request: dict[str, Any] = self.azure.server.arm.apps.requests[key]
        return request

    def stored_password(self, name: str) -> str:
        config = self.app(name)["properties"]["configuration"]
        (entry,) = config["registries"]
        values = {s["name"]: str(s["value"]) for s in config["secrets"]}
        return values[entry["passwordSecretRef"]]


@pytest.fixture
def rig(cloudship_engine: Engine) -> Iterator[Rig]:
    from cloudship_azure.fake import FakeArmServer
    from cloudship_azure.fake.runner import LocalEngineRunner

    credential = StaticTokenCredential(f"fake-aad-{secrets.token_urlsafe(16)}")
    token = credential.get_token("https://management.azure.com/.default").token
    with ExitStack() as stack:
        registry = stack.enter_context(TokenRegistry(grants=hub_grants([USER])))
        hub = stack.enter_context(
            FakeHub(
                users={USER: PUSH},
                tokens=[
                    PersonalAccessToken(USER, OLD, "repo:read"),
                    PersonalAccessToken(USER, NEW, "repo:read"),
                ],
            )
        )
        registry.tokens.configure(hub.registry_logins(), hub.registry_grants())
        # The configuration of the PUT that creates a revision, as the revision sees it (the
        # fake launches the revision before it records the request).
        configured: dict[str, dict[str, Any]] = {}

        def stored_secret(server: str) -> dict[str, str] | None:
            """What Container Apps pulls with: the app's registries entry and its secret."""
            for config in list(configured.values()):
                for entry in config.get("registries") or []:
                    if entry["server"] == server and entry.get("passwordSecretRef"):
                        password = next(
                            s["value"]
                            for s in config["secrets"]
                            if s["name"] == entry["passwordSecretRef"]
                        )
                        return {
                            "username": entry["username"],
                            "password": password,
                            "serveraddress": server,
                        }
            return None

        runner = LocalEngineRunner(stored_secret)
        stack.callback(runner.close)
        arm = FakeArmServer(tokens={token}, login_servers={}, runner=runner)
        put = arm.arm.apps.put

        def recording_put(
            rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
        ) -> dict[str, Any]:
            configured[rid.lower()] = body["properties"]["configuration"]
            return put(rid, name, body, existing)

        arm.arm.apps.put = recording_put  # type: ignore[method-assign]
        stack.enter_context(arm)
        stack.callback(untag, cloudship_engine, registry.address)
        yield Rig(registry, hub, AzureTargetFactory(arm, runner, credential))


def test_the_read_only_pull_token_is_stored_and_a_rotated_one_rewritten(
    app_dir: Path, rig: Rig
) -> None:
    name = rig.azure.name("hubaca")
    first = ship(app_dir, rig.target(OLD), name=name, port=8000, timeout=60)
    assert first.changed
    assert rig.stored_password(name) == OLD, "the app stores the read-only token, not the push one"
    assert PUSH not in str(rig.app(name))

    # rotate: the old pull token is deleted on the Hub; a pull with it now fails
    rig.hub.revoke(OLD)
    rig.registry.tokens.configure(rig.hub.registry_logins(), rig.hub.registry_grants())
    refused = httpx.get(
        f"{rig.registry.tokens.url}/token",
        params={"scope": f"repository:{USER}/{name}:pull"},
        auth=(USER, OLD),
    )
    assert refused.status_code == 401, "a pull with the old secret would now fail"

    second = ship(app_dir, rig.target(NEW), name=name, port=8000, timeout=60)
    assert second.push is not None and second.push.skipped, "same image"
    assert second.changed, "new credentials are a change, though image and spec are not"
    assert rig.stored_password(name) == NEW
    expected = RegistryAuth(
        username=USER, password=SecretStr(NEW), server=rig.registry.address
    ).fingerprint()
    tags = rig.app(name)["tags"]
    assert tags[PULL_TAG] == expected and NEW not in str(tags)
    assert second.revision != first.revision, "the new revision pulled with the new secret"

    third = ship(app_dir, rig.target(NEW), name=name, port=8000, timeout=60)
    assert not third.changed, "unchanged credentials: nothing to do"
