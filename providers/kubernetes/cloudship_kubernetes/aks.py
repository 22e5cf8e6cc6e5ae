"""The ``aks`` target: Azure Container Registry for images + an AKS cluster, with no az CLI,
no kubelogin and no kubeconfig file.

The connection comes from the AKS API: ``managedClusters.get`` (is it Succeeded and
Running?) and ``listClusterUserCredential``, the kubeconfig ``az aks get-credentials``
writes (Azure/azure-rest-api-specs ``specification/containerservice/resource-manager/
Microsoft.ContainerService/aks/stable/2025-07-01/managedClusters.json`` @
f5ec61419fff5b65e7a5f6a38782172d07b14ec4). On a cluster with Entra ID integration that
kubeconfig's user is an ``exec`` of kubelogin; cloudship does what ``kubelogin get-token``
does instead: asks the target's credential for a token for the ``--server-id`` audience
(the AKS AAD Server application, https://azure.github.io/kubelogin/concepts/aks.html), and
asks again before it expires. A local-account kubeconfig is used as it is.

Pulls: the cluster's kubelet identity (``identityProfile.kubeletidentity.objectId``) is
granted AcrPull on the registry — Repository Reader in ABAC mode — as
``az aks update --attach-acr`` does
(https://learn.microsoft.com/azure/aks/cluster-container-registry-integration), with the
Azure provider's role-assignment code; so no pull secret is stored in the cluster. A grant
takes up to 10 minutes to take effect: while it may still be propagating, a pod that fails
to pull is deleted after a back-off so its replacement pulls at once, instead of failing the
ship. When the signed-in principal may not assign roles (403), or ``attach_registry=False``,
the registry's in-memory token becomes a pull secret, as on any cluster.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from cloudship.config import ConfigFile, load_settings
from cloudship.errors import AuthError, ConfigError, DeployError
from cloudship.events import EventSink, Notice, ignore
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.runtime import Deployment, ServiceSpec
from cloudship.targets import Provider, Target
from cloudship_kubernetes.client import KubeApi, Obj
from cloudship_kubernetes.runtime import CORE, KubernetesRuntime
from cloudship_kubernetes.settings import (
    DEFAULT_NAMESPACE,
    KubernetesSettings,
    Namespace,
    WorkloadSettings,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerservice import ContainerServiceClient
    from lightkube import Client

    from cloudship_azure.acr import AcrRegistry
    from cloudship_azure.clients import AzureClients

#: the audience of AKS cluster tokens when the kubeconfig names none ("AKS AAD Server")
AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
#: ask for a new token when the current one has less than this left (seconds)
TOKEN_MARGIN = 300.0
#: the longest pause between two re-pulls while a grant propagates (seconds)
REPULL_MAX = 30.0


class AksSettings(WorkloadSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_AKS_", extra="forbid")

    subscription: str | None = None
    #: the cluster's resource group; the registry is looked up (or created) here first
    resource_group: str = "cloudship"
    #: the AKS cluster's name
    cluster: str | None = None
    #: the ACR name (5-50 letters/digits)
    registry: str | None = None
    #: where a missing registry is created
    location: str = "eastus"
    tenant: str | None = None
    #: Azure Resource Manager endpoint; a fake ARM's ``https://127.0.0.1:PORT`` in tests
    arm_endpoint: str = "https://management.azure.com"
    #: CA bundle trusted for ARM and the registry (a fake's test CA); default: system CAs
    ca_bundle: str | None = None
    #: the namespace (the kubeconfig cloudship writes for the cluster names none)
    namespace: Namespace = DEFAULT_NAMESPACE
    #: grant the kubelet identity AcrPull instead of storing a pull secret
    attach_registry: bool = True
    #: a managed cluster's API is remote and rate-limited: read its rollout less often
    poll_interval: float = Field(default=2.0, gt=0)


def server_id(user: Obj) -> str | None:
    """The ``--server-id`` of a kubelogin ``exec`` user; None when the user is no exec."""
    command = user.get("exec")
    if not isinstance(command, dict):
        return None
    args = [str(a) for a in command.get("args") or []]
    for index, arg in enumerate(args):
        if arg == "--server-id" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--server-id="):
            return arg.split("=", 1)[1]
    return AKS_SERVER_ID


class AksApi(KubeApi):
    """``KubeApi`` whose kubeconfig comes from ``listClusterUserCredential``, held in memory."""

    def __init__(self, settings: AksSettings, clients: AzureClients) -> None:
        super().__init__(None, None, settings.namespace)
        self._aks_settings, self._clients = settings, clients
        self._expires = 0.0
        self._cluster: Any = None

    @property
    def managed_clusters(self) -> Any:
        from azure.mgmt.containerservice import ContainerServiceClient

        settings = self._aks_settings
        options: dict[str, Any] = {"base_url": settings.arm_endpoint}
        if settings.ca_bundle:
            options["connection_verify"] = settings.ca_bundle
        client: ContainerServiceClient = ContainerServiceClient(
            self._clients.credential, self._clients.subscription, **options
        )
        return client.managed_clusters

    def managed_cluster(self) -> Any:
        """The cluster resource; ``ConfigError`` unless it provisioned and runs."""
        from cloudship_azure.errors import arm_errors

        settings = self._aks_settings
        name, group = settings.cluster or "", settings.resource_group
        from azure.core.exceptions import ResourceNotFoundError

        with arm_errors(f"reading AKS cluster {name}"):
            try:
                cluster = self.managed_clusters.get(group, name)
            except ResourceNotFoundError as exc:
                raise ConfigError(
                    f"there is no AKS cluster {name!r} in resource group {group!r}",
                    fix="check cluster= and resource_group= (az aks list -o table)",
                ) from exc
        state = cluster.provisioning_state
        power = getattr(cluster.power_state, "code", None)
        if state != "Succeeded" or power not in (None, "Running"):
            raise ConfigError(
                f"AKS cluster {name!r} is {state} and {power or 'in an unknown power state'}",
                fix=f"wait for it, or start it: az aks start -g {group} -n {name}",
            )
        self._cluster = cluster
        return cluster

    def kubelet_object_id(self) -> str:
        """The object id of the identity the cluster's nodes pull images with."""
        cluster = self._cluster or self.managed_cluster()
        kubelet = (cluster.identity_profile or {}).get("kubeletidentity")
        object_id = getattr(kubelet, "object_id", None)
        if not object_id:
            raise ConfigError(
                f"AKS cluster {self._aks_settings.cluster!r} has no kubelet identity (a "
                "service-principal cluster)",
                fix="pass attach_registry=False to pull with a pull secret, or move the "
                "cluster to managed identities (az aks update --enable-managed-identity)",
            )
        return str(object_id)

    def _user_kubeconfig(self) -> dict[str, Any]:
        import yaml

        from cloudship_azure.errors import arm_errors

        settings = self._aks_settings
        self.managed_cluster()
        with arm_errors(f"getting the credentials of AKS cluster {settings.cluster}"):
            result = self.managed_clusters.list_cluster_user_credentials(
                settings.resource_group, settings.cluster or ""
            )
        found = result.kubeconfigs or []
        if not found or not found[0].value:
            raise DeployError(f"AKS returned no kubeconfig for cluster {settings.cluster!r}")
        value = found[0].value
        raw = bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(value)
        config: dict[str, Any] = yaml.safe_load(raw)
        self._expires = float("inf")
        for entry in config.get("users") or []:
            audience = server_id(entry.get("user") or {})
            if audience is None:
                continue
            with arm_errors(f"getting an Entra ID token for AKS cluster {settings.cluster}"):
                token = self._clients.credential.get_token(f"{audience}/.default")
            entry["user"] = {"token": token.token}
            self._expires = min(self._expires, float(token.expires_on))
        return config

    def _connect(self) -> Client:
        if self._client is not None and time.time() < self._expires - TOKEN_MARGIN:
            return self._client
        from lightkube import Client, KubeConfig

        from cloudship_kubernetes.errors import api_errors

        config = self._user_kubeconfig()
        with api_errors("building the AKS connection"):
            single = KubeConfig.from_dict(config).get()
            assert single is not None
            self._server = str(single.cluster.server)
            self._namespace = self._aks_settings.namespace
            self._client = Client(
                config=single, namespace=self._namespace, field_manager="cloudship"
            )
        return self._client


