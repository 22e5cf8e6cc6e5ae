"""A real client nobody here wrote checks the fake and what cloudship applied: kubectl
(Debian's kubernetes-client, installed by scripts/dev-env) gets, describes, waits on the
rollout of and reads the logs of a service shipped with ``ship(..., target="kubernetes")``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

import cloudship
from cloudship.engine import Engine
from cloudship.errors import HealthCheckFailed
from cloudship.registry import RegistryAuth
from cloudship.runtime import ServiceSpec
from cloudship.testing.contract import ReleaseFactory
from cloudship_kubernetes.testing import KubernetesTargetFactory
from tests.conftest import write_app

STARTS = '["sh", "-c", "echo serving-{answer}; exec busybox httpd -f -v -p 8000 -h /www"]'
EXITS = '["sh", "-c", "echo failing on purpose; exit 3"]'

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None and not os.environ.get("CI"),
    reason="kubectl is not installed (scripts/dev-env installs kubernetes-client)",
)


class Kubectl:
    def __init__(self, kubeconfig: str, home: Path) -> None:
        self.kubeconfig, self.home = kubeconfig, home

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                self.kubeconfig,
                "--cache-dir",
                str(self.home / "cache"),
                *args,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(self.home)},
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout + done.stderr


@pytest.fixture
def kubectl(k8s: KubernetesTargetFactory, tmp_path: Path) -> Kubectl:
    return Kubectl(k8s.cluster.kubeconfig, tmp_path / "home")


def _ship(
    k8s: KubernetesTargetFactory,
    folder: Path,
    name: str,
    answer: str,
    settings: dict[str, str],
    *,
    cmd: str | None = None,
) -> cloudship.Shipment:
    app = write_app(folder / answer, answer, cmd=cmd or STARTS.format(answer=answer))
    return cloudship.ship(
        app,
        target="kubernetes",
        name=name,
        port=8000,
        timeout=60,
        settings=k8s.settings(**settings),
    )


@pytest.fixture
def shipped(cloudship_engine: Engine) -> Iterator[list[str]]:
    """Service names shipped with ship(): their image tags are removed from the shared engine."""
    from docker.errors import APIError

    names: list[str] = []
    yield names
    for image in cloudship_engine.client.api.images():  # no inspect per image (races)
        for tag in image.get("RepoTags") or []:
            if any(f"/{name}:" in tag for name in names):
                with contextlib.suppress(APIError):
                    cloudship_engine.client.images.remove(tag)


def test_kubectl_reads_what_cloudship_shipped(
    k8s: KubernetesTargetFactory,
    kubectl: Kubectl,
    tmp_path: Path,
    k8s_settings: dict[str, str],
    shipped: list[str],
) -> None:
    name = k8s.name("kctl")
    shipped.append(name)
    first = _ship(k8s, tmp_path, name, "v1", k8s_settings)
    assert first.revision == "r1" and first.url is not None
    assert httpx.get(first.url, timeout=10).text.strip() == "v1"

    deployment = json.loads(kubectl("get", "deployment", name, "-o", "json"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == first.image and "@sha256:" in container["image"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["readinessProbe"]["httpGet"]["path"] == "/"
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": f"{name}-pull"}]

    table = kubectl("get", "pods", "-l", f"app.kubernetes.io/name={name}")
    assert "Running" in table and "1/1" in table, table
    assert name in kubectl("get", "deployments")
    service = kubectl("get", "service", name)
    assert "LoadBalancer" in service and first.url.removeprefix("http://") in service, service

    described = kubectl("describe", "deployment", name)
    assert "RollingUpdate" in described and "0 max unavailable" in described, described
    assert "NewReplicaSetAvailable" in described, described
    assert "ScalingReplicaSet" in described, described

    assert "successfully rolled out" in kubectl(
        "rollout", "status", f"deployment/{name}", "--timeout=30s"
    )
    assert "serving-v1" in kubectl("logs", f"deployment/{name}")

    second = _ship(k8s, tmp_path, name, "v2", k8s_settings)
    assert (second.revision, httpx.get(second.url or "", timeout=10).text.strip()) == ("r2", "v2")
    replicasets = json.loads(
        kubectl("get", "replicasets", "-l", f"app.kubernetes.io/name={name}", "-o", "json")
    )
    revisions = sorted(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in replicasets["items"]
    )
    assert revisions == ["1", "2"]

    with pytest.raises(HealthCheckFailed) as failed:
        _ship(k8s, tmp_path, name, "bad", k8s_settings, cmd=EXITS)
    assert failed.value.rolled_back_to == "r2"
    assert "CrashLoopBackOff" in str(failed.value)
    assert any("failing on purpose" in line for line in failed.value.log_tail)
    # the old pods kept serving, and kubectl agrees the rollout (back to r2) is complete
    assert httpx.get(second.url or "", timeout=10).text.strip() == "v2"
    assert "successfully rolled out" in kubectl(
        "rollout", "status", f"deployment/{name}", "--timeout=30s"
    )
    assert "serving-v2" in kubectl("logs", f"deployment/{name}")


def test_pull_errors_fail_fast_with_the_kubelet_events(
    k8s: KubernetesTargetFactory,
    kubectl: Kubectl,
    k8s_release: ReleaseFactory,
    k8s_settings: dict[str, str],
) -> None:
    """A pull secret with a wrong password: ErrImagePull at once, not at the deadline."""
    name = k8s.name("nopull")
    image = k8s_release("v1").image
    wrong = RegistryAuth(username="puller", password=SecretStr("wrong"), server=image.registry)
    runtime = k8s.target(**k8s_settings).runtime
    started = time.monotonic()
    with pytest.raises(HealthCheckFailed) as failed:
        runtime.deploy(ServiceSpec(name=name, port=8000), image, wrong, timeout=60)
    assert time.monotonic() - started < 30  # failed fast, well before the 60 s deadline
    text = str(failed.value)
    assert "ErrImagePull" in text or "ImagePullBackOff" in text, text
    assert failed.value.rolled_back_to is None
    events = kubectl("get", "events")
    assert "Failed" in events and "Pulling" in events, events
    runtime.destroy(name)


def test_a_pod_that_never_gets_ready_fails_at_the_progress_deadline(
    k8s: KubernetesTargetFactory,
    k8s_release: ReleaseFactory,
    k8s_settings: dict[str, str],
) -> None:
    """It runs, but its health path answers 404: the controller's ProgressDeadlineExceeded,
    not a crash, ends the rollout, and the serving revision is restored."""
    name = k8s.name("never")
    runtime = k8s.target(**k8s_settings).runtime
    good = k8s_release("v1")
    spec = ServiceSpec(name=name, port=8000)
    first = runtime.deploy(spec, good.image, good.pull, timeout=60)
    before = len(k8s.cluster.requests)
    again = runtime.deploy(spec, good.image, good.pull, timeout=60)
    assert (again.changed, again.revision) == (False, "r1")
    writes = [r for r in k8s.cluster.requests[before:] if r[0] in ("POST", "PUT", "PATCH")]
    assert writes == []  # an unchanged ship writes nothing, not even the same objects again
    assert good.pull is not None
    rotated = good.pull.model_copy(update={"password": SecretStr("rotated-token")})
    before = len(k8s.cluster.requests)
    assert not runtime.deploy(spec, good.image, rotated, timeout=60).changed
    writes = [r for r in k8s.cluster.requests[before:] if r[0] in ("POST", "PUT", "PATCH")]
    assert [(method, path.split("?")[0]) for method, path in writes] == [
        ("PATCH", f"/api/v1/namespaces/default/secrets/{name}-pull")
    ]  # new registry credentials reach the pull secret; the Deployment is not touched
    with pytest.raises(HealthCheckFailed) as failed:
        runtime.deploy(
            spec.model_copy(update={"health_path": "/missing"}), good.image, good.pull, timeout=8
        )
    assert "exceeded its progress deadline" in str(failed.value)
    assert "Readiness probe failed" in str(failed.value)
    assert failed.value.rolled_back_to == "r1"
    assert httpx.get(first.url or "", timeout=10).text.strip() == "v1"
    state = runtime.status(name)
    assert state is not None and state.current is not None and state.current.id == "r1"
    assert [r.state for r in state.revisions] == ["failed", "serving"]
    runtime.destroy(name)


def test_a_host_gets_an_ingress_and_services_lists_what_cloudship_shipped(
    k8s: KubernetesTargetFactory,
    kubectl: Kubectl,
    tmp_path: Path,
    k8s_settings: dict[str, str],
    shipped: list[str],
) -> None:
    name = k8s.name("ing")
    shipped.append(name)
    host = f"{name}.example.test"
    settings = {**k8s_settings, "host": host}
    runtime = k8s.target(**settings).runtime
    from cloudship.images import ImageRef

    planned = runtime.plan(ServiceSpec(name=name, port=8000), ImageRef.parse(f"x/{name}:v1"))
    assert any(a.startswith(f"apply ingress default/{name} (host {host}") for a in planned.actions)
    shipment = _ship(k8s, tmp_path, name, "v1", settings)
    assert shipment.url == f"http://{host}"
    ingress = k8s.cluster.store.get(k8s.cluster.store.kind("ingresses"), "default", name)
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert ingress["spec"]["rules"][0]["host"] == host
    assert path["backend"]["service"] == {"name": name, "port": {"number": 80}}
    listed = kubectl("get", "ingress", name)
    assert name in listed and host in listed, listed
    assert host in kubectl("describe", "ingress", name)
    # another field manager's label on the Service survives cloudship's next write of it
    # (server-side apply), here a changed service port on an otherwise unchanged ship
    label = tmp_path / "label.json"
    label.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": {"team": "payments"}},
            }
        )
    )
    kubectl("apply", "--server-side", "--field-manager=ops", "-f", str(label))
    moved = _ship(k8s, tmp_path, name, "v1", {**settings, "service_port": "8080"})
    assert not moved.changed
    service = k8s.cluster.store.get(k8s.cluster.store.kind("services"), "default", name)
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["metadata"]["labels"]["team"] == "payments"
    assert {m["manager"] for m in service["metadata"]["managedFields"]} >= {"cloudship", "ops"}
    # services(): the Deployments cloudship labelled, not one someone else made
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"{name}-other", "labels": {"app": "other"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "other"}},
                    "template": {
                        "metadata": {"labels": {"app": "other"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
                    },
                },
            }
        )
    )
    kubectl("create", "-f", str(other))  # validated: the fake serves /openapi/v3
    assert runtime.services() == [name]
    runtime.destroy(name)
    assert "NotFound" in kubectl("get", "ingress", name, check=False)
    assert runtime.services() == []


@pytest.mark.slow  # three pods start on the engine (~20 s)
def test_the_autoscaler_waits_for_metrics_then_scales_within_its_bounds(
    k8s: KubernetesTargetFactory,
    kubectl: Kubectl,
    tmp_path: Path,
    k8s_settings: dict[str, str],
    shipped: list[str],
) -> None:
    """No metrics-server: ScalingActive False (FailedGetResourceMetric) and no scaling; with
    a CPU utilisation reported, the HPA scales up to maxReplicas, never down within the
    stabilisation window, and a re-ship leaves the HPA's replica count alone."""
    name = k8s.name("hpa")
    shipped.append(name)
    autoscaler = k8s.cluster.autoscaler
    autoscaler.sync_period = 0.2
    app = write_app(tmp_path / "v1", "v1", cmd=STARTS.format(answer="v1"))
    options = {"name": name, "port": 8000, "max_replicas": 3, "timeout": 60}
    cloudship.ship(app, target="kubernetes", settings=k8s.settings(**k8s_settings), **options)
    store = k8s.cluster.store
    hpas, deployments = store.kind("horizontalpodautoscalers"), store.kind("deployments")

    def condition(kind: str) -> dict[str, str]:
        status = store.get(hpas, "default", name).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})

    def wait_for(check: object, seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        while not check() and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.1)
        assert check(), "timed out"  # type: ignore[operator]

    wait_for(lambda: condition("ScalingActive").get("reason") == "FailedGetResourceMetric")
    assert condition("ScalingActive")["status"] == "False"
    assert store.get(deployments, "default", name)["spec"]["replicas"] == 1
    assert "FailedGetResourceMetric" in kubectl("describe", "hpa", name)
    assert "<unknown>/70%" in kubectl("get", "hpa", name)

    autoscaler.set_cpu_utilization("default", name, 200.0)
    wait_for(lambda: store.get(deployments, "default", name)["spec"]["replicas"] == 3)
    # 1 -> ceil(1*200/70) = 3; then ceil(3*200/70) = 9 is more than maxReplicas
    wait_for(lambda: condition("ScalingLimited").get("reason") == "TooManyReplicas")
    wait_for(
        lambda: (
            (store.get(deployments, "default", name).get("status") or {}).get("readyReplicas") == 3
        ),
        60,
    )
    assert "cpu: 200%/70%" in kubectl("get", "hpa", name)
    assert "SuccessfulRescale" in kubectl("get", "events")

    autoscaler.set_cpu_utilization("default", name, 10.0)
    time.sleep(1.0)  # five syncs: the 300 s scale-down window keeps the highest recommendation
    assert store.get(deployments, "default", name)["spec"]["replicas"] == 3
    again = cloudship.ship(
        app, target="kubernetes", settings=k8s.settings(**k8s_settings), **options
    )
    assert not again.changed
    assert store.get(deployments, "default", name)["spec"]["replicas"] == 3
    k8s.target(**k8s_settings).runtime.destroy(name)


