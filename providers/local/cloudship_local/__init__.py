"""The ``local`` target: any Docker Registry v2 + pull-based ``docker run`` on the local engine."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from cloudship.config import ConfigFile, data_dir, load_settings
from cloudship.engine import Engine
from cloudship.targets import Provider, Target
from cloudship_local.embedded import EmbeddedRegistry
from cloudship_local.registry import V2Registry
from cloudship_local.runtime import DockerRunRuntime
from cloudship_local.settings import LocalSettings


class LocalProvider(Provider):
    name: ClassVar[str] = "local"
    settings_model: ClassVar[type[BaseModel]] = LocalSettings

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        settings = load_settings(LocalSettings, config.section(self.name), overrides)
        engine = Engine.shared(settings.docker_host)
        embedded = EmbeddedRegistry(engine, settings.data_dir or data_dir(), settings.registry)
        return Target(
            registry=V2Registry(settings, embedded),
            runtime=DockerRunRuntime(engine, settings),
            name=self.name,
            paired=True,
        )


provider = LocalProvider()

__all__ = ["DockerRunRuntime", "LocalProvider", "LocalSettings", "V2Registry", "provider"]
