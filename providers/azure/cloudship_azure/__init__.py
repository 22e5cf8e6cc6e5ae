"""The ``azure`` target: Azure Container Registry + Azure Container Apps.

``ship(src, target="azure", subscription=..., registry=...)``. Settings come from the
``[azure]`` table, ``CLOUDSHIP_AZURE_*`` and keyword arguments (see ``AzureSettings``);
credentials from ``DefaultAzureCredential`` unless ``credential=<TokenCredential>`` is passed.
Building the target makes no network call: everything is created on first use, and only after
the spec and platform were checked.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from cloudship.config import ConfigFile, load_settings
from cloudship.errors import ConfigError
from cloudship.targets import Provider, Target
from cloudship_azure.acr import AcrRegistry
from cloudship_azure.clients import AzureClients
from cloudship_azure.containerapps import ContainerAppsRuntime
from cloudship_azure.settings import AzureSettings


class AzureProvider(Provider):
    name: ClassVar[str] = "azure"
    settings_model: ClassVar[type[BaseModel]] = AzureSettings
    registry_kinds: ClassVar[frozenset[str]] = frozenset({"acr"})
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"containerapps"})

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        overrides = dict(overrides)
        credential = overrides.pop("credential", None)
        settings = load_settings(AzureSettings, config.section(self.name), overrides)
        if not settings.subscription:
            raise ConfigError(
                "the azure target needs a subscription id",
                fix="pass subscription=..., set CLOUDSHIP_AZURE_SUBSCRIPTION, or [azure] "
                "subscription in cloudship.toml (az account show --query id)",
            )
        if not settings.registry:
            raise ConfigError(
                "the azure target needs a container registry name",
                fix="pass registry='myregistry' (5-50 letters/digits), set "
                "CLOUDSHIP_AZURE_REGISTRY, or [azure] registry in cloudship.toml",
            )
        clients = AzureClients(settings, credential)
        registry = AcrRegistry(clients)
        return Target(
            registry=registry,
            runtime=ContainerAppsRuntime(clients, registry),
            name=self.name,
            paired=True,
        )


provider = AzureProvider()

__all__ = ["AcrRegistry", "AzureProvider", "AzureSettings", "ContainerAppsRuntime", "provider"]
