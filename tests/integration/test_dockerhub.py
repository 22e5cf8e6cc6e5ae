"""The dockerhub target against a real token-auth registry and the Hub API fake.

The registry is a real distribution registry that trusts only tokens from a token service of
auth.docker.io's shape; the Hub API fake creates repositories. The engine really pushes with
the PAT, and the runtime really pulls with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudship import AuthError, RegistryError, ship
from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.targets import Target
from cloudship.testing.token_registry import TokenRegistry
from cloudship_dockerhub import provider
from cloudship_dockerhub.fake import FakeHub

USER, PAT = "alice", "dckr_pat_not-a-real-token-123"

pytestmark = pytest.mark.usefixtures("docker_config_guard")


@pytest.fixture(scope="module")
def hub_registry(cloudship_engine: Engine) -> Iterator[TokenRegistry]:
    with TokenRegistry(users={USER: PAT}) as registry:
        yield registry


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(users={USER: PAT}, orgs={"team": {USER}}) as fake:
        yield fake


def hub_target(registry: TokenRegistry, hub: FakeHub, **settings: object) -> Target:
    values: dict[str, object] = {
        "username": USER,
        "token": PAT,
        "registry": registry.address,
        "registry_api": registry.address,
        "hub_api": hub.url,
        "project": "hubtest",
        **settings,
    }
    return provider.target(ConfigFile(), values)


def test_private_repository_created_before_push_then_push_and_pull_with_pat(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub)
    name = f"hubapp-{uuid.uuid4().hex[:8]}"
    try:
        shipped = ship(app_dir, target, name=name)
        assert shipped.image == f"{hub_registry.address}/{USER}/{name}@{shipped.digest}"
        assert hub.repositories[(USER, name)].is_private
        assert [(c.method, c.status) for c in hub.requests if "repositories" in c.path] == [
            ("GET", 404),
            ("POST", 201),
        ]
        assert shipped.url is not None and httpx.get(shipped.url).text == "v1\n"
        # every token the registry handed out was asked for with the PAT: no anonymous pull
        token_calls = [r for r in hub_registry.tokens.requests if r[1].startswith("/token")]
        assert token_calls and all(status == 200 for _, _, status in token_calls)

        again = ship(app_dir, target, name=name)
        assert not again.changed
        creates = [c for c in hub.requests if c.method == "POST" and "repositories" in c.path]
        assert len(creates) == 1, "an existing repository is not created again"
    finally:
        target.runtime.destroy(name)


def test_public_visibility_and_organisation_namespace(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub, private=False, namespace="team")
    repository = target.registry.repository("public-app")
    assert repository == f"{hub_registry.address}/team/public-app"
    assert not hub.repositories[("team", "public-app")].is_private


def test_wrong_token_creates_nothing_and_is_never_printed(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    wrong = "dckr_pat_WRONG-secret-value"
    target = hub_target(hub_registry, hub, token=wrong)
    with pytest.raises(AuthError, match="Docker Hub refused the token of user 'alice'") as info:
        ship(app_dir, target, name="never")
    assert wrong not in str(info.value) and wrong not in repr(target.registry.credentials())
    assert hub.repositories == {}


def test_rate_limit_is_retried_then_reported(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub)
    hub.throttle(1, retry_after=1)
    assert target.registry.repository("limited").endswith("/alice/limited")
    assert [c.status for c in hub.requests][:2] == [429, 200]

    hub.throttle(10, retry_after=1)
    with pytest.raises(RegistryError, match="rate limited"):
        hub_target(hub_registry, hub).registry.repository("never-made")
    assert (USER, "never-made") not in hub.repositories


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "CLOUDSHIP_DOCKERHUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(AuthError, match="DOCKERHUB_TOKEN"):
        provider.target(ConfigFile(), {"username": USER})