class AksRuntime(KubernetesRuntime):
    """The Kubernetes runtime on AKS: pulls from the target's ACR with the kubelet identity."""

    kind: ClassVar[str] = "aks"

    def __init__(
        self,
        settings: KubernetesSettings,
        api: AksApi,
        registry: AcrRegistry,
        clients: AzureClients,
        *,
        attach_registry: bool = True,
    ) -> None:
        super().__init__(settings, api=api)
        self.aks = api
        self._registry, self._clients, self._attach = registry, clients, attach_registry
        self._granted_at: datetime | None = None
        self._repull_wait = settings.poll_interval
        self._repull_at = 0.0

    def _pull_path(
        self, image: ImageRef, pull: RegistryAuth | None, on_event: EventSink
    ) -> RegistryAuth | None:
        """None when the kubelet identity pulls (granted now); else the pull secret's auth."""
        from cloudship_azure.identity import grant_registry_pull

        if not self._attach or str(image.registry).lower() != self._registry.address.lower():
            return pull
        try:
            self._granted_at = grant_registry_pull(
                self._clients,
                self._registry.resource_id,
                self.aks.kubelet_object_id(),
                abac=self._registry.abac,
                on_event=on_event,
            )
        except AuthError as exc:
            on_event(
                Notice(
                    message=f"cannot grant the cluster's kubelet identity AcrPull ({exc}); "
                    "pulling with a pull secret instead, rewritten on every ship "
                    "(az aks update --attach-acr would avoid it)"
                )
            )
            return pull
        self._repull_wait = self.settings.poll_interval
        return None

    def _propagating(self) -> bool:
        from datetime import UTC

        from cloudship_azure.identity import PROPAGATION

        if self._granted_at is None:
            return False
        return (datetime.now(UTC) - self._granted_at).total_seconds() < PROPAGATION

    def _may_recover(self, pod: Obj, reason: str, on_event: EventSink) -> bool:
        if "ErrImagePull" not in reason and "ImagePullBackOff" not in reason:
            return False
        if not self._propagating():
            return False
        now = time.monotonic()
        if now >= self._repull_at:
            if self._repull_at:
                # the kubelet's own back-off would wait up to 5 minutes: a new pod pulls now
                self.api.delete(CORE, "Pod", pod["metadata"]["name"])
            on_event(
                Notice(
                    message="the kubelet identity's AcrPull role is not in effect yet (role "
                    f"assignments take minutes to propagate); pulling again in "
                    f"{self._repull_wait:g}s"
                )
            )
            self._repull_at = now + self._repull_wait
            self._repull_wait = min(self._repull_wait * 2, REPULL_MAX)
        return True

    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        self.validate(spec)
        self._repull_at = 0.0
        return super().deploy(
            spec,
            image,
            self._pull_path(image, pull, on_event),
            timeout=timeout,
            on_event=on_event,
            force=force,
        )


