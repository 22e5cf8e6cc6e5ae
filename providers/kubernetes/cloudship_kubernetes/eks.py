"""The ``eks`` target: Amazon ECR for images + an EKS cluster, with no aws CLI and no kubeconfig.

The API server's endpoint and CA come from ``DescribeCluster``; the bearer token is what
``aws eks get-token`` prints: ``k8s-aws-v1.`` + the unpadded base64url of a presigned STS
``GetCallerIdentity`` URL whose signature covers the header ``x-k8s-aws-id: <cluster>``, valid
60 s for signing in (EKS accepts the token for 15 min). EKS then calls that URL to learn who
is asking. https://docs.aws.amazon.com/eks/latest/userguide/cluster-auth.html and
https://github.com/kubernetes-sigs/aws-iam-authenticator#api-authorization-from-outside-a-cluster

A fresh token is made for each connection and again after 10 minutes, so long rollouts keep
a valid one. The ECR registry is cloudship_aws's (its in-memory token becomes the pull
secret; EKS nodes with the AmazonEC2ContainerRegistryReadOnly policy would not need it).
"""

from __future__ import annotations

import base64
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from cloudship.config import ConfigFile, load_settings
from cloudship.errors import ConfigError, DeployError
from cloudship.targets import Provider, Target
from cloudship_kubernetes.client import KubeApi
from cloudship_kubernetes.runtime import KubernetesRuntime
from cloudship_kubernetes.settings import (
    DEFAULT_NAMESPACE,
    Namespace,
    WorkloadSettings,
)

if TYPE_CHECKING:
    from lightkube import Client

    from cloudship_aws.session import AwsClients

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
#: how long the presigned URL may be used to sign in (what aws-iam-authenticator uses)
PRESIGN_SECONDS = 60
#: a new token before EKS's 15-minute acceptance runs out
TOKEN_LIFETIME = 600.0


class EksSettings(WorkloadSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_EKS_", extra="forbid")

    #: the EKS cluster's name
    cluster: str | None = None
    region: str | None = None
    profile: str | None = None
    #: one endpoint for every AWS service (moto in tests); boto3 also reads AWS_ENDPOINT_URL
    endpoint_url: str | None = None
    #: registry host images are pushed to; default: ECR's ``proxyEndpoint``
    registry: str | None = None
    #: the namespace (the kubeconfig cloudship writes for the cluster names none)
    namespace: Namespace = DEFAULT_NAMESPACE
    #: the API server to use instead of DescribeCluster's endpoint (a fake cluster in tests)
    api_server: str | None = None
    #: a CA file to trust instead of DescribeCluster's certificate authority
    ca_file: Path | None = None
    #: a managed cluster's API is remote and rate-limited: read its rollout less often
    poll_interval: float = Field(default=2.0, gt=0)


def presigned_token(sts: Any, cluster: str) -> str:
    """``k8s-aws-v1.<base64url(presigned GetCallerIdentity URL)>``, signed for ``cluster``."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_HEADER] = cluster

    sts.meta.events.register_first("before-sign.sts.GetCallerIdentity", add_header)
    try:
        url = sts.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=PRESIGN_SECONDS, HttpMethod="GET"
        )
    finally:
        sts.meta.events.unregister("before-sign.sts.GetCallerIdentity", add_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class EksApi(KubeApi):
    """``KubeApi`` whose kubeconfig is built in memory from DescribeCluster and STS."""

    def __init__(self, settings: EksSettings, clients: AwsClients) -> None:
        super().__init__(None, None, settings.namespace)
        self._eks_settings, self._clients = settings, clients
        self._made = 0.0
        self._folder = Path(tempfile.mkdtemp(prefix="cloudship-eks-"))

    def _aws(self, service: str) -> Any:
        from cloudship_aws.session import client_config

        return self._clients.session.client(
            service,  # type: ignore[call-overload]
            region_name=self._clients.region,
            endpoint_url=self._eks_settings.endpoint_url,
            config=client_config(),
        )

    def cluster_access(self) -> tuple[str, bytes]:
        """(endpoint, CA certificate as EKS gives it: base64-decoded PEM) from DescribeCluster."""
        from cloudship_aws.errors import aws_errors

        name = self._eks_settings.cluster or ""
        with aws_errors(f"describing EKS cluster {name}", DeployError):
            cluster = self._aws("eks").describe_cluster(name=name)["cluster"]
        endpoint = cluster.get("endpoint")
        if not endpoint or cluster.get("status") not in (None, "ACTIVE"):
            raise ConfigError(
                f"EKS cluster {name!r} is {cluster.get('status', 'not ready')}, "
                "with no endpoint yet",
                fix="wait until `aws eks describe-cluster` says ACTIVE",
            )
        return str(endpoint), base64.b64decode(cluster["certificateAuthority"]["data"])

    def token(self) -> str:
        return presigned_token(self._aws("sts"), self._eks_settings.cluster or "")

    def _connect(self) -> Client:
        if self._client is not None and time.monotonic() - self._made < TOKEN_LIFETIME:
            return self._client
        from lightkube import Client, KubeConfig

        from cloudship_kubernetes.errors import api_errors

        settings = self._eks_settings
        if settings.api_server and settings.ca_file:
            server, ca_path = settings.api_server, str(settings.ca_file)
        else:
            server, pem = self.cluster_access()
            ca = self._folder / "ca.pem"
            ca.write_bytes(pem)
            server, ca_path = settings.api_server or server, str(settings.ca_file or ca)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "eks", "cluster": {"server": server, "certificate-authority": ca_path}}
            ],
            "users": [{"name": "eks", "user": {"token": self.token()}}],
            "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
            "current-context": "eks",
        }
        with api_errors("building the EKS connection"):
            single = KubeConfig.from_dict(config).get()
            assert single is not None
            self._server = server
            self._namespace = settings.namespace
            self._client = Client(
                config=single, namespace=settings.namespace, field_manager="cloudship"
            )
        self._made = time.monotonic()
        return self._client

    @property
    def server(self) -> str:
        return self._eks_settings.api_server or self.cluster_access()[0]


class EksProvider(Provider):
    name: ClassVar[str] = "eks"
    settings_model: ClassVar[type[BaseModel]] = EksSettings
    registry_kinds: ClassVar[frozenset[str]] = frozenset()
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"eks"})

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        from cloudship_aws.ecr import EcrRegistry
        from cloudship_aws.session import AwsClients
        from cloudship_aws.settings import AwsSettings

        settings = load_settings(EksSettings, config.section(self.name), overrides)
        if not settings.cluster:
            raise ConfigError(
                "the eks target needs the cluster's name",
                fix="pass cluster='NAME', or set CLOUDSHIP_EKS_CLUSTER (aws eks list-clusters)",
            )
        aws = AwsSettings(
            region=settings.region,
            profile=settings.profile,
            endpoint_url=settings.endpoint_url,
            registry=settings.registry,
        )
        clients = AwsClients(aws)
        runtime = KubernetesRuntime(
            settings.workload(),
            api=EksApi(settings, clients),
        )
        # EKS nodes pull from ECR in their own region; the pair is known to work.
        return Target(
            registry=EcrRegistry(aws, clients), runtime=runtime, name=self.name, paired=True
        )


provider = EksProvider()
