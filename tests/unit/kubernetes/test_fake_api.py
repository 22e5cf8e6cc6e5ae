"""The fake API server is strict where the real one is: checked through lightkube (a client
nobody here wrote) over HTTPS, with the fake's own kubeconfig. No engine needed: no pod
runs (replicas 0)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cloudship_kubernetes.fake import FakeCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster() as fake:
        yield fake


@pytest.fixture
def client(cluster: FakeCluster) -> Any:
    from lightkube import Client, KubeConfig

    return Client(config=KubeConfig.from_file(cluster.kubeconfig), namespace="default")


def _deployment(name: str, **spec: Any) -> Any:
    from lightkube import codecs

    body = {
        "replicas": 0,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
        },
        **spec,
    }
    return codecs.from_dict(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}
    )


def _status_of(call: Any) -> Any:
    from lightkube.core.exceptions import ApiError

    with pytest.raises(ApiError) as raised:
        call()
    return raised.value.status


def _update(client: Any, name: str, change: Any) -> Any:
    """Read, change, replace; again on 409 (the fake's controllers write status meanwhile,
    as a real cluster's do)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.apps_v1 import Deployment

    for _ in range(20):
        live = client.get(Deployment, name)
        before = live.metadata.generation
        change(live)
        try:
            return before, client.replace(live)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
    raise AssertionError("kept conflicting")


def test_stale_resource_version_is_a_conflict(client: Any) -> None:
    created = client.create(_deployment("conflict"))
    _update(client, "conflict", lambda live: setattr(live.metadata, "labels", {"x": "1"}))
    stale = created
    stale.metadata.labels = {"x": "2"}
    status = _status_of(lambda: client.replace(stale))
    assert (status.code, status.reason) == (409, "Conflict")
    assert "the object has been modified" in status.message


def test_generation_grows_with_the_spec_only(client: Any) -> None:
    client.create(_deployment("gen"))
    before, after = _update(client, "gen", lambda d: setattr(d.metadata, "labels", {"a": "b"}))
    assert after.metadata.generation == before
    before, after = _update(client, "gen", lambda d: setattr(d.spec, "minReadySeconds", 1))
    assert after.metadata.generation == before + 1


def test_selector_must_match_the_template(client: Any) -> None:
    bad = _deployment("mismatch")
    bad.spec.selector.matchLabels = {"app": "other"}
    status = _status_of(lambda: client.create(bad))
    assert (status.code, status.reason) == (422, "Invalid")
    assert "`selector` does not match template `labels`" in status.message


def test_surge_and_unavailable_cannot_both_be_zero(client: Any) -> None:
    from lightkube.models.apps_v1 import DeploymentStrategy, RollingUpdateDeployment

    bad = _deployment("stuck")
    bad.spec.strategy = DeploymentStrategy(
        type="RollingUpdate", rollingUpdate=RollingUpdateDeployment(maxSurge=0, maxUnavailable=0)
    )
    assert _status_of(lambda: client.create(bad)).code == 422


def test_selector_is_immutable(client: Any) -> None:
    from lightkube.resources.apps_v1 import Deployment

    client.create(_deployment("fixed"))
    for _ in range(20):  # the controllers write status meanwhile: a stale version is a 409
        live = client.get(Deployment, "fixed")
        live.spec.selector.matchLabels = {"app": "fixed", "more": "x"}
        live.spec.template.metadata.labels = {"app": "fixed", "more": "x"}
        status = _status_of(lambda: client.replace(live))  # noqa: B023 - called at once
        if status.code != 409:
            break
    assert status.code == 422 and "field is immutable" in status.message


def test_duplicates_missing_objects_and_namespaces(client: Any) -> None:
    from lightkube.resources.apps_v1 import Deployment

    client.create(_deployment("twice"))
    assert _status_of(lambda: client.create(_deployment("twice"))).reason == "AlreadyExists"
    assert _status_of(lambda: client.get(Deployment, "nosuch")).code == 404
    missing = _status_of(lambda: client.create(_deployment("x"), namespace="nosuch"))
    assert missing.code == 404 and 'namespaces "nosuch" not found' in missing.message


def test_service_names_are_dns_1035_labels(client: Any) -> None:
    from lightkube import codecs

    service = codecs.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "1web"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    assert _status_of(lambda: client.create(service)).code == 422


def test_no_token_is_unauthorized(cluster: FakeCluster) -> None:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    answer = httpx.get(f"{cluster.url}/api/v1/namespaces", verify=trust)
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"


def _post_hpa(cluster: FakeCluster, spec: dict[str, Any]) -> Any:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    return httpx.post(
        # as kubectl --validate=strict asks
        f"{cluster.url}/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
        "?fieldValidation=Strict",
        json={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "hpa"},
            "spec": spec,
        },
        headers={"Authorization": f"Bearer {cluster.token}"},
        verify=trust,
    )