class AksProvider(Provider):
    name: ClassVar[str] = "aks"
    settings_model: ClassVar[type[BaseModel]] = AksSettings
    registry_kinds: ClassVar[frozenset[str]] = frozenset()
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"aks"})

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        from cloudship_azure.acr import AcrRegistry
        from cloudship_azure.clients import AzureClients
        from cloudship_azure.settings import AzureSettings

        overrides = dict(overrides)
        credential: TokenCredential | None = overrides.pop("credential", None)
        settings = load_settings(AksSettings, config.section(self.name), overrides)
        for field, fix in (
            ("subscription", "pass subscription=..., or set CLOUDSHIP_AKS_SUBSCRIPTION"),
            ("cluster", "pass cluster='NAME', or set CLOUDSHIP_AKS_CLUSTER (az aks list)"),
            ("registry", "pass registry='myregistry', or set CLOUDSHIP_AKS_REGISTRY"),
        ):
            if not getattr(settings, field):
                raise ConfigError(f"the aks target needs the {field}", fix=fix)
        azure = load_settings(
            AzureSettings,
            {},
            {
                "subscription": settings.subscription,
                "resource_group": settings.resource_group,
                "location": settings.location,
                "registry": settings.registry,
                "tenant": settings.tenant,
                "arm_endpoint": settings.arm_endpoint,
                "ca_bundle": settings.ca_bundle,
                "poll_interval": settings.poll_interval,
            },
        )
        clients = AzureClients(azure, credential)
        registry = AcrRegistry(clients)
        runtime = AksRuntime(
            settings.workload(),
            AksApi(settings, clients),
            registry,
            clients,
            attach_registry=settings.attach_registry,
        )
        # AKS nodes pull from ACR through the kubelet identity: the pair is known to work.
        return Target(registry=registry, runtime=runtime, name=self.name, paired=True)


provider = AksProvider()

__all__ = ["AksApi", "AksProvider", "AksRuntime", "AksSettings", "provider"]
