"""What a ship applies and how a rollout is judged: pure functions, no cluster."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.runtime import ServiceSpec
from cloudship_kubernetes import manifests as m
from cloudship_kubernetes.rollout import pod_failure, rollout_state

IMAGE = ImageRef.parse("registry.example/app@sha256:" + "a" * 64)


def _deployment(spec: ServiceSpec, number: int = 1) -> dict[str, object]:
    template = m.pod_template(spec, IMAGE, number, "fp", pull=True)
    return m.deployment(
        spec,
        "ns",
        template,
        fingerprint="fp",
        replicas=spec.replicas,
        progress_deadline=60,
        keep_revisions=10,
    )


def test_deployment_is_digest_pinned_and_never_drops_below_the_wanted_replicas() -> None:
    spec = ServiceSpec(name="web", port=8000, health_path="/healthz", cpu=0.5, memory="512MB")
    obj = _deployment(spec)
    body = obj["spec"]  # type: ignore[index]
    container = body["template"]["spec"]["containers"][0]
    assert container["image"] == str(IMAGE) and "@sha256:" in container["image"]
    assert body["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
    # "512MB" is no Kubernetes quantity; bytes are
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512000000"}
    assert body["selector"]["matchLabels"].items() <= body["template"]["metadata"]["labels"].items()
    assert body["template"]["metadata"]["labels"][m.REVISION] == "1"
    assert body["template"]["spec"]["imagePullSecrets"] == [{"name": "web-pull"}]


def test_each_revision_number_is_its_own_template() -> None:
    spec = ServiceSpec(name="web", port=8000)
    one = m.pod_template(spec, IMAGE, 1, "fp", pull=False)
    two = m.pod_template(spec, IMAGE, 2, "fp", pull=False)
    assert one != two and one["spec"] == two["spec"]


def test_pull_secret_holds_the_registry_login_as_dockerconfigjson() -> None:
    auth = RegistryAuth(username="u", password=SecretStr("p4ss"), server="reg.example:5000")
    secret = m.pull_secret("web", "ns", auth)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["reg.example:5000"]
    assert (entry["username"], entry["password"]) == ("u", "p4ss")
    assert base64.b64decode(entry["auth"]) == b"u:p4ss"


def test_secrets_reach_the_container_by_reference_only() -> None:
    spec = ServiceSpec(name="web", port=8000, secrets={"TOKEN": SecretStr("s3cret")})
    template = m.pod_template(spec, IMAGE, 1, "fp", pull=False)
    assert "s3cret" not in json.dumps(template)
    env = template["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-env", "key": "TOKEN"}}}
    ]


def test_service_is_a_load_balancer_only_when_public() -> None:
    assert m.service(ServiceSpec(name="web", port=8000), "ns", 80)["spec"]["type"] == "LoadBalancer"
    private = m.service(ServiceSpec(name="web", port=8000, public=False), "ns", 80)
    assert private["spec"]["type"] == "ClusterIP"
    assert private["spec"]["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": 8000,
        "protocol": "TCP",
    }


def test_autoscaler_only_for_a_range_and_with_a_cpu_request() -> None:
    assert not m.wants_autoscaler(ServiceSpec(name="web", port=8000))
    spec = ServiceSpec(name="web", port=8000, replicas=2, max_replicas=5)
    hpa = m.autoscaler(spec, "ns")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    template = m.pod_template(spec, IMAGE, 1, "fp", pull=False)
    assert template["spec"]["containers"][0]["resources"]["requests"]["cpu"] == m.HPA_DEFAULT_CPU


def _status(generation: int = 2, observed: int = 2, **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    ("status", "done", "failed", "says"),
    [
        (_status(observed=1), False, False, "spec update to be observed"),
        (_status(updatedReplicas=1, replicas=2), False, False, "1 out of 2 new replicas"),
        (_status(updatedReplicas=2, replicas=3), False, False, "1 old replicas are pending"),
        (_status(updatedReplicas=2, replicas=2, availableReplicas=1), False, False, "1 of 2"),
        (_status(updatedReplicas=2, replicas=2, availableReplicas=2), True, False, "rolled out"),
        (
            _status(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]),
            False,
            True,
            "exceeded its progress deadline",
        ),
    ],
)
def test_rollout_is_judged_as_kubectl_rollout_status(
    status: dict[str, object], done: bool, failed: bool, says: str
) -> None:
    state = rollout_state(status)
    assert (state.done, state.failed) == (done, failed) and says in state.message


def test_pods_that_cannot_start_fail_fast_and_others_do_not() -> None:
    def pod(state: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"name": "p"}, "status": {"containerStatuses": [{"state": state}]}}

    crash = pod({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}})
    assert "CrashLoopBackOff" in (pod_failure(crash) or "")
    assert "ErrImagePull" in (pod_failure(pod({"waiting": {"reason": "ErrImagePull"}})) or "")
    assert pod_failure(pod({"waiting": {"reason": "ContainerCreating"}})) is None
    assert pod_failure(pod({"running": {}})) is None
