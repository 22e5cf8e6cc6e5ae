"""Azure Container Registry as a cloudship ``Registry``.

The registry is looked up in the target's resource group, then anywhere in the subscription
(an existing registry is often in a shared group); only when neither has it is its name checked
with ``checkNameAvailability`` — ACR names are global, so another tenant may hold it — and the
registry created (SKU Basic, admin user disabled). It is never logged into with the admin
password: pushes use the AAD flow ``az acr login`` uses (Azure/acr
docs/AAD-OAuth.md) — an ARM access token from the credential is exchanged at
``POST https://<login server>/oauth2/exchange`` for an ACR refresh token, which is the in-memory
password of the null-GUID user. The exchange endpoint is found the way ``az`` finds it: from
the realm of the registry's ``WWW-Authenticate`` challenge (``…/oauth2/token`` →
``…/oauth2/exchange``), so a registry whose token service lives elsewhere works unchanged.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from cloudship.distribution import DistributionClient, registry_base_url
from cloudship.errors import AuthError, ConfigError, RegistryError
from cloudship.events import EventSink, Notice, ignore
from cloudship.registry import Registry, RegistryAuth
from cloudship_azure.clients import ACR_EXCHANGE_SCOPE, AzureClients
from cloudship_azure.errors import arm_errors

if TYPE_CHECKING:
    from azure.mgmt.containerregistry.models import Registry as ArmRegistry

#: the user name that tells ACR the password is a refresh token
NULL_GUID = "00000000-0000-0000-0000-000000000000"
#: used when a refresh token carries no readable ``exp`` (ACR docs: renew every 3 hours)
DEFAULT_REFRESH_LIFETIME = timedelta(hours=3)
_REALM = re.compile(r'realm="([^"]+)"')


def refresh_token_expiry(token: str) -> datetime | None:
    """The ``exp`` of a JWT refresh token, read without verifying it (ACR verifies it)."""
    try:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, KeyError, ValueError, TypeError):
        return None


class AcrRegistry(Registry):
    kind: ClassVar[str] = "acr"

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients
        self._settings = clients.settings
        assert self._settings.registry, "the provider checks this before building the target"
        self.name = self._settings.registry
        self._resource: ArmRegistry | None = None
        self._auth: RegistryAuth | None = None

    # -- the ARM resource ----------------------------------------------------------------

    def _lookup(self) -> ArmRegistry | None:
        from azure.core.exceptions import ResourceNotFoundError

        if self._resource is None:
            operations = self._clients.registries.registries
            with arm_errors(f"reading registry {self.name}"):
                try:
                    self._resource = operations.get(self._settings.resource_group, self.name)
                except ResourceNotFoundError:
                    self._resource = next(
                        (r for r in operations.list() if str(r.name).lower() == self.name.lower()),
                        None,
                    )
        return self._resource

    def _check_name_free(self) -> None:
        """``ConfigError`` when the global registry name is held elsewhere (another
        subscription or tenant): creating it would only fail after a build and a 409."""
        from azure.mgmt.containerregistry.models import RegistryNameCheckRequest

        with arm_errors(f"checking that the registry name {self.name} is free"):
            answer = self._clients.registries.registries.check_name_availability(
                RegistryNameCheckRequest(
                    name=self.name, type="Microsoft.ContainerRegistry/registries"
                )
            )
        if not answer.name_available and answer.reason == "Invalid":
            raise ConfigError(
                f"Azure refuses the registry name {self.name!r}: {answer.message}",
                fix="use 5-50 letters and digits",
            )
        if not answer.name_available:
            raise ConfigError(
                f"registry name {self.name!r} is taken outside this subscription "
                f"({answer.reason}: {answer.message})",
                fix="registry names are global across Azure: choose another registry= name, "
                "or use the subscription that holds it",
            )

    def ensure(self, on_event: EventSink = ignore) -> ArmRegistry:
        """The registry resource, created (Basic, admin user disabled) when missing."""
        found = self._lookup()
        if found is not None:
            if found.properties and found.properties.admin_user_enabled:
                on_event(
                    Notice(
                        message=f"registry {self.name} has its admin user enabled; cloudship "
                        "does not use it (consider: az acr update --admin-enabled false)"
                    )
                )
            group = str(found.id or "").split("/resourceGroups/")[-1].split("/")[0]
            if group.lower() != self._settings.resource_group.lower():
                on_event(Notice(message=f"using registry {self.name} of resource group {group}"))
            return found
        self._check_name_free()
        self._clients.ensure_resource_group()
        on_event(Notice(message=f"creating container registry {self.name} (SKU Basic)"))
        body = {
            "location": self._settings.location,
            "sku": {"name": "Basic"},
            "properties": {"adminUserEnabled": False},
            "tags": {"managed-by": "cloudship"},
        }
        with arm_errors(f"creating registry {self.name}"):
            self._resource = self._clients.registries.registries.begin_create(
                self._settings.resource_group, self.name, body
            ).result()
        return self._resource

    @property
    def abac(self) -> bool:
        """The registry honours repository roles, not AcrPull/AcrPush
        (``roleAssignmentMode: AbacRepositoryPermissions``)."""
        props = self.ensure().properties
        return bool(props and props.role_assignment_mode == "AbacRepositoryPermissions")

    @property
    def resource_id(self) -> str:
        resource = self.ensure()
        assert resource.id
        return resource.id

    @property
    def address(self) -> str:
        """The login server: from ARM when the registry exists, else the name ACR will give
        it (lower-cased name + ``.azurecr.io``)."""
        found = self._lookup()
        if found is not None and found.properties and found.properties.login_server:
            return found.properties.login_server
        return f"{self.name.lower()}.azurecr.io"

    def prepare(self, on_event: EventSink = ignore) -> None:
        from cloudship_azure.registration import ensure_registered

        # before anything is created (this is the first write of a ship)
        ensure_registered(
            self._clients,
            register=self._settings.register_providers,
            wait=self._settings.provider_wait,
            on_event=on_event,
        )
        self.ensure(on_event)

    def repository(self, name: str, *, create: bool = True) -> str:
        """ACR creates repositories on first push, so only the registry must exist."""
        if create:
            self.ensure()
        return f"{self.address}/{name}"

    # -- push/pull credentials -----------------------------------------------------------

    def credentials(self) -> RegistryAuth:
        if self._auth is None or self._auth.stale():
            self._auth = self._exchange()
        return self._auth

    def _verify(self) -> bool | ssl.SSLContext:
        if self._settings.ca_bundle:
            return ssl.create_default_context(cafile=self._settings.ca_bundle)
        return True

    def _exchange_url(self) -> str:
        import httpx

        base = registry_base_url(self.address)
        try:
            challenge = httpx.get(f"{base}/v2/", timeout=15, verify=self._verify())
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {self.address} is not reachable ({type(exc).__name__})",
                fix="check the network and that the registry exists",
            ) from exc
        realm = _REALM.search(challenge.headers.get("WWW-Authenticate", ""))
        if challenge.status_code != 401 or realm is None:
            # no Bearer challenge to learn from: ACR serves the exchange on the login server
            return f"{base}/oauth2/exchange"
        parts = urlsplit(realm[1])
        return urlunsplit((parts.scheme, parts.netloc, "/oauth2/exchange", "", ""))

    def _exchange(self) -> RegistryAuth:
        import httpx

        self.ensure()
        with arm_errors(f"getting an AAD token for registry {self.name}"):
            aad = self._clients.credential.get_token(ACR_EXCHANGE_SCOPE).token
        form = {"grant_type": "access_token", "service": self.address, "access_token": aad}
        if self._settings.tenant:
            form["tenant"] = self._settings.tenant
        url = self._exchange_url()
        try:
            response = httpx.post(url, data=form, timeout=30, verify=self._verify())
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {self.address}: token exchange failed ({type(exc).__name__})"
            ) from exc
        if response.status_code in (401, 403):
            raise AuthError(
                f"registry {self.address} refused the AAD token in the refresh-token exchange "
                f"(HTTP {response.status_code})",
                fix="the signed-in principal needs AcrPush on the registry "
                "(or Owner/Contributor on it)",
            )
        if response.status_code >= 400:
            raise RegistryError(
                f"registry {self.address}: token exchange answered HTTP {response.status_code}"
            )
        refresh = str(response.json().get("refresh_token") or "")
        if not refresh:
            raise RegistryError(f"registry {self.address}: token exchange returned no token")
        expires = refresh_token_expiry(refresh) or datetime.now(UTC) + DEFAULT_REFRESH_LIFETIME
        return RegistryAuth(
            username=NULL_GUID, password=SecretStr(refresh), server=self.address, expires_at=expires
        )

    writes_indexes: ClassVar[bool] = True

    def distribution(self) -> DistributionClient:
        """The registry API with the refresh token as the null-GUID user's password: the
        client trades it at the token service for an access token of the scope each call
        needs (``pull,push`` on the repository for a manifest PUT), as ``docker push`` does."""
        return DistributionClient(
            self.address, self.credentials(), verify=self._settings.ca_bundle or True
        )

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self.distribution().manifest_digest(repository, reference)


__all__ = ["NULL_GUID", "AcrRegistry", "refresh_token_expiry"]
