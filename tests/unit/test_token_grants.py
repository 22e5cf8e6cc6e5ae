"""The token service grants per login, per repository and per action, over HTTP: a token is
issued for the granted subset of the scope asked for, as Docker Hub's and the distribution
token spec's servers do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest

from cloudship.testing.token_registry import TokenService, hub_grants

SERVICE = "127.0.0.1:5998"


@pytest.fixture
def tokens() -> Iterator[TokenService]:
    service = TokenService(
        service=SERVICE,
        issuer="grants-test",
        users={"alice": ["pat-rw", "pat-ro"], "bob": "pat-bob"},
        grants={
            **hub_grants(["alice", "bob"]),
            "pat-ro": [("alice/*", {"pull"})],  # a read-only PAT of alice
        },
    )
    service.start()
    yield service
    service.stop()


def granted(tokens: TokenService, login: tuple[str, str], scope: str) -> list[str]:
    answer = httpx.get(
        f"{tokens.url}/token", params={"service": SERVICE, "scope": scope}, auth=login
    )
    assert answer.status_code == 200, "a valid login always gets a token, maybe with less access"
    claims = jwt.decode(answer.json()["token"], options={"verify_signature": False})
    (entry,) = claims["access"]
    actions: list[str] = entry["actions"]
    return actions


def test_a_user_pushes_and_pulls_its_own_namespace(tokens: TokenService) -> None:
    assert granted(tokens, ("alice", "pat-rw"), "repository:alice/web:pull,push") == [
        "pull",
        "push",
    ]


def test_a_read_only_pat_gets_pull_only(tokens: TokenService) -> None:
    assert granted(tokens, ("alice", "pat-ro"), "repository:alice/web:pull,push") == ["pull"]


def test_no_push_or_pull_in_someone_elses_namespace(tokens: TokenService) -> None:
    assert granted(tokens, ("bob", "pat-bob"), "repository:alice/web:pull,push") == []


def test_grants_can_be_replaced_while_running(tokens: TokenService) -> None:
    tokens.configure({"alice": "pat-rw"}, {"alice": [("team/*", ["pull", "push"])]})
    assert granted(tokens, ("alice", "pat-rw"), "repository:team/app:push") == ["push"]
    assert granted(tokens, ("alice", "pat-rw"), "repository:alice/web:push") == []
    bad = httpx.get(f"{tokens.url}/token", params={"scope": "x"}, auth=("alice", "pat-ro"))
    assert bad.status_code == 401, "a secret no longer configured is refused"


def test_without_grants_every_valid_login_gets_what_it_asks() -> None:
    service = TokenService(service=SERVICE, issuer="x", users={"ci": "pat"})
    assert service.granted("ci", "pat", "repository:any/thing:pull,push") == ["pull", "push"]