def test_autoscalers_are_checked_against_the_published_schema(cluster: FakeCluster) -> None:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    wrong_type = _post_hpa(cluster, {"scaleTargetRef": target, "maxReplicas": "5"})
    assert wrong_type.status_code == 400 and "spec.maxReplicas" in wrong_type.json()["message"]
    missing = _post_hpa(cluster, {"maxReplicas": 5})
    assert missing.status_code == 422 and "spec.scaleTargetRef" in missing.json()["message"]
    metric = {"type": "Resource", "resource": {"name": "cpu", "target": {"typ": "Utilization"}}}
    unknown = _post_hpa(cluster, {"scaleTargetRef": target, "maxReplicas": 5, "metrics": [metric]})
    assert unknown.status_code == 400
    assert 'unknown field "spec.metrics[0].resource.target.typ"' in unknown.json()["message"]
    good = dict(metric, resource={"name": "cpu", "target": {"type": "Utilization"}})
    created = _post_hpa(cluster, {"scaleTargetRef": target, "maxReplicas": 5, "metrics": [good]})
    assert created.status_code == 201, created.text


def test_deployments_are_checked_against_the_published_schema(cluster: FakeCluster) -> None:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)

    def post(spec: dict[str, Any]) -> Any:
        return httpx.post(
            f"{cluster.url}/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict",
            json={
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "s"},
                "spec": spec,
            },
            headers={"Authorization": f"Bearer {cluster.token}"},
            verify=trust,
        )

    template = {
        "metadata": {"labels": {"app": "s"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
    }
    base = {"replicas": 0, "selector": {"matchLabels": {"app": "s"}}, "template": template}
    wrong = post({**base, "replicas": "1"})  # a JSON type mismatch fails decoding: 400
    assert wrong.status_code == 400 and "cannot be handled as a Deployment" in wrong.text
    surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": [1], "maxUnavailable": 0}}
    assert post({**base, "strategy": surge}).status_code == 400
    typo = post({**base, "strategy": {"type": "RollingUpdate", "rollingUpdat": {}}})
    assert typo.status_code == 400 and "spec.strategy.rollingUpdat" in typo.json()["message"]
    assert post({"replicas": 0, "template": template}).status_code == 422  # selector required
    container = {"name": "c", "image": "busybox:latest", "imagePullPolcy": "Always"}
    typo = post({**base, "template": {**template, "spec": {"containers": [container]}}})
    assert typo.status_code == 400
    assert (
        'unknown field "spec.template.spec.containers[0].imagePullPolcy"' in typo.json()["message"]
    )
    port = {"name": "c", "image": "busybox:latest", "ports": [{"containerPort": "80"}]}
    wrong = post({**base, "template": {**template, "spec": {"containers": [port]}}})
    assert (
        wrong.status_code == 400 and "containerPort: Invalid value: expected integer" in wrong.text
    )
    env = {"name": "c", "image": "x", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {}}}]}
    keyless = post({**base, "template": {**template, "spec": {"containers": [env]}}})
    assert keyless.status_code == 422
    assert "env[0].valueFrom.secretKeyRef.key: Required value" in keyless.json()["message"]
    nameless = post({**base, "template": {**template, "spec": {"containers": [{"image": "x"}]}}})
    assert (
        nameless.status_code == 422
        and "containers[0].name: Required value" in nameless.json()["message"]
    )
    fine = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}}
    assert post({**base, "strategy": fine}).status_code == 201


