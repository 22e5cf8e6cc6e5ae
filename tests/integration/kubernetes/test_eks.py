"""The eks target against moto (EKS + STS) and the fake cluster with EKS authentication: the
endpoint and CA come from DescribeCluster, the token is a presigned GetCallerIdentity URL the
fake API server calls (at moto) to sign the caller in; no aws CLI, no kubeconfig file."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cloudship.config import ConfigFile
from cloudship.errors import AuthError, ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship.targets import Target, resolve
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_aws.testing import MotoServer, record_push
from cloudship_kubernetes.eks import TOKEN_PREFIX, EksApi
from cloudship_kubernetes.fake import FakeCluster
from cloudship_kubernetes.fake.eks import EksAuthenticator, moto_routing
from tests.integration.kubernetes.conftest import Images

CLUSTER = "cs-eks"


def _create_cluster(cloudship_aws_env: MotoServer) -> dict[str, Any]:
    eks = cloudship_aws_env.client("eks")
    cluster: dict[str, Any] = eks.create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )["cluster"]
    return cluster


@pytest.fixture
def eks_cluster(cloudship_aws_env: MotoServer) -> Iterator[tuple[FakeCluster, EksAuthenticator]]:
    _create_cluster(cloudship_aws_env)
    authenticator = EksAuthenticator(CLUSTER)
    with FakeCluster(authenticate=authenticator) as cluster:
        yield cluster, authenticator


def _target(
    cluster: FakeCluster, cloudship_ecr_registry: ThrowawayRegistry | None = None
) -> Target:
    settings: dict[str, Any] = {
        "cluster": CLUSTER,
        "api_server": cluster.url,
        "ca_file": cluster.ca_path,
        "poll_interval": 0.1,
    }
    if cloudship_ecr_registry is not None:
        settings["registry"] = cloudship_ecr_registry.address
    return resolve("eks", ConfigFile(), settings)


def test_endpoint_and_ca_come_from_describe_cluster(cloudship_aws_env: MotoServer) -> None:
    created = _create_cluster(cloudship_aws_env)
    target = resolve("eks", ConfigFile(), {"cluster": CLUSTER})
    api = target.runtime.api  # type: ignore[attr-defined]
    assert isinstance(api, EksApi)
    endpoint, pem = api.cluster_access()
    assert endpoint == created["endpoint"]
    assert pem == base64.b64decode(created["certificateAuthority"]["data"])


def test_token_is_a_presigned_get_caller_identity_for_the_cluster(
    cloudship_aws_env: MotoServer,
) -> None:
    target = resolve("eks", ConfigFile(), {"cluster": CLUSTER})
    token = target.runtime.api.token()  # type: ignore[attr-defined]
    assert token.startswith(TOKEN_PREFIX) and "=" not in token
    encoded = token.removeprefix(TOKEN_PREFIX)
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    assert (
        f"{parts.scheme}://{parts.netloc}" == cloudship_aws_env.endpoint
    )  # loopback moto, never AWS
    assert query["Action"] == "GetCallerIdentity" and query["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    headers = {"x-k8s-aws-id": CLUSTER, **moto_routing(query)}
    answer = httpx.get(url, headers=headers, timeout=10)
    assert answer.status_code == 200 and "<Arn>" in answer.text


def test_the_cluster_name_is_required() -> None:
    with pytest.raises(ConfigError, match="cluster"):
        resolve("eks", ConfigFile(), {})


def test_a_token_that_is_no_eks_token_is_refused(
    eks_cluster: tuple[FakeCluster, EksAuthenticator],
) -> None:
    cluster, authenticator = eks_cluster
    runtime = resolve("kubernetes", ConfigFile(), {"kubeconfig": cluster.kubeconfig}).runtime
    with pytest.raises(AuthError, match="401"):
        runtime.status("web")
    assert authenticator.identities == []


def test_ship_to_eks_on_the_fake_cluster(
    eks_cluster: tuple[FakeCluster, EksAuthenticator],
    cloudship_aws_env: MotoServer,
    cloudship_ecr_registry: ThrowawayRegistry,
    images: Images,
) -> None:
    cluster, authenticator = eks_cluster
    target = _target(cluster, cloudship_ecr_registry)
    name = f"eks-{uuid.uuid4().hex[:6]}"
    address = target.registry.repository(name)
    auth = target.registry.credentials()
    assert auth is not None
    ref = ImageRef.parse(address)
    image = images.push(address, "v1", "v1", auth=auth)
    record_push(cloudship_aws_env.client("ecr"), cloudship_ecr_registry, ref.path, "v1")
    done = target.runtime.deploy(ServiceSpec(name=name, port=8000), image, auth, timeout=60)
    assert done.revision == "r1" and done.url is not None
    assert httpx.get(done.url, timeout=10).text.strip() == "v1"
    assert authenticator.identities and authenticator.identities[0].startswith("arn:aws:")
    target.runtime.destroy(name)
