"""Settings of the ``azure`` target: the ``[azure]`` table < ``CLOUDSHIP_AZURE_*`` < kwargs."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# ACR names: alphanumerics only, 5-50 characters (learn.microsoft.com, PSRule Azure.ACR.Name)
_REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
# resource group names: letters, digits, '_', '-', '.', '(', ')'; not ending with '.'
_GROUP_NAME = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
# managed environment / identity names: lower-case letters, digits, '-'
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


class AzureSettings(BaseSettings):
    """Where the ``azure`` target creates things. Only ``subscription`` and ``registry`` have
    no default; everything named here is created when missing."""

    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_AZURE_", extra="forbid")

    subscription: str | None = None
    resource_group: str = "cloudship"
    location: str = "eastus"
    #: the ACR name (5-50 alphanumerics); its login server is ``<lower-cased name>.azurecr.io``
    registry: str | None = None
    environment: str = "cloudship-env"
    #: the user-assigned identity the apps pull with (granted AcrPull on the registry)
    identity: str = "cloudship-pull"
    min_replicas: int = Field(default=0, ge=0, le=1000)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    #: the tenant of the AAD token exchanged for an ACR refresh token (optional for ACR)
    tenant: str | None = None
    #: Azure Resource Manager endpoint; a fake ARM's ``https://127.0.0.1:PORT`` in tests
    arm_endpoint: str = "https://management.azure.com"
    #: CA bundle trusted for ARM and the registry (a fake's test CA); default: system CAs
    ca_bundle: str | None = None
    #: where the health probe goes; ``{fqdn}`` is the revision's host, ``{path}`` the health path
    probe_url: str = "https://{fqdn}{path}"
    #: cloudship runs inside the environment's network (a VM or CI runner in its VNet), so
    #: internal-ingress revisions (``public=False``) can be health-probed from here
    inside_environment: bool = False
    #: register the resource providers the target needs when the subscription has not
    #: (False: refuse with the ``az provider register`` commands instead)
    register_providers: bool = True
    #: seconds to wait for a provider registration (Azure's take minutes)
    provider_wait: float = Field(default=600.0, gt=0)
    #: seconds between status polls when ARM does not say (Retry-After)
    poll_interval: float = Field(default=5.0, gt=0)

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and not _REGISTRY_NAME.match(value):
            raise ValueError(
                f"registry name {value!r} must be 5-50 letters or digits (no '-', '_' or '.')"
            )
        return value

    @field_validator("resource_group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _GROUP_NAME.match(value):
            raise ValueError(f"resource group name {value!r} is not valid")
        return value

    @field_validator("environment", "identity")
    @classmethod
    def _env(cls, value: str) -> str:
        if not _ENV_NAME.match(value) or "--" in value:
            raise ValueError(
                f"{value!r} must be 2-32 lower-case letters, digits or '-' (no '--'), starting "
                "with a letter"
            )
        return value

    @field_validator("probe_url")
    @classmethod
    def _probe(cls, value: str) -> str:
        if "{fqdn}" not in value or "{path}" not in value:
            raise ValueError("probe_url must contain {fqdn} and {path}")
        return value

    @model_validator(mode="after")
    def _replicas(self) -> AzureSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        return self
