"""plan() lists the objects a ship would apply, and bad input is refused before anything is
created — on the fake API server, with no engine (nothing here starts a pod)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudship.config import ConfigFile
from cloudship.errors import ConfigError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship.targets import Target, resolve
from cloudship_kubernetes.fake import FakeCluster

IMAGE = ImageRef.parse("127.0.0.1:5000/web@sha256:" + "b" * 64)


@pytest.fixture(scope="module")
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster() as fake:
        yield fake


def _target(cluster: FakeCluster, **settings: object) -> Target:
    return resolve("kubernetes", ConfigFile(), {"kubeconfig": cluster.kubeconfig, **settings})


def _objects(cluster: FakeCluster) -> list[str]:
    store = cluster.store
    return [
        f"{plural}/{obj['metadata']['name']}"
        for plural in ("deployments", "services", "secrets", "horizontalpodautoscalers")
        for obj in store.list(store.kind(plural), None)
    ]


def test_plan_shows_every_object_and_creates_none(cluster: FakeCluster) -> None:
    spec = ServiceSpec(name="web", port=8000, replicas=2, max_replicas=4, health_path="/ok")
    plan = _target(cluster).runtime.plan(spec, IMAGE)
    text = "\n".join(plan.actions)
    assert plan.changed and plan.current_digest is None
    assert "create deployment default/web: r1" in text and str(IMAGE) in text
    assert "readiness probe GET /ok on 8000" in text
    assert "service default/web (LoadBalancer, port 80 -> 8000)" in text
    assert "horizontalpodautoscaler default/web (2-4 replicas)" in text
    assert "secret default/web-pull" in text
    assert _objects(cluster) == []


def test_a_missing_namespace_is_a_config_error_and_nothing_is_created(
    cluster: FakeCluster,
) -> None:
    runtime = _target(cluster, namespace="nosuch").runtime
    with pytest.raises(ConfigError, match="create it: kubectl create namespace"):
        runtime.deploy(ServiceSpec(name="web", port=8000), IMAGE, None, timeout=5)
    assert _objects(cluster) == []


def test_max_replicas_below_replicas_is_refused_first(cluster: FakeCluster) -> None:
    runtime = _target(cluster).runtime
    with pytest.raises(ConfigError, match="max_replicas"):
        runtime.deploy(
            ServiceSpec(name="web", port=8000, replicas=3, max_replicas=2), IMAGE, None, timeout=5
        )
    assert _objects(cluster) == []


def test_a_remote_cluster_cannot_pull_from_loopback(tmp_path: object) -> None:
    import json
    from pathlib import Path

    config = Path(str(tmp_path)) / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.1.2.3:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    target = resolve("kubernetes", ConfigFile(), {"kubeconfig": config})
    with pytest.raises(ConfigError, match="cannot pull from the registry"):
        target.check_pull_path()


def test_a_missing_kubeconfig_is_a_config_error_before_anything_is_pushed(
    tmp_path: object,
) -> None:
    from pathlib import Path

    missing = Path(str(tmp_path)) / "no-such-kubeconfig"
    target = resolve("kubernetes", ConfigFile(), {"kubeconfig": missing})
    with pytest.raises(ConfigError, match="kubeconfig"):
        target.check_pull_path()
