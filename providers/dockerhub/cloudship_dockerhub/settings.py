"""Settings of the Docker Hub registry: ``[dockerhub]``, ``CLOUDSHIP_DOCKERHUB_*``, kwargs.

``DOCKERHUB_USERNAME`` and ``DOCKERHUB_TOKEN`` (the names Docker's own docs and CI examples
use) are read too. The token is a personal access token with Read, Write, Delete permission
(or an organization access token; then ``username`` is the organisation), held as a
``SecretStr``. ``pull_token`` is an optional second, read-only token: runtimes that keep pull
credentials (ECS, Container Apps, the local runtime's pulls) get it instead of the push token.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DockerHubSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOUDSHIP_DOCKERHUB_", extra="forbid", populate_by_name=True
    )

    username: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "username", "CLOUDSHIP_DOCKERHUB_USERNAME", "DOCKERHUB_USERNAME"
        ),
    )
    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("token", "CLOUDSHIP_DOCKERHUB_TOKEN", "DOCKERHUB_TOKEN"),
    )
    #: a read-only token (PAT "Read-only", or an OAT with image pull) for runtimes' pulls
    pull_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "pull_token", "CLOUDSHIP_DOCKERHUB_PULL_TOKEN", "DOCKERHUB_PULL_TOKEN"
        ),
    )
    #: who ``pull_token`` belongs to (default: the username; an OAT's is the organisation)
    pull_username: str | None = None
    #: user or organisation that owns the repositories (default: the username)
    namespace: str | None = None
    #: repositories cloudship creates are private unless this is False
    private: bool = True
    #: host in image references
    registry: str = "docker.io"
    #: host serving the registry API (``docker.io`` images live on ``registry-1.docker.io``)
    registry_api: str = "registry-1.docker.io"
    #: the Hub API (repositories, visibility)
    hub_api: str = "https://hub.docker.com"
    #: plain HTTP to a non-loopback registry (test set-ups only)
    insecure: bool = False
