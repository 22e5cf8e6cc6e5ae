"""An AKS managed cluster for the Azure ARM fake, backed by a ``FakeCluster``.

``FakeAks(arm, cluster)`` serves ``Microsoft.ContainerService/managedClusters`` on a
``cloudship_azure.fake.FakeArm`` (through its ``extensions`` hook, so the Azure fake knows
nothing of Kubernetes) and acts as that cluster's identity platform:

- ``GET …/managedClusters/{name}`` answers the shape of the REST spec's example
  (Azure/azure-rest-api-specs ``specification/containerservice/resource-manager/
  Microsoft.ContainerService/aks/stable/2025-07-01/examples/ManagedClustersGet.json`` @
  2d621d46fbf8c4ab91071d49e8fe6f4def21ee0b): ``provisioningState``, ``powerState``,
  ``fqdn``, ``nodeResourceGroup`` ``MC_<group>_<cluster>_<location>``, plus the
  ``identityProfile.kubeletidentity`` (``resourceId``, ``clientId``, ``objectId``) of the
  user-assigned identity AKS creates in the node resource group;
- ``POST …/listClusterUserCredential`` answers ``{"kubeconfigs": [{"name", "value"}]}``
  with ``value`` the base64 of a kubeconfig (``ManagedClustersListClusterUserCredentials.json``
  @ 91dcd21c3273117264c11b0cbb85a96ed1faf7a5). For a cluster with Entra ID integration (the
  default here) its user is an ``exec`` of ``kubelogin get-token --server-id
  6dae42f8-4368-4678-94ff-3960e28e3630``: the API server accepts only an Entra token for
  that audience (https://azure.github.io/kubelogin/concepts/aks.html), so ``aad_tokens``
  names the ones it takes. With ``aad=False`` the kubeconfig carries a local account's
  bearer token instead;
- the node pulls with the kubelet identity: an image in a registry of the fake ARM is pulled
  with ``pull_login`` only while that identity holds AcrPull on the registry (Container
  Registry Repository Reader in ABAC mode), after the ARM fake's ``role_propagation``
  delay, as ``az aks update --attach-acr`` sets it up
  (https://learn.microsoft.com/azure/aks/cluster-container-registry-integration). Otherwise
  the pull is anonymous and the registry refuses it: ``ErrImagePull``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudship_azure.fake import ACR_PULL, REPOSITORY_READER, ArmError, Request, Response
from cloudship_azure.fake import resources as arm_resources

if TYPE_CHECKING:
    from cloudship_azure.fake import FakeArm
    from cloudship_kubernetes.fake.server import FakeCluster

NAMESPACE = "microsoft.containerservice"
#: what the pinned azure-mgmt-containerservice asks for, and the spec examples' version
API_VERSIONS = frozenset({"2026-08-01", "2025-07-01"})
#: the "Azure Kubernetes Service AAD Server" application: the audience of cluster tokens
AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
#: the Azure CLI's client id, as AKS writes it into the kubeconfig's kubelogin arguments
_CLI_CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"


class FakeAks:
    """One managed cluster ``name`` in ``resource_group``, whose API server is ``cluster``.

    Build the ``FakeCluster`` with ``authenticate=aks.authenticate`` and
    ``node_credentials=aks.node_credentials`` (``cloudship_kubernetes.testing`` does)."""

    def __init__(
        self,
        arm: FakeArm,
        *,
        resource_group: str = "cloudship",
        name: str = "cs-aks",
        location: str = "eastus",
        aad: bool = True,
        aad_tokens: set[str] | frozenset[str] = frozenset(),
        pull_login: dict[str, str] | None = None,
    ) -> None:
        self.arm, self.resource_group, self.name, self.location = (
            arm,
            resource_group,
            name,
            location,
        )
        self.aad, self.aad_tokens = aad, set(aad_tokens)
        self.pull_login = pull_login
        self.local_token = uuid.uuid4().hex
        self.cluster: FakeCluster | None = None
        self.subscription = next(iter(arm.subscriptions))
        self.node_resource_group = f"MC_{resource_group}_{name}_{location}"
        #: the API server's answer to a caller: set by ``authenticate``
        self.signed_in: list[str] = []
        arm.extensions[NAMESPACE] = self.handle

    # -- the world as it is before cloudship runs -------------------------------------------

    def attach(self, cluster: FakeCluster) -> None:
        """Make the managed cluster exist (its group, node group, kubelet identity), served
        by ``cluster``."""
        self.cluster = cluster
        sub, rg = self.subscription, self.resource_group
        with self.arm.lock:
            for group in (rg, self.node_resource_group):
                rid = f"/subscriptions/{sub}/resourceGroups/{group}"
                self.arm.resources.setdefault(
                    rid.lower(),
                    {
                        "id": rid,
                        "name": group,
                        "type": "Microsoft.Resources/resourceGroups",
                        "location": self.location,
                        "tags": {},
                        "properties": {"provisioningState": "Succeeded"},
                    },
                )
            identity_id = arm_resources.resource_id(
                sub,
                self.node_resource_group,
                "microsoft.managedidentity/userassignedidentities",
                f"{self.name}-agentpool",
            )
            self.arm.resources[identity_id.lower()] = arm_resources.identity(
                self.arm, identity_id, f"{self.name}-agentpool", {"location": self.location}, None
            )

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )

    def kubelet_identity(self) -> dict[str, str]:
        identity_id = arm_resources.resource_id(
            self.subscription,
            self.node_resource_group,
            "microsoft.managedidentity/userassignedidentities",
            f"{self.name}-agentpool",
        )
        with self.arm.lock:
            found = self.arm.resources[identity_id.lower()]
        return {
            "resourceId": found["id"],
            "clientId": found["properties"]["clientId"],
            "objectId": found["properties"]["principalId"],
        }

    # -- the API server's side --------------------------------------------------------------

    def authenticate(self, token: str) -> bool:
        accepted = self.aad_tokens if self.aad else {self.local_token}
        if token in accepted:
            self.signed_in.append("aad" if self.aad else "local")
            return True
        return False

    def node_credentials(self, host: str) -> dict[str, str] | None:
        """What the kubelet pulls from ``host`` with: ``pull_login`` when the kubelet identity
        may pull from the fake ARM's registry at that login server, else nothing."""
        with self.arm.lock:
            registry = next(
                (
                    r
                    for r in self.arm.resources.values()
                    if r["type"] == "Microsoft.ContainerRegistry/registries"
                    and r["properties"]["loginServer"].lower() == host.lower()
                ),
                None,
            )
            if registry is None or self.pull_login is None:
                return None
            abac = registry["properties"].get("roleAssignmentMode") == "AbacRepositoryPermissions"
            role = REPOSITORY_READER if abac else ACR_PULL
            principal = self.kubelet_identity()["objectId"]
            if not arm_resources.has_role(self.arm, principal, registry["id"], role):
                return None
        return {**self.pull_login, "serveraddress": host}

    # -- ARM --------------------------------------------------------------------------------

    def handle(self, request: Request, match: re.Match[str]) -> Response:
        version = request.query.get("api-version", "")
        if version not in API_VERSIONS:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for API version '{version}' of "
                f"namespace 'Microsoft.ContainerService'. The supported api-versions are "
                f"'{', '.join(sorted(API_VERSIONS))}'.",
            )
        if match["type"].lower() != "managedclusters":
            raise ArmError(404, "InvalidResourceType", f"{match['type']} is not served here.")
        self.arm.require_group(match["sub"], match["rg"])
        if (
            match["name"].lower() != self.name.lower()
            or match["rg"].lower() != self.resource_group.lower()
            or self.cluster is None
        ):
            raise arm_resources.not_found(
                "Microsoft.ContainerService/managedClusters", match["name"], match["rg"]
            )
        rest = (match["rest"] or "").lower()
        if request.method == "GET" and not rest:
            return Response(200, self.body())
        if request.method == "POST" and rest == "/listclusterusercredential":
            value = base64.b64encode(self.kubeconfig().encode()).decode()
            return Response(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})
        raise ArmError(405, "MethodNotAllowed", f"{request.method} {rest or '/'} is not served.")

    def body(self) -> dict[str, Any]:
        unique = hashlib.sha256(self.resource_id.lower().encode()).hexdigest()[:8]
        fqdn = f"{self.name}-dns-{unique}.hcp.{self.location}.azmk8s.io"
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.32",
            "currentKubernetesVersion": "1.32.0",
            "dnsPrefix": f"{self.name}-dns",
            "fqdn": fqdn,
            "agentPoolProfiles": [
                {
                    "name": "nodepool1",
                    "count": 1,
                    "vmSize": "Standard_DS2_v2",
                    "osType": "Linux",
                    "mode": "System",
                    "provisioningState": "Succeeded",
                    "powerState": {"code": "Running"},
                }
            ],
            "nodeResourceGroup": self.node_resource_group,
            "enableRBAC": True,
            "identityProfile": {"kubeletidentity": self.kubelet_identity()},
        }
        if self.aad:
            properties["aadProfile"] = {
                "managed": True,
                "enableAzureRBAC": False,
                "tenantID": self.arm.tenant,
            }
        return {
            "id": self.resource_id,
            "location": self.location,
            "name": self.name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.resource_id)),
                "tenantId": self.arm.tenant,
            },
            "sku": {"name": "Base", "tier": "Free"},
            "properties": properties,
        }

    def kubeconfig(self) -> str:
        """The ``clusterUser`` kubeconfig ``az aks get-credentials`` writes (JSON is YAML)."""
        assert self.cluster is not None
        ca = base64.b64encode(Path(self.cluster.ca_path).read_bytes()).decode()
        user: dict[str, Any]
        if self.aad:
            user = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "kubelogin",
                    "args": [
                        "get-token",
                        "--environment",
                        "AzurePublicCloud",
                        "--server-id",
                        AKS_SERVER_ID,
                        "--client-id",
                        _CLI_CLIENT_ID,
                        "--tenant-id",
                        self.arm.tenant,
                        "--login",
                        "devicecode",
                    ],
                    "env": None,
                    "provideClusterInfo": False,
                }
            }
        else:
            user = {"token": self.local_token}
        user_name = f"clusterUser_{self.resource_group}_{self.name}"
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": self.name,
                        "cluster": {"server": self.cluster.url, "certificate-authority-data": ca},
                    }
                ],
                "contexts": [
                    {"name": self.name, "context": {"cluster": self.name, "user": user_name}}
                ],
                "current-context": self.name,
                "preferences": {},
                "users": [{"name": user_name, "user": user}],
            },
            indent=2,
        )
