"""The dockerhub target against a real token-auth registry and the Hub API fake.

The registry is a real distribution registry that trusts only tokens from a token service of
auth.docker.io's shape; the Hub API fake creates repositories. Both fail like Docker Hub by
default: the token service grants each token what the Hub would (its own namespace and its
organisations; pull only for a read-only PAT), so the registry itself refuses a push that the
Hub would refuse. The engine really pushes, and the runtime really pulls.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker.errors
import httpx
import pytest
from pydantic import SecretStr

from cloudship import AuthError, RegistryError, ship
from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.registry import Registry
from cloudship.targets import Target
from cloudship.testing.contract import RegistryContract
from cloudship.testing.pull_limit import PullLimitProxy
from cloudship.testing.token_registry import TokenRegistry, hub_grants, secret_id
from cloudship_dockerhub import provider
from cloudship_dockerhub.fake import FakeHub, PersonalAccessToken, oat
from cloudship_dockerhub.hub import HubClient, PrivateRepositoryLimitError
from tests.conftest import write_app

USER = "alice"
PAT = "dckr_pat_not-a-real-token-123"  # Read, Write, Delete: what cloudship asks for
READ_ONLY = "dckr_pat_read-only-token-456"
BOB = "dckr_pat_bobs-own-token-789"
OAT = "dckr_oat_team-token-abc"
SECRETS = (PAT, READ_ONLY, BOB, OAT)

pytestmark = pytest.mark.usefixtures("cloudship_docker_config_guard")


def untag(engine: Engine, address: str) -> None:
    """Drop the engine's references to a throw-away registry (the engine is shared)."""
    for image in engine.client.api.images():  # no inspect per image (races)
        for ref in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]:
            if ref.startswith(f"{address}/"):
                with contextlib.suppress(docker.errors.APIError):
                    engine.client.images.remove(ref)


@pytest.fixture(scope="module")
def hub_registry(cloudship_engine: Engine) -> Iterator[TokenRegistry]:
    with TokenRegistry(users={USER: PAT}, grants=hub_grants([USER])) as registry:
        yield registry
    untag(cloudship_engine, registry.address)


@pytest.fixture
def hub(hub_registry: TokenRegistry) -> Iterator[FakeHub]:
    with FakeHub(
        users={USER: PAT, "bob": BOB},
        tokens=[
            PersonalAccessToken(USER, READ_ONLY, "repo:read"),
            oat(
                "team",
                OAT,
                ("TYPE_ORG", "team", ["scope-repository-create"]),
                ("TYPE_REPO", "team/*", ["scope-image-pull", "scope-image-push"]),
            ),
        ],
        orgs={"team": {USER}},
    ) as fake:
        # the registry's token service knows the same tokens and grants what the Hub would
        hub_registry.tokens.configure(fake.registry_logins(), fake.registry_grants())
        yield fake


def hub_target(registry: TokenRegistry, hub: FakeHub, /, **settings: object) -> Target:
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


def never_shown(*things: object) -> None:
    for thing in things:
        for secret in SECRETS:
            assert secret not in str(thing) and secret not in repr(thing)


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
        assert not again.changed and again.push is not None and again.push.skipped
        creates = [c for c in hub.requests if c.method == "POST" and "repositories" in c.path]
        assert len(creates) == 1, "an existing repository is not created again"
        never_shown(shipped, again, target.registry, target.registry.credentials())
    finally:
        target.runtime.destroy(name)


def test_runtime_pulls_with_the_read_only_pull_token(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub, pull_token=READ_ONLY)
    name = f"hubpull-{uuid.uuid4().hex[:8]}"
    repository = f"{USER}/{name}"
    before = len(hub_registry.tokens.issued)
    try:
        shipped = ship(app_dir, target, name=name)
        assert shipped.url is not None and httpx.get(shipped.url).text == "v1\n"
        issued = [
            i
            for i in hub_registry.tokens.issued[before:]
            if any(a["name"] == repository for a in i.access)
        ]
        pushes = [i for i in issued if any("push" in a["actions"] for a in i.access)]
        pulls = [i for i in issued if i.secret == secret_id(READ_ONLY)]
        assert pushes and all(i.secret == secret_id(PAT) for i in pushes)
        assert pulls, "the runtime pulled with the read-only token"
        assert all(a["actions"] == ["pull"] for i in pulls for a in i.access)
        assert target.registry.pull_credentials() != target.registry.credentials()
        never_shown(shipped, target.registry, target.registry.pull_credentials())
    finally:
        target.runtime.destroy(name)