def test_ingresses_are_checked_against_the_published_schema_and_rules(
    cluster: FakeCluster,
) -> None:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)

    def post(spec: dict[str, Any]) -> Any:
        return httpx.post(
            f"{cluster.url}/apis/networking.k8s.io/v1/namespaces/default/ingresses"
            "?fieldValidation=Strict",
            json={
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "web"},
                "spec": spec,
            },
            headers={"Authorization": f"Bearer {cluster.token}"},
            verify=trust,
        )

    def rule(host: str, path: dict[str, Any]) -> dict[str, Any]:
        return {"rules": [{"host": host, "http": {"paths": [path]}}]}

    backend = {"service": {"name": "web", "port": {"number": 80}}}
    good = {"path": "/", "pathType": "Prefix", "backend": backend}
    typo = post(rule("web.example.test", {**good, "pathTyp": "Prefix"}))
    assert typo.status_code == 400 and "spec.rules[0].http.paths[0].pathTyp" in typo.text
    wrong_type = post(rule("web.example.test", {**good, "backend": {"service": {"name": 1}}}))
    assert wrong_type.status_code == 400 and "cannot be handled as a Ingress" in wrong_type.text
    missing = post(rule("web.example.test", {"path": "/", "backend": backend}))
    assert missing.status_code == 422 and "pathType: Required value" in missing.text
    assert post(rule("10.0.0.1", good)).status_code == 422  # an IP is no host
    assert post(rule("web.example.test", {**good, "pathType": "Regex"})).status_code == 422
    assert post(rule("web.example.test", {**good, "path": "relative"})).status_code == 422
    no_port = {"service": {"name": "web", "port": {"number": 0}}}
    assert post(rule("web.example.test", {**good, "backend": no_port})).status_code == 422
    assert post({}).status_code == 422  # no rules and no default backend
    created = post(rule("*.example.test", good))
    assert created.status_code == 201, created.text


def _post_core(cluster: FakeCluster, resource: str, body: dict[str, Any]) -> Any:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    return httpx.post(
        f"{cluster.url}/api/v1/namespaces/default/{resource}?fieldValidation=Strict",
        json=body,
        headers={"Authorization": f"Bearer {cluster.token}"},
        verify=trust,
    )


def test_services_are_checked_against_the_published_schema_and_rules(
    cluster: FakeCluster,
) -> None:
    def post(name: str, spec: dict[str, Any], **top: Any) -> Any:
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}
        return _post_core(cluster, "services", {**body, **top})

    good = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}
    typo = post("typo", {**good, "selectr": {"app": "web"}})
    assert typo.status_code == 400, typo.text
    assert typo.json()["message"] == 'strict decoding error: unknown field "spec.selectr"'
    port = post("port", {**good, "ports": [{"port": "80"}]})  # a JSON string is no int32
    assert port.status_code == 400 and "cannot be handled as a Service" in port.text
    assert "spec.ports[0].port: Invalid value: expected integer" in port.text
    target = post("target", {**good, "ports": [{"port": 80, "targetPort": [8000]}]})
    assert target.status_code == 400 and "spec.ports[0].targetPort" in target.text
    assert post("top", good, statu={}).status_code == 400  # unknown at the top too
    selector = post("selector", {**good, "selector": {"app": 1}})
    assert selector.status_code == 400 and "spec.selector[app]" in selector.text
    portless = post("portless", {**good, "ports": [{"name": "http"}]})
    assert portless.status_code == 422 and "spec.ports[0].port: Required value" in portless.text
    assert post("range", {**good, "ports": [{"port": 70000}]}).status_code == 422
    assert post("kind", {**good, "type": "Sideways"}).status_code == 422
    assert post("empty", {"selector": {"app": "web"}}).status_code == 422  # no ports
    created = post("web", good)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["clusterIP"]  # defaulted after validation


def test_secrets_are_checked_against_the_published_schema_and_rules(cluster: FakeCluster) -> None:
    import base64
    import json

    def post(name: str, **fields: Any) -> Any:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}
        return _post_core(cluster, "secrets", body)

    typo = post("typo", dat={"k": "dg=="})
    assert typo.status_code == 400 and typo.json()["message"].endswith('unknown field "dat"')
    # data is format: byte, so what is not base64 does not decode (400, not 422)
    junk = post("junk", data={"k": "not base64!"})
    assert junk.status_code == 400 and "data[k]" in junk.text and "base64" in junk.text
    assert post("number", stringData={"k": 1}).status_code == 400
    docker = "kubernetes.io/dockerconfigjson"
    assert post("docker", type=docker, data={"k": "dg=="}).status_code == 422
    not_json = base64.b64encode(b"{not json").decode()
    assert post("docker", type=docker, data={".dockerconfigjson": not_json}).status_code == 422
    config = base64.b64encode(json.dumps({"auths": {}}).encode()).decode()
    created = post("docker", type=docker, data={".dockerconfigjson": config})
    assert created.status_code == 201, created.text


