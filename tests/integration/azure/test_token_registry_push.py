"""The token registry with the real engine: ``docker push`` authenticates with an ACR-style
refresh token (null-GUID user) or a Docker-Hub-style Basic login, exactly as configured, and
the azure target's registry refreshes its push credentials before they expire."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.errors import AuthError
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.testing.token_registry import NULL_GUID, TokenRegistry
from cloudship_azure import provider
from cloudship_azure.acr import NULL_GUID as ACR_USER
from cloudship_azure.fake import FakeArmServer
from cloudship_azure.testing import AzureTargetFactory, StaticTokenCredential


def _busybox_to(engine: Engine, address: str) -> ImageRef:
    image = engine.client.images.get("busybox:latest")
    ref = ImageRef.parse(f"{address}/push-{uuid.uuid4().hex[:8]}").with_tag("v1")
    engine.tag(str(image.id), ref)
    return ref


def _exchanges(registry: TokenRegistry) -> int:
    return sum(1 for _, path, status in registry.tokens.requests if path == "/oauth2/exchange")


def test_push_with_the_acr_refresh_token(
    cloudship_engine: Engine,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    registry = cloudship_azure_target.target().registry
    auth = registry.credentials()
    assert auth is not None and auth.username == ACR_USER == NULL_GUID
    assert auth.server == cloudship_acr_token_registry.address
    assert auth.expires_at is not None and auth.expires_at > dt.datetime.now(dt.UTC)
    ref = _busybox_to(cloudship_engine, registry.address)

    pushed = cloudship_engine.push(ref, auth)
    assert pushed.digest.startswith("sha256:")
    assert registry.manifest_digest(ref.path, "v1") == pushed.digest
    assert registry.manifest_digest(ref.path, "nosuchtag") is None

    forged = RegistryAuth(
        username=NULL_GUID, password=SecretStr("not-a-token"), server=ref.registry or ""
    )
    with pytest.raises(AuthError, match="unauthorized"):
        cloudship_engine.push(ref, forged)


@pytest.fixture
def hub_like() -> Iterator[TokenRegistry]:
    with TokenRegistry(users={"hubuser": "dckr_pat_test"}) as registry:
        yield registry


def test_push_with_a_basic_login_docker_hub_style(
    cloudship_engine: Engine, hub_like: TokenRegistry
) -> None:
    ref = _busybox_to(cloudship_engine, hub_like.address)
    good = RegistryAuth(
        username="hubuser", password=SecretStr("dckr_pat_test"), server=hub_like.address
    )
    assert cloudship_engine.push(ref, good).digest.startswith("sha256:")
    assert ("GET", "/token", 200) in hub_like.tokens.requests
    bad = RegistryAuth(username="hubuser", password=SecretStr("wrong"), server=hub_like.address)
    with pytest.raises(AuthError, match="unauthorized"):
        cloudship_engine.push(ref, bad)


def test_credentials_are_reused_until_they_are_about_to_expire(
    cloudship_engine: Engine,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    registry = cloudship_azure_target.target().registry
    before = _exchanges(cloudship_acr_token_registry)
    first = registry.credentials()
    assert registry.credentials() is first  # 3 h left: reused from memory
    assert _exchanges(cloudship_acr_token_registry) == before + 1

    token = "short-lived-aad"
    with (
        TokenRegistry(
            aad_tokens={token}, realm_path="/oauth2/token", refresh_ttl=dt.timedelta(minutes=4)
        ) as short,
        FakeArmServer(tokens={token}, login_servers={"shortlived": short.address}) as arm,
    ):
        target = provider.target(
            ConfigFile(),
            {
                "subscription": next(iter(arm.arm.subscriptions)),
                "registry": "shortlived",
                "arm_endpoint": arm.url,
                "ca_bundle": arm.ca_path,
                "credential": StaticTokenCredential(token),
                "poll_interval": 0.05,
            },
        )
        one = target.registry.credentials()
        two = target.registry.credentials()  # expires within the 5-minute margin: re-exchanged
        assert one is not None and two is not None
        assert one.password.get_secret_value() != two.password.get_secret_value()
        assert _exchanges(short) == 2


def test_the_pull_identity_can_pull_but_never_push(
    cloudship_engine: Engine,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
    cloudship_acr_puller_password: str,
) -> None:
    """ACR honours roles per action: AcrPull pulls, only AcrPush pushes (the token service
    grants the revisions' pull identity pull alone)."""
    from cloudship.errors import PushError, RegistryError
    from cloudship_azure.testing import PULLER

    registry = cloudship_azure_target.target().registry
    auth = registry.credentials()  # first: it resolves the login server to the test registry
    assert auth is not None and auth.server == cloudship_acr_token_registry.address
    ref = _busybox_to(cloudship_engine, cloudship_acr_token_registry.address)
    cloudship_engine.push(ref, auth)
    puller = RegistryAuth(
        username=PULLER,
        password=SecretStr(cloudship_acr_puller_password),
        server=cloudship_acr_token_registry.address,
    )
    second = _busybox_to(cloudship_engine, cloudship_acr_token_registry.address)
    with pytest.raises((AuthError, PushError, RegistryError), match=r"denied|unauthorized"):
        cloudship_engine.push(second, puller)
    assert cloudship_engine.pull(ref, puller).startswith("sha256:")


def test_write_index_over_the_refresh_token_lists_both_pushed_platforms(
    cloudship_engine: Engine,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    """Two platforms pushed to one ACR: ``write_index`` puts a manifest list of both under the
    shared tag with the AAD-exchanged refresh token (an access token scoped ``pull,push`` on
    the repository, fetched from the token service as ``docker push`` fetches one: the token
    registry refuses a manifest PUT whose token lacks ``push``)."""
    import json

    from tests.integration.test_build import ARM64_BASE, _emulation_or_fail

    _emulation_or_fail(cloudship_engine)
    registry = cloudship_azure_target.target().registry
    assert registry.writes_indexes
    name = f"multi-{uuid.uuid4().hex[:8]}"
    pushed: dict[str, str] = {}  # platform → digest
    refs: list[str] = []
    try:
        for platform, image in (("linux/amd64", "busybox:latest"), ("linux/arm64", ARM64_BASE)):
            ref = ImageRef.parse(registry.repository(name)).with_tag(
                f"v1-{platform.replace('/', '-')}"
            )
            cloudship_engine.tag(image, ref)
            refs.append(str(ref))
            pushed[platform] = cloudship_engine.push(ref, registry.credentials()).digest
        digest = registry.write_index(name, "v1", {d: p for p, d in pushed.items()})
    finally:
        for tag in refs:
            cloudship_engine.client.images.remove(tag)

    media_type, body = registry.distribution().manifest(name, "v1")
    assert media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    listed = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in json.loads(body)["manifests"]
    }
    assert listed == pushed and pushed["linux/amd64"] != pushed["linux/arm64"]
    assert registry.manifest_digest(name, "v1") == digest