def test_read_only_token_cannot_push_even_to_an_existing_repository(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    name = f"hubro-{uuid.uuid4().hex[:8]}"
    hub_target(hub_registry, hub).registry.repository(name)  # exists, made with the PAT
    target = hub_target(hub_registry, hub, token=READ_ONLY)
    with pytest.raises(AuthError, match="denied") as info:
        ship(app_dir, target, name=name)
    assert target.runtime.status(name) is None, "nothing was started"
    never_shown(info.value)


def test_push_to_someone_elses_namespace_is_denied_by_the_registry(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    name = f"bobs-{uuid.uuid4().hex[:8]}"
    # bob's public repository: alice can see it on the Hub, but may not push to it
    HubClient(hub.url, "bob", SecretStr(BOB)).create_repository("bob", name, private=False)
    target = hub_target(hub_registry, hub, namespace="bob")
    with pytest.raises(AuthError, match="denied"):
        ship(app_dir, target, name=name)
    assert target.runtime.status(name) is None


def test_organization_access_token_ships_to_its_organisation(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub, username="team", token=OAT)
    name = f"oatapp-{uuid.uuid4().hex[:8]}"
    try:
        shipped = ship(app_dir, target, name=name)
        assert shipped.image.startswith(f"{hub_registry.address}/team/{name}@sha256:")
        assert hub.repositories[("team", name)].is_private
        assert hub.requests[0].path == "/v2/auth/token"
        assert {c.user for c in hub.requests[1:]} == {"team"}, "signed in as the organisation"
    finally:
        target.runtime.destroy(name)


def test_second_private_repository_is_refused_before_anything_is_pushed(
    app_dir: Path, hub_registry: TokenRegistry, hub: FakeHub
) -> None:
    target = hub_target(hub_registry, hub)
    target.registry.repository("first-private")
    with pytest.raises(PrivateRepositoryLimitError, match="private=False"):
        ship(app_dir, target, name="second-private")
    assert target.runtime.status("second-private") is None
    public = hub_target(hub_registry, hub, private=False)
    assert public.registry.repository("second-private").endswith("/alice/second-private")
    assert not hub.repositories[(USER, "second-private")].is_private


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
    with pytest.raises(AuthError, match="Docker Hub refused the token of 'alice'") as info:
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


def test_pull_rate_limit_answers_like_docker_hub_and_is_reported(
    tmp_path: Path, hub_registry: TokenRegistry, hub: FakeHub, cloudship_engine: Engine
) -> None:
    name = f"hublimit-{uuid.uuid4().hex[:8]}"
    # an image this engine does not have, so that a pull downloads it (a counted GET)
    unique = write_app(tmp_path / "unique", body=f"only-{name}")
    with PullLimitProxy(hub_registry.address) as proxy:
        target = hub_target(hub_registry, hub, registry=proxy.address, registry_api=proxy.address)
        repository = target.registry.repository(name)
        built, _ = cloudship_engine.client.images.build(path=str(unique), rm=True)
        ref = ImageRef.parse(repository).with_tag("v1")
        try:
            cloudship_engine.tag(str(built.id), ref)
            digest = cloudship_engine.push(ref, target.registry.credentials()).digest
            assert proxy.used == {}, "pushes are not pulls"
            pinned = f"{repository}@{digest}"

            def forget() -> None:  # the engine no longer has the image: the next pull is a GET
                target.runtime.destroy(name)
                client = cloudship_engine.client
                deadline = time.monotonic() + 10
                while str(built.id) in {image["Id"] for image in client.api.images(all=True)}:
                    # a container being removed still holds the image for a moment
                    assert time.monotonic() < deadline, "the test image could not be removed"
                    for container in client.containers.list(
                        all=True, filters={"ancestor": built.id}
                    ):
                        container.remove(force=True)  # this test's own image's containers
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(str(built.id), force=True)
                    time.sleep(0.05)

            forget()
            proxy.used[USER] = proxy.limit - 1  # one pull left this hour
            shipped = ship(pinned, target, name=name, port=8000)
            assert shipped.url is not None and httpx.get(shipped.url).text == f"only-{name}\n"
            assert proxy.used[USER] == proxy.limit

            # what Docker's docs tell users to run to see their limit: a HEAD, not counted
            token = httpx.get(
                f"{hub_registry.tokens.url}/token",
                params={"service": hub_registry.address, "scope": f"repository:{USER}/{name}:pull"},
                auth=(USER, PAT),
            ).json()["token"]
            head = httpx.head(
                f"http://{proxy.address}/v2/{USER}/{name}/manifests/{digest}",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.docker.distribution.manifest.v2+json",
                },
            )
            assert head.status_code == 200
            assert head.headers["ratelimit-limit"] == "100;w=3600"
            assert head.headers["ratelimit-remaining"] == "0;w=3600"

            forget()
            with pytest.raises(RegistryError) as info:
                ship(pinned, target, name=name, port=8000)
            text = str(info.value)
            assert "toomanyrequests" in text and "You have reached your pull rate limit" in text
            assert "100/hour for Personal accounts" in text
            assert proxy.requests[-1][0] == "GET" and proxy.requests[-1][3] == 429
            assert target.runtime.status(name) is None, "nothing runs"
            never_shown(info.value)
        finally:
            target.runtime.destroy(name)
            with contextlib.suppress(docker.errors.ImageNotFound):
                cloudship_engine.client.images.remove(str(built.id), force=True)
            untag(cloudship_engine, proxy.address)


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "CLOUDSHIP_DOCKERHUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(AuthError, match="DOCKERHUB_TOKEN"):
        provider.target(ConfigFile(), {"username": USER})


class TestDockerHubRegistry(RegistryContract):
    """The Docker Hub registry keeps the core's registry contract, on the Hub fake and a
    token-auth registry (public repositories: a Personal account has one private one)."""

    @pytest.fixture
    def cloudship_contract_registry(self, hub_registry: TokenRegistry, hub: FakeHub) -> Registry:
        return hub_target(hub_registry, hub, private=False).registry

    @pytest.fixture
    def cloudship_contract_push(
        self,
        cloudship_contract_registry: Registry,
        cloudship_engine: Engine,
        tmp_path: Path,
    ) -> Callable[[str, str], str]:
        def push(address: str, tag: str) -> str:
            app = write_app(tmp_path / uuid.uuid4().hex[:8], f"contract {tag}")
            built = cloudship_engine.build(app, tag=f"cloudship-contract/{app.name}:latest")
            ref = ImageRef.parse(address).with_tag(tag)
            cloudship_engine.tag(built.image_id, ref)
            try:
                auth = cloudship_contract_registry.credentials()
                return cloudship_engine.push(ref, auth).digest
            finally:
                for name in (str(ref), f"cloudship-contract/{app.name}:latest"):
                    with contextlib.suppress(docker.errors.APIError):
                        cloudship_engine.client.images.remove(name)

        return push