def test_unknown_fields_are_dropped_with_a_warning_unless_strict_is_asked(
    cluster: FakeCluster,
) -> None:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    url = f"{cluster.url}/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend, "pathTyp": "Exact"}

    def post(name: str, query: str = "") -> Any:
        return httpx.post(
            url + query,
            json={
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name},
                "spec": {"rules": [{"host": "a.example.test", "http": {"paths": [path]}}]},
            },
            headers={"Authorization": f"Bearer {cluster.token}"},
            verify=trust,
        )

    warned = post("warned")  # no fieldValidation: Warn, the API server's default
    assert warned.status_code == 201
    text = warned.headers["warning"]
    assert text == '299 - "unknown field \\"spec.rules[0].http.paths[0].pathTyp\\""'
    stored = warned.json()["spec"]["rules"][0]["http"]["paths"][0]
    assert "pathTyp" not in stored and stored["pathType"] == "Prefix"
    ignored = post("ignored", "?fieldValidation=Ignore")
    assert ignored.status_code == 201 and "warning" not in ignored.headers
    assert post("strict", "?fieldValidation=Strict").status_code == 400
    assert post("bad", "?fieldValidation=Loud").status_code == 400


def test_server_side_apply_owns_fields_and_conflicts_with_other_managers(
    cluster: FakeCluster,
) -> None:
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    base = f"{cluster.url}/apis/apps/v1/namespaces/default/deployments"
    auth = {"Authorization": f"Bearer {cluster.token}"}

    def deployment(replicas: int, **labels: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ssa", **({"labels": labels} if labels else {})},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "ssa"}},
                "template": {
                    "metadata": {"labels": {"app": "ssa"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
                },
            },
        }

    def apply(config: dict[str, Any], query: str) -> Any:
        return httpx.patch(
            f"{base}/ssa{query}",
            content=__import__("json").dumps(config),
            headers={**auth, "Content-Type": "application/apply-patch+yaml"},
            verify=trust,
        )

    created = httpx.post(
        f"{base}?fieldManager=cloudship", json=deployment(0), headers=auth, verify=trust
    )
    assert created.status_code == 201
    managers = {m["manager"]: m for m in created.json()["metadata"]["managedFields"]}
    assert managers["cloudship"]["operation"] == "Update"
    assert "f:replicas" in managers["cloudship"]["fieldsV1"]["f:spec"]

    assert apply(deployment(0), "").status_code == 422  # fieldManager is required
    conflict = apply(deployment(2, team="a"), "?fieldManager=ops")
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
    assert conflict.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "cloudship" using apps/v1: .spec.replicas'
    )
    same = apply(deployment(0, team="a"), "?fieldManager=ops")  # same value: shared, no conflict
    assert same.status_code == 200, same.text
    assert same.json()["metadata"]["labels"] == {"team": "a"}
    forced = apply(deployment(2, team="a"), "?fieldManager=ops&force=true")
    assert forced.status_code == 200 and forced.json()["spec"]["replicas"] == 2
    owners = {m["manager"]: m for m in forced.json()["metadata"]["managedFields"]}
    assert "f:replicas" in owners["ops"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners["cloudship"]["fieldsV1"].get("f:spec", {})
    dropped = apply(deployment(2), "?fieldManager=ops")  # the label left the configuration
    assert dropped.status_code == 200, dropped.text
    assert "team" not in (dropped.json()["metadata"].get("labels") or {})


def test_openapi_v3_is_discovered_by_group_version_and_names_each_kinds_operations(
    cluster: FakeCluster,
) -> None:
    """The shape https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3
    describes, and what kubectl's validation reads of it (query_param_verifier_v3.go): the
    PATCH operation of a group-version-kind, listing ``fieldValidation``."""
    import ssl

    import httpx

    trust = ssl.create_default_context(cafile=cluster.ca_path)
    headers = {"Authorization": f"Bearer {cluster.token}"}
    root = httpx.get(f"{cluster.url}/openapi/v3", headers=headers, verify=trust).json()
    assert {"api/v1", "apis/apps/v1", "apis/autoscaling/v2", "apis/networking.k8s.io/v1"} <= set(
        root["paths"]
    )
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    core = httpx.get(f"{cluster.url}{url}", headers=headers, verify=trust).json()
    patch = core["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Service",
        "version": "v1",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    schemas = core["components"]["schemas"]
    service = schemas["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Service", "version": "v1"}
    ]
    assert "io.k8s.api.core.v1.ServicePort" in schemas  # reached through ServiceSpec
    assert "io.k8s.api.apps.v1.DeploymentSpec" not in schemas  # another group version's
    apps = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    apps_schemas = httpx.get(f"{cluster.url}{apps}", headers=headers, verify=trust).json()[
        "components"
    ]["schemas"]
    assert {"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.PodSpec"} <= set(apps_schemas)
    missing = httpx.get(f"{cluster.url}/openapi/v3/apis/nope/v1", headers=headers, verify=trust)
    assert missing.status_code == 404
