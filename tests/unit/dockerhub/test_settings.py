"""The dockerhub target's settings: the optional read-only pull token, and no token in a repr."""

from __future__ import annotations

import pytest

from cloudship.config import ConfigFile
from cloudship_dockerhub import provider
from cloudship_dockerhub.settings import DockerHubSettings

PUSH, PULL = "dckr_pat_push-settings-1", "dckr_pat_pull-settings-2"


def test_pull_token_from_the_environment_becomes_the_pull_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKERHUB_USERNAME", "alice")
    monkeypatch.setenv("DOCKERHUB_TOKEN", PUSH)
    monkeypatch.setenv("DOCKERHUB_PULL_TOKEN", PULL)
    registry = provider.registry(ConfigFile(), {})
    push, pull = registry.credentials(), registry.pull_credentials()
    assert push is not None and push.password.get_secret_value() == PUSH
    assert pull is not None and pull.password.get_secret_value() == PULL
    assert pull.username == "alice" and pull.server == "docker.io"
    for shown in (registry, push, pull, DockerHubSettings()):
        assert PUSH not in repr(shown) and PULL not in repr(shown) and PULL not in str(shown)


def test_pull_username_for_an_organization_token() -> None:
    registry = provider.registry(
        ConfigFile(),
        {"username": "alice", "token": PUSH, "pull_token": PULL, "pull_username": "acme"},
    )
    pull = registry.pull_credentials()
    assert pull is not None and pull.username == "acme"


def test_without_pull_token_runtimes_pull_with_the_push_token() -> None:
    registry = provider.registry(ConfigFile(), {"username": "alice", "token": PUSH})
    assert registry.pull_credentials() == registry.credentials()
