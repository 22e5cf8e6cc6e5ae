"""The azure-mgmt clients, built once per target on first use, all pointed at one ARM."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from cloudship_azure.settings import AzureSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.resource.resources import ResourceManagementClient

#: the audience of the AAD token exchanged for an ACR refresh token (as the ACR SDK asks)
ACR_EXCHANGE_SCOPE = "https://management.core.windows.net/.default"


class AzureClients:
    """Lazy SDK clients sharing one credential, endpoint and CA bundle.

    ``credential`` defaults to ``DefaultAzureCredential`` (created on first use).
    """

    def __init__(self, settings: AzureSettings, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self._credential = credential
        #: the preflight (registration.py) found every provider namespace registered
        self.providers_registered = False

    @property
    def subscription(self) -> str:
        assert self.settings.subscription, "the provider checks this before building clients"
        return self.settings.subscription

    @cached_property
    def credential(self) -> TokenCredential:
        if self._credential is not None:
            return self._credential
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.settings.arm_endpoint,
            "polling_interval": self.settings.poll_interval,
        }
        if self.settings.ca_bundle:
            options["connection_verify"] = self.settings.ca_bundle
        return options

    @cached_property
    def resources(self) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription, **self._options())

    @cached_property
    def registries(self) -> ContainerRegistryManagementClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return ContainerRegistryManagementClient(
            self.credential, self.subscription, **self._options()
        )

    @cached_property
    def apps(self) -> ContainerAppsAPIClient:
        from azure.mgmt.appcontainers import ContainerAppsAPIClient

        return ContainerAppsAPIClient(self.credential, self.subscription, **self._options())

    @cached_property
    def identities(self) -> ManagedServiceIdentityClient:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        return ManagedServiceIdentityClient(self.credential, self.subscription, **self._options())

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(self.credential, self.subscription, **self._options())

    def ensure_resource_group(self) -> None:
        """Create the resource group when missing (``PUT`` is idempotent, but a ``HEAD``
        first keeps an existing group's tags and location untouched)."""
        from cloudship_azure.errors import arm_errors

        group = self.settings.resource_group
        with arm_errors(f"checking resource group {group}"):
            if self.resources.resource_groups.check_existence(group):
                return
        with arm_errors(f"creating resource group {group}"):
            self.resources.resource_groups.create_or_update(
                group, {"location": self.settings.location, "tags": {"managed-by": "cloudship"}}
            )
