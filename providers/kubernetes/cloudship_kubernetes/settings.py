"""Settings of the ``kubernetes`` target: the ``[kubernetes]`` table, ``CLOUDSHIP_KUBERNETES_*``,
kwargs. The registry part is any Docker Registry v2 the cluster's nodes can pull from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the namespace of a kubeconfig context that names none (as kubectl does)
DEFAULT_NAMESPACE = "default"

#: an Ingress rule's host: a DNS-1123 subdomain, maybe with one leading wildcard label
#: (https://kubernetes.io/docs/concepts/services-networking/ingress/#hostname-wildcards)
Host = Annotated[
    str | None,
    Field(
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]


#: a Kubernetes namespace: a DNS-1123 label
Namespace = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]


class WorkloadSettings(BaseSettings):
    """How the service runs in the cluster: what ``kubernetes``, ``eks`` and ``aks`` share (the
    latter two pass it on with :meth:`workload`)."""

    #: namespace (default: the context's namespace, else ``default``)
    namespace: Namespace | None = None
    #: a host name: an Ingress (networking/v1) routes it to the Service; the URL becomes it
    host: Host = None
    #: the IngressClass of that Ingress (default: the cluster's default class)
    ingress_class: str | None = None
    #: the Service's port (the app's own port is the container port behind it)
    service_port: int = Field(default=80, ge=1, le=65535)
    #: seconds between reads of the rollout's state
    poll_interval: float = Field(default=0.5, gt=0)
    #: ReplicaSets kept for rollback (the Deployment's ``revisionHistoryLimit``)
    keep_revisions: int = Field(default=10, ge=1)

    def workload(self) -> KubernetesSettings:
        """These fields as the settings of the generic runtime (managed clusters' own
        fields, the credentials and endpoints, stay with them)."""
        return KubernetesSettings(**self.model_dump(include=set(WorkloadSettings.model_fields)))


class KubernetesSettings(WorkloadSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_KUBERNETES_", extra="forbid")

    #: the registry images are pushed to, ``host[:port]``; the nodes must be able to pull from it
    registry: str = "127.0.0.1:5000"
    username: str | None = None
    password: SecretStr | None = None
    #: plain HTTP to a non-loopback registry
    insecure: bool = False
    #: kubeconfig file (default: ``KUBECONFIG``, then ``~/.kube/config``, as kubectl)
    kubeconfig: Path | None = None
    #: kubeconfig context (default: its ``current-context``)
    context: str | None = None
