"""The user-assigned identity container apps pull with, and its AcrPull role on the registry.

Why user-assigned: a system-assigned identity does not exist until the app does, so it cannot
be granted AcrPull before the first revision pulls, and the first deploy of a private image
fails (MicrosoftDocs/azure-docs articles/container-apps/containers.md). An identity created
first, granted AcrPull, then attached to the app avoids that; and the ACR admin password is
never stored as an app secret.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

from cloudship.errors import AuthError
from cloudship.events import EventSink, Notice, ignore
from cloudship_azure.clients import AzureClients
from cloudship_azure.errors import arm_code, arm_errors

#: built-in role "AcrPull" (learn.microsoft.com/azure/role-based-access-control/built-in-roles)
ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
#: built-in "Container Registry Repository Reader": what pulls from a registry in ABAC mode
#: (roleAssignmentMode AbacRepositoryPermissions), where AcrPull is not honoured
#: (learn.microsoft.com/azure/container-registry/container-registry-rbac-built-in-roles-overview)
REPOSITORY_READER_ROLE = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
# A new identity's service principal takes a while to replicate through Entra ID; until then a
# role assignment naming it fails with PrincipalNotFound. Retry within this budget.
_PRINCIPAL_WAIT = 90.0


#: how long a role assignment may take to take effect: "up to 10 minutes"
#: (learn.microsoft.com/azure/role-based-access-control/troubleshooting)
PROPAGATION = 600.0


class PullIdentity(NamedTuple):
    id: str
    #: when its AcrPull assignment was created (a pull refused before it propagated is retried)
    granted_at: datetime

    def propagating(self) -> bool:
        """True while the grant may not have taken effect everywhere yet."""
        return (datetime.now(UTC) - self.granted_at).total_seconds() < PROPAGATION


def ensure_pull_identity(
    clients: AzureClients, registry_id: str, *, abac: bool = False, on_event: EventSink = ignore
) -> PullIdentity:
    """Create (or reuse) the pull identity and grant it AcrPull on ``registry_id`` (the
    Repository Reader role when the registry is in ABAC mode).
    Idempotent: the role assignment's name is derived from the registry, role and principal,
    so a second run finds it instead of adding another."""
    settings = clients.settings
    with arm_errors(f"creating managed identity {settings.identity}"):
        identity = clients.identities.user_assigned_identities.create_or_update(
            settings.resource_group,
            settings.identity,
            {"location": settings.location, "tags": {"managed-by": "cloudship"}},
        )
    assert identity.id and identity.principal_id
    role = REPOSITORY_READER_ROLE if abac else ACR_PULL_ROLE
    granted = _grant_pull(clients, registry_id, role, str(identity.principal_id), on_event)
    return PullIdentity(str(identity.id), granted)


def _grant_pull(
    clients: AzureClients, registry_id: str, role_id: str, principal_id: str, on_event: EventSink
) -> datetime:
    """When the assignment was made (now, if this call made it)."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{registry_id}|{role_id}|{principal_id}"))
    role = (
        f"/subscriptions/{clients.subscription}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{role_id}"
    )
    operations = clients.authorization.role_assignments
    with arm_errors("reading the AcrPull role assignment"):
        try:
            found = operations.get(registry_id, name)
            created = getattr(found, "created_on", None)
            return created if isinstance(created, datetime) else datetime.now(UTC)
        except ResourceNotFoundError:
            pass
    on_event(Notice(message="granting the pull identity AcrPull on the registry"))
    deadline = time.monotonic() + _PRINCIPAL_WAIT
    with arm_errors("granting AcrPull to the pull identity"):
        while True:
            try:
                operations.create(
                    registry_id,
                    name,
                    {
                        "properties": {
                            "roleDefinitionId": role,
                            "principalId": principal_id,
                            "principalType": "ServicePrincipal",
                        }
                    },
                )
                return datetime.now(UTC)
            except HttpResponseError as exc:
                code = arm_code(exc)
                if code == "RoleAssignmentExists":
                    return datetime.now(UTC)
                if code == "PrincipalNotFound" and time.monotonic() < deadline:
                    time.sleep(clients.settings.poll_interval)
                    continue
                if code == "PrincipalNotFound":
                    raise AuthError(
                        "the new pull identity never appeared in the directory",
                        fix="retry in a minute (Entra ID replication)",
                    ) from exc
                raise


def grant_registry_pull(
    clients: AzureClients,
    registry_id: str,
    principal_id: str,
    *,
    abac: bool = False,
    on_event: EventSink = ignore,
) -> datetime:
    """Grant an existing principal (an AKS cluster's kubelet identity) AcrPull on
    ``registry_id`` — the Repository Reader role in ABAC mode — as ``ensure_pull_identity``
    grants its own identity; idempotent. When the assignment was made (now, if this call made
    it): until ``PROPAGATION`` has passed, pulls may still be refused."""
    role = REPOSITORY_READER_ROLE if abac else ACR_PULL_ROLE
    return _grant_pull(clients, registry_id, role, principal_id, on_event)
