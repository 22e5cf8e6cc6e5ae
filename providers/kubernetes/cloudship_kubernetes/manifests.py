"""The objects a ship applies, as plain API dicts (what ``kubectl get -o json`` shows).

Pure functions of the spec, the image and the revision number, so ``plan()`` shows exactly
what ``deploy()`` sends, and unit tests read them without a cluster. The shape follows the
API reference: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.runtime import ServiceSpec, memory_bytes

Obj = dict[str, Any]

# Recommended labels: https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/
NAME = "app.kubernetes.io/name"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "cloudship"
# cloudship's own keys (a domain prefix keeps them apart from the user's)
REVISION = "cloudship.dev/revision"
FINGERPRINT = "cloudship.dev/fingerprint"
DIGEST = "cloudship.dev/digest"
FAILED = "cloudship.dev/failed"
#: what the Deployment controller adds to each ReplicaSet's template labels
POD_TEMPLATE_HASH = "pod-template-hash"

# Readiness probe timings: a pod joins the Service after one answer, leaves after three misses.
# https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/
PROBE_PERIOD = 1
PROBE_FAILURES = 3
#: the CPU utilisation the autoscaler aims at, when max_replicas asks for one
HPA_CPU_PERCENT = 70
#: the CPU request a pod gets when the spec names none but an autoscaler needs one
#: (utilisation is measured against the request: no request, no scaling)
HPA_DEFAULT_CPU = "100m"


def selector(service: str) -> dict[str, str]:
    """The Deployment's selector and the Service's: immutable once created, so minimal."""
    return {NAME: service, MANAGED_BY: MANAGER}


def label_selector(service: str, **extra: str) -> str:
    return ",".join(f"{k}={v}" for k, v in {**selector(service), **extra}.items())


def cpu_quantity(cpu: float) -> str:
    return f"{round(cpu * 1000)}m"


def memory_quantity(text: str) -> str:
    """A Kubernetes quantity for ``text`` ("512MB" is not one; "512Mi" or bytes are)."""
    size = memory_bytes(text)
    return f"{size // 2**20}Mi" if size % 2**20 == 0 else str(size)


def pull_secret_name(service: str) -> str:
    return f"{service}-pull"


def env_secret_name(service: str) -> str:
    return f"{service}-env"


def _meta(service: str, name: str, namespace: str, **annotations: str) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": selector(service)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def pull_secret(service: str, namespace: str, auth: RegistryAuth) -> Obj:
    """A ``kubernetes.io/dockerconfigjson`` secret from the registry's in-memory credentials.
    https://kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets"""
    password = auth.password.get_secret_value()
    token = base64.b64encode(f"{auth.username}:{password}".encode()).decode()
    config = {
        "auths": {auth.server: {"username": auth.username, "password": password, "auth": token}}
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(service, pull_secret_name(service), namespace),
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def env_secret(spec: ServiceSpec, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(spec.name, env_secret_name(spec.name), namespace),
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.get_secret_value().encode()).decode()
            for key, value in sorted(spec.secrets.items())
        },
    }


def _resources(spec: ServiceSpec) -> Obj:
    amounts: dict[str, str] = {}
    if spec.cpu is not None:
        amounts["cpu"] = cpu_quantity(spec.cpu)
    if spec.memory is not None:
        amounts["memory"] = memory_quantity(spec.memory)
    requests = dict(amounts)
    if wants_autoscaler(spec) and "cpu" not in requests:
        requests["cpu"] = HPA_DEFAULT_CPU
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if amounts:
        resources["limits"] = amounts
    return resources


def pod_template(
    spec: ServiceSpec, image: ImageRef, number: int, fingerprint: str, *, pull: bool
) -> Obj:
    env: list[Obj] = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": env_secret_name(spec.name), "key": key}},
        }
        for key in sorted(spec.secrets)
    ]
    container: Obj = {
        "name": spec.name,
        "image": str(image),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": spec.health_path, "port": spec.port},
            "periodSeconds": PROBE_PERIOD,
            "failureThreshold": PROBE_FAILURES,
            "timeoutSeconds": 2,
        },
    }
    if env:
        container["env"] = env
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    pod_spec: Obj = {"containers": [container], "terminationGracePeriodSeconds": 10}
    if pull:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret_name(spec.name)}]
    if spec.platform:
        os_name, _, arch = spec.platform.partition("/")
        pod_spec["nodeSelector"] = {"kubernetes.io/os": os_name, "kubernetes.io/arch": arch}
    return {
        "metadata": {
            "labels": {**selector(spec.name), REVISION: str(number)},
            "annotations": {FINGERPRINT: fingerprint, DIGEST: image.digest or ""},
        },
        "spec": pod_spec,
    }


def deployment(
    spec: ServiceSpec,
    namespace: str,
    template: Obj,
    *,
    fingerprint: str,
    replicas: int,
    progress_deadline: int,
    keep_revisions: int,
) -> Obj:
    """A Deployment whose rolling update never drops below the wanted replicas
    (maxUnavailable 0): old pods serve until new ones are Ready.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment"""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec.name, spec.name, namespace, **{FINGERPRINT: fingerprint}),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(spec.name)},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "progressDeadlineSeconds": progress_deadline,
            "revisionHistoryLimit": keep_revisions,
        },
    }


def service(spec: ServiceSpec, namespace: str, port: int) -> Obj:
    """ClusterIP inside the cluster; LoadBalancer when public.
    https://kubernetes.io/docs/concepts/services-networking/service/#loadbalancer"""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec.name, spec.name, namespace),
        "spec": {
            "type": "LoadBalancer" if spec.public else "ClusterIP",
            "selector": selector(spec.name),
            "ports": [{"name": "http", "port": port, "targetPort": spec.port, "protocol": "TCP"}],
        },
    }


def ingress(
    spec: ServiceSpec, namespace: str, host: str, port: int, ingress_class: str | None
) -> Obj:
    """A networking/v1 Ingress sending every path of ``host`` to the Service.
    https://kubernetes.io/docs/concepts/services-networking/ingress/"""
    body: Obj = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": spec.name, "port": {"number": port}}},
                        }
                    ]
                },
            }
        ]
    }
    if ingress_class:
        body["ingressClassName"] = ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(spec.name, spec.name, namespace),
        "spec": body,
    }


def wants_autoscaler(spec: ServiceSpec) -> bool:
    return spec.max_replicas is not None and spec.max_replicas > max(spec.replicas, 1)


def autoscaler(spec: ServiceSpec, namespace: str) -> Obj:
    """An autoscaling/v2 HPA on CPU between replicas and max_replicas.
    https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"""
    assert spec.max_replicas is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(spec.name, spec.name, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": max(spec.replicas, 1),
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": HPA_CPU_PERCENT},
                    },
                }
            ],
        },
    }


def template_without_hash(template: Obj) -> Obj:
    """A ReplicaSet's pod template as the Deployment had it (the controller adds the hash)."""
    copy: Obj = json.loads(json.dumps(template))
    copy.get("metadata", {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    return copy
