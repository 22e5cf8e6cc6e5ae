"""The ``dockerhub`` target: Docker Hub (PAT login, private repositories) + local ``docker run``.

The runtime is the local target's pull-based runtime: it pulls ``repo@sha256:…`` from Docker
Hub with the same in-memory credentials, and runs it. Its settings come from ``[local]``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel

from cloudship.config import ConfigFile, load_settings
from cloudship.registry import Registry
from cloudship.targets import Provider, Target, route_settings
from cloudship_dockerhub.registry import DockerHubRegistry
from cloudship_dockerhub.settings import DockerHubSettings
from cloudship_local import provider as local_provider
from cloudship_local.settings import LocalSettings


class DockerHubProvider(Provider):
    name: ClassVar[str] = "dockerhub"
    settings_model: ClassVar[type[BaseModel]] = DockerHubSettings

    def registry(self, config: ConfigFile, overrides: dict[str, Any]) -> Registry:
        return DockerHubRegistry(
            load_settings(DockerHubSettings, config.section(self.name), overrides)
        )

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        routed = route_settings(
            self.name,
            overrides,
            {
                self.name: set(DockerHubSettings.model_fields),
                # the local registry's settings do not apply: Docker Hub is the registry
                "local": set(LocalSettings.model_fields) - {"registry", "username", "password"},
            },
        )
        registry = self.registry(config, routed[self.name])
        run_settings = routed["local"]
        if "project" not in config.section("local") and not os.environ.get(
            "CLOUDSHIP_LOCAL_PROJECT"
        ):
            # Its own containers: shipping one service to ["local", "dockerhub"] must not
            # have two deploys fight over the same containers.
            run_settings.setdefault("project", "dockerhub")
        runtime = local_provider.runtime(config, run_settings)
        return Target(registry=registry, runtime=runtime, name=self.name, paired=True)


provider = DockerHubProvider()

__all__ = ["DockerHubProvider", "DockerHubRegistry", "DockerHubSettings", "provider"]
