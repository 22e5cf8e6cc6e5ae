"""Validation and response bodies of the simple resource types the ARM fake serves:
container registries, managed environments, user-assigned identities, role assignments."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudship_azure.fake.arm import FakeArm

_TYPE_NAMES = {
    "microsoft.containerregistry/registries": "Microsoft.ContainerRegistry/registries",
    "microsoft.app/managedenvironments": "Microsoft.App/managedEnvironments",
    "microsoft.app/containerapps": "Microsoft.App/containerApps",
    "microsoft.managedidentity/userassignedidentities": (
        "Microsoft.ManagedIdentity/userAssignedIdentities"
    ),
}
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
#: registries.roleAssignmentMode (2025-11-01): in ABAC mode AcrPull/AcrPush are not honoured,
#: the "Container Registry Repository *" roles are (learn.microsoft.com/azure/
#: container-registry/container-registry-rbac-abac-repository-permissions; RegistryCreateAbac.json)
ROLE_MODES = ("LegacyRegistryPermissions", "AbacRepositoryPermissions")
_SKUS = ("Basic", "Standard", "Premium")


class ArmError(Exception):
    """An ARM error answer: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def type_name(kind: str) -> str:
    return _TYPE_NAMES.get(kind.lower(), kind)


def resource_id(sub: str, rg: str, kind: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{type_name(kind)}/{name}"


def not_found(kind: str, name: str, rg: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name(kind)}/{name}' under resource group '{rg}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def require(body: dict[str, Any], *paths: str) -> None:
    """Raise the ARM 400 for the first dotted ``path`` missing from ``body``."""
    for path in paths:
        node: Any = body
        for part in path.split("."):
            if not isinstance(node, dict) or node.get(part) in (None, ""):
                raise ArmError(
                    400,
                    "InvalidRequestContent",
                    f"The request content was invalid: required property '{path}' is missing.",
                )
            node = node[part]


def merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7396), which is how ARM applies a PATCH body."""
    if not isinstance(patch, dict):
        return patch
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _system_data(existing: dict[str, Any] | None) -> dict[str, Any]:
    created = (existing or {}).get("systemData", {}).get("createdAt", now())
    return {
        "createdBy": "fake-arm-user",
        "createdByType": "User",
        "createdAt": created,
        "lastModifiedBy": "fake-arm-user",
        "lastModifiedByType": "User",
        "lastModifiedAt": now(),
    }


def registry(
    arm: FakeArm, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """``Microsoft.ContainerRegistry/registries``: name 5-50 alphanumerics, a SKU, a location;
    the login server is the lower-cased name (RegistryCreate.json; the 409 AlreadyInUse text
    in test_registries.yaml names the lower-cased DNS name)."""
    if not REGISTRY_NAME.match(name):
        raise ArmError(
            400,
            "RegistryNameInvalid",
            f"The registry name '{name}' is invalid: it must contain only alphanumeric "
            "characters and be between 5 and 50 characters in length.",
        )
    require(body, "location", "sku.name")
    if body["sku"]["name"] not in _SKUS:
        raise ArmError(400, "InvalidSku", f"The SKU '{body['sku']['name']}' is not valid.")
    props = body.get("properties") or {}
    if existing is None and arm.registry_name_taken(name, except_id=rid):
        # the 409 Azure answers (test_cli_mgmt_containerregistry_registry.test_registries.yaml)
        raise ArmError(
            409,
            "AlreadyInUse",
            f"The registry DNS name {name.lower()}.azurecr.io is already in use. You can check "
            "if the name is already claimed using following API: https://docs.microsoft.com/"
            "en-us/rest/api/containerregistry/registries/checknameavailability",
        )
    mode = props.get("roleAssignmentMode") or (existing or {}).get("properties", {}).get(
        "roleAssignmentMode", "LegacyRegistryPermissions"
    )
    if mode not in ROLE_MODES:
        raise ArmError(400, "InvalidRoleAssignmentMode", f"roleAssignmentMode '{mode}' is invalid.")
    login = arm.login_servers.get(name.lower(), f"{name.lower()}.azurecr.io")
    return {
        "sku": {"name": body["sku"]["name"], "tier": body["sku"]["name"]},
        "type": "Microsoft.ContainerRegistry/registries",
        "id": rid,
        "name": name,
        "location": body["location"],
        "tags": body.get("tags") or {},
        "systemData": _system_data(existing),
        "properties": {
            "loginServer": login,
            "creationDate": (existing or {}).get("properties", {}).get("creationDate", now()),
            "provisioningState": "Succeeded",
            "adminUserEnabled": bool(props.get("adminUserEnabled", False)),
            "publicNetworkAccess": "Enabled",
            "anonymousPullEnabled": False,
            "roleAssignmentMode": mode,
            "policies": {"retentionPolicy": {"days": 7, "status": "disabled"}},
        },
    }


def environment(
    arm: FakeArm, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """``Microsoft.App/managedEnvironments`` (ManagedEnvironments_CreateOrUpdate.json)."""
    require(body, "location")
    props = dict(body.get("properties") or {})
    location = body["location"]
    unique = hashlib.sha256(rid.lower().encode()).hexdigest()[:8]
    domain = (
        (existing or {})
        .get("properties", {})
        .get(
            "defaultDomain",
            f"{name.lower()}-{unique}.{location.replace(' ', '').lower()}.azurecontainerapps.io",
        )
    )
    props.update(
        {
            "provisioningState": "Succeeded",
            "defaultDomain": domain,
            "staticIp": "20.1.2.3",
            "appLogsConfiguration": props.get("appLogsConfiguration")
            or {"destination": None, "logAnalyticsConfiguration": None},
            "zoneRedundant": bool(props.get("zoneRedundant", False)),
        }
    )
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.App/managedEnvironments",
        "location": location,
        "tags": body.get("tags") or {},
        "systemData": _system_data(existing),
        "properties": props,
    }


def identity(
    arm: FakeArm, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """``Microsoft.ManagedIdentity/userAssignedIdentities``: principal and client ids are
    stable for a resource id (a re-PUT keeps them, as Azure does)."""
    require(body, "location")
    props = (existing or {}).get("properties") or {
        "tenantId": arm.tenant,
        "principalId": str(uuid.uuid4()),
        "clientId": str(uuid.uuid4()),
    }
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": body["location"],
        "tags": body.get("tags") or {},
        "properties": props,
    }


def principals(arm: FakeArm) -> dict[str, str]:
    """principalId → identity resource id, for every identity the fake holds."""
    return {
        r["properties"]["principalId"]: r["id"]
        for r in arm.resources.values()
        if r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    }


def role_assignment(
    arm: FakeArm, rid: str, name: str, scope: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A role assignment: the scope must exist, the principal must be known, and the same
    role for the same principal at the same scope under another name is a 409
    ``RoleAssignmentExists`` (as Azure answers)."""
    require(body, "properties.roleDefinitionId", "properties.principalId")
    props = body["properties"]
    try:
        uuid.UUID(name)
    except ValueError as exc:
        raise ArmError(
            400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid."
        ) from exc
    if scope.lower() not in arm.resources:
        raise ArmError(404, "ResourceNotFound", f"The scope '{scope}' does not exist.")
    if props["principalId"] not in principals(arm):
        raise ArmError(
            400,
            "PrincipalNotFound",
            f"Principal {props['principalId'].replace('-', '')} does not exist in the directory "
            f"{arm.tenant}.",
        )
    for other in arm.resources.values():
        if (
            other["type"] == "Microsoft.Authorization/roleAssignments"
            and other["id"].lower() != rid.lower()
            and other["properties"]["scope"].lower() == scope.lower()
            and other["properties"]["principalId"] == props["principalId"]
            and other["properties"]["roleDefinitionId"].lower() == props["roleDefinitionId"].lower()
        ):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": props["roleDefinitionId"],
            "principalId": props["principalId"],
            "principalType": props.get("principalType", "ServicePrincipal"),
            "scope": scope,
            "createdOn": now(),
            "updatedOn": now(),
        },
    }


def has_role(arm: FakeArm, principal_id: str, scope: str, role_definition_guid: str) -> bool:
    """True when ``principal_id`` holds the role at ``scope`` (or at a parent scope) and the
    assignment has propagated: Azure RBAC changes "can take up to 10 minutes to take effect"
    (learn.microsoft.com/azure/role-based-access-control/troubleshooting)."""
    now = time.monotonic()
    for r in arm.resources.values():
        if r["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        if now - arm.role_times.get(r["id"].lower(), float("-inf")) < arm.role_propagation:
            continue
        props = r["properties"]
        if (
            props["principalId"] == principal_id
            and props["roleDefinitionId"].lower().endswith(role_definition_guid.lower())
            and scope.lower().startswith(props["scope"].lower())
        ):
            return True
    return False