def test_kubectl_server_side_apply_meets_the_fields_cloudship_owns(
    k8s: KubernetesTargetFactory, kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl apply --server-side against a Deployment created with fieldManager=cloudship (as
    cloudship's lightkube client creates): a changed replicas is a conflict naming cloudship
    until --force-conflicts takes the field over."""
    import ssl

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ssa"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "ssa"}},
            "template": {
                "metadata": {"labels": {"app": "ssa"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
            },
        },
    }
    trust = ssl.create_default_context(cafile=k8s.cluster.ca_path)
    created = httpx.post(
        f"{k8s.cluster.url}/apis/apps/v1/namespaces/default/deployments?fieldManager=cloudship",
        json=deployment,
        headers={"Authorization": f"Bearer {k8s.cluster.token}"},
        verify=trust,
    )
    assert created.status_code == 201
    deployment["spec"]["replicas"] = 2  # type: ignore[index]
    manifest = tmp_path / "ssa.json"
    manifest.write_text(json.dumps(deployment))
    apply = ["apply", "--server-side", "-f", str(manifest)]
    refused = kubectl(*apply, check=False)
    assert 'conflict with "cloudship" using apps/v1: .spec.replicas' in refused, refused
    assert "serverside-applied" in kubectl(*apply, "--force-conflicts")
    owners = kubectl(
        "get",
        "deploy",
        "ssa",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.managedFields[*].manager}",
    )
    assert owners.split() == ["2", "cloudship", "kubectl"]


def test_kubectl_validates_through_openapi_v3_and_the_fake_refuses_as_strict(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl's default --validate=strict reads /openapi/v3, finds fieldValidation on the
    Service's PATCH operation and sends fieldValidation=Strict: the fake refuses an unknown
    field as the API server does, and takes the object once it is right."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "validated"},
        "spec": {"selector": {"app": "validated"}, "ports": [{"port": 80}], "selectr": {}},
    }
    manifest = tmp_path / "service.json"
    manifest.write_text(json.dumps(service))
    refused = kubectl("create", "-f", str(manifest), check=False)
    assert 'strict decoding error: unknown field "spec.selectr"' in refused, refused
    del service["spec"]["selectr"]  # type: ignore[attr-defined]
    manifest.write_text(json.dumps(service))
    assert "service/validated created" in kubectl("create", "-f", str(manifest))
