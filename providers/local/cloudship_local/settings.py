"""Settings of the ``local`` target: the ``[local]`` table, ``CLOUDSHIP_LOCAL_*``, kwargs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REGISTRY = "127.0.0.1:5000"


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_LOCAL_", extra="forbid")

    #: any Docker Registry v2, ``host[:port]``
    registry: str = DEFAULT_REGISTRY
    username: str | None = None
    password: SecretStr | None = None
    #: plain HTTP to a non-loopback registry; loopback registries always use HTTP
    insecure: bool = False
    #: start a registry when nothing answers at the default address
    embedded: bool = True
    #: host port the service is published on; default: a stable port derived from its name
    host_port: int | None = Field(default=None, ge=1, le=65535)
    #: host address the port is bound to (loopback by default: not exposed to the network)
    bind: str = "127.0.0.1"
    #: keeps services of several local targets on one engine apart (e.g. "staging", "prod"),
    #: like a compose project name
    project: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    #: the one platform the services run as (e.g. "linux/arm64" to try what an arm64 host
    #: runs); default: the engine's own plus each platform it emulates
    platform: str | None = Field(default=None, pattern=r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$")
    #: stopped earlier revisions kept for rollback
    keep_revisions: int = Field(default=5, ge=1)
    #: Docker engine address (default: DOCKER_HOST or the local socket)
    docker_host: str | None = None
    #: where the embedded registry keeps its storage (default: the cloudship data folder)
    data_dir: Path | None = None
    #: seconds a ship waits for another ship of the same service to finish (0: refuse at once
    #: with ConcurrentShipError naming it)
    lock_wait: float = Field(default=0.0, ge=0)
