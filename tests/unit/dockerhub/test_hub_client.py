"""HubClient against FakeHub over loopback HTTP: token lifetime and renewal, token
permissions, the private-repository limit, the API's rate limit. No engine needed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from cloudship.errors import AuthError, ConfigError, RegistryError
from cloudship_dockerhub.fake import FakeHub, PersonalAccessToken, oat
from cloudship_dockerhub.hub import HubClient, PrivateRepositoryLimitError

RW_DELETE, READ_WRITE, READ_ONLY = "dckr_pat_rwd-0001", "dckr_pat_rw-0002", "dckr_pat_ro-0003"
OAT_CREATE, OAT_PUSH = "dckr_oat_create-0004", "dckr_oat_push-0005"
SECRETS = (RW_DELETE, READ_WRITE, READ_ONLY, OAT_CREATE, OAT_PUSH)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(clock: Clock) -> Iterator[FakeHub]:
    with FakeHub(
        users={"alice": RW_DELETE},
        tokens=[
            PersonalAccessToken("alice", READ_WRITE, "repo:write"),
            PersonalAccessToken("alice", READ_ONLY, "repo:read"),
            oat(
                "team",
                OAT_CREATE,
                ("TYPE_ORG", "team", ["scope-repository-create"]),
                ("TYPE_REPO", "team/*", ["scope-image-pull", "scope-image-push"]),
            ),
            oat("team", OAT_PUSH, ("TYPE_REPO", "team/*", ["scope-image-push"])),
        ],
        orgs={"team": {"alice"}},
        clock=clock,
    ) as fake:
        yield fake


def client(hub: FakeHub, clock: Clock, secret: str = RW_DELETE, who: str = "alice") -> HubClient:
    return HubClient(hub.url, who, SecretStr(secret), clock=clock)


def no_secret_in(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text) and secret not in repr(text)


# -- the fake alone ------------------------------------------------------------------------


def test_fake_access_token_dies_after_ten_minutes(hub: FakeHub, clock: Clock) -> None:
    signed = httpx.post(
        f"{hub.url}/v2/auth/token", json={"identifier": "alice", "secret": RW_DELETE}
    )
    bearer = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    path = f"{hub.url}/v2/namespaces/alice/repositories/nothing"
    assert httpx.get(path, headers=bearer).status_code == 404
    clock.now += 599
    assert httpx.get(path, headers=bearer).status_code == 404
    clock.now += 1
    assert httpx.get(path, headers=bearer).status_code == 401


def test_fake_rate_limit_answer_has_the_documented_headers(hub: FakeHub) -> None:
    hub.throttle(1, retry_after=7)
    answer = httpx.post(f"{hub.url}/v2/auth/token", json={})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
        answer.headers
    )


def test_fake_never_shows_a_secret(hub: FakeHub) -> None:
    no_secret_in(hub, *hub.state.tokens, hub.requests)


# -- the client ------------------------------------------------------------------------------


def test_access_token_is_renewed_before_it_expires(hub: FakeHub, clock: Clock) -> None:
    api = client(hub, clock)
    assert api.repository("alice", "web") is None
    clock.now += 9 * 60 + 1  # past the renewal point, before the 10 minutes
    assert api.repository("alice", "web") is None
    assert api.sign_ins == 2
    assert all(call.status != 401 for call in hub.requests), "renewed before any 401"


def test_a_401_signs_in_again_once(hub: FakeHub, clock: Clock) -> None:
    api = client(hub, clock)
    api.repository("alice", "web")
    hub.advance(601)  # the Hub's clock runs ahead of ours: its session is gone, ours is not
    assert api.repository("alice", "web") is None
    assert [c.status for c in hub.requests] == [200, 404, 401, 200, 404]
    assert api.sign_ins == 2


def test_a_revoked_token_is_reported_with_the_hubs_words(hub: FakeHub, clock: Clock) -> None:
    api = client(hub, clock)
    api.repository("alice", "web")
    hub.revoke(RW_DELETE)
    with pytest.raises(AuthError, match="incorrect authentication credentials") as info:
        api.repository("alice", "web")
    assert "two-factor" in str(info.value) and "Read, Write, Delete" in str(info.value)
    no_secret_in(info.value, api)


def test_read_and_write_pat_cannot_create_a_repository(hub: FakeHub, clock: Clock) -> None:
    with pytest.raises(AuthError, match="insufficient scope") as info:
        client(hub, clock, READ_WRITE).create_repository("alice", "web", private=True)
    assert "'Read, Write, Delete'" in str(info.value)
    assert hub.repositories == {}
    no_secret_in(info.value)


def test_read_only_pat_sees_private_repositories_but_creates_none(
    hub: FakeHub, clock: Clock
) -> None:
    client(hub, clock).create_repository("alice", "web", private=True)
    reader = client(hub, clock, READ_ONLY)
    assert reader.repository("alice", "web") is not None
    with pytest.raises(AuthError):
        reader.create_repository("alice", "other", private=False)


def test_organization_access_token_needs_scope_repository_create(
    hub: FakeHub, clock: Clock
) -> None:
    client(hub, clock, OAT_CREATE, who="team").create_repository("team", "api", private=True)
    assert hub.repositories[("team", "api")].is_private
    with pytest.raises(AuthError, match="insufficient scope") as info:
        client(hub, clock, OAT_PUSH, who="team").create_repository("team", "bb", private=True)
    assert "scope-repository-create" in str(info.value)
    with pytest.raises(AuthError):  # an OAT is its organisation's only
        client(hub, clock, OAT_CREATE, who="team").create_repository("alice", "xx", private=False)


def test_second_private_repository_of_a_personal_account(hub: FakeHub, clock: Clock) -> None:
    api = client(hub, clock)
    api.create_repository("alice", "first", private=True)
    with pytest.raises(PrivateRepositoryLimitError, match="one private repository") as info:
        api.create_repository("alice", "second", private=True)
    assert "No more private repositories available" in str(info.value)
    assert "private=False" in str(info.value)
    assert ("alice", "second") not in hub.repositories
    api.create_repository("alice", "second", private=False)  # the fix works
    api.create_repository("team", "one", private=True)  # organisations (Team plan): no limit
    api.create_repository("team", "two", private=True)


def test_bad_name_is_refused_before_any_call(hub: FakeHub, clock: Clock) -> None:
    with pytest.raises(ConfigError, match="not a valid Docker Hub repository name"):
        client(hub, clock).create_repository("alice", "Bad_", private=True)
    assert hub.requests == []


def test_api_rate_limit_retried_then_a_long_one_reported(hub: FakeHub, clock: Clock) -> None:
    api = client(hub, clock)
    hub.throttle(1, retry_after=0)
    assert api.repository("alice", "web") is None
    assert [c.status for c in hub.requests][:2] == [429, 200]
    hub.throttle(5, retry_after=3600)
    with pytest.raises(RegistryError, match="not retried: the limit resets in 60 min"):
        api.repository("alice", "web")
    assert [c.status for c in hub.requests].count(429) == 2, "an hour is not waited for"
