"""What the fake API server refuses, as the real one does (422 Invalid, 400 strict decoding).

The rules are a subset of the API server's validation, each from its source or reference:

- names: DNS-1123 subdomains for most objects, DNS-1035 labels for Services
  (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/);
- Deployments: the structure of the published apps/v1 OpenAPI schema (``schema``), pod
  template included (the core/v1 PodSpec, Container, ContainerPort and Probe), and
  (pkg/apis/apps/validation/validation.go, ValidateDeploymentSpec) a selector
  that matches the template's labels, ``replicas >= 0``, maxSurge and maxUnavailable not both
  0, progressDeadlineSeconds above minReadySeconds, an immutable selector;
- pods (pkg/apis/core/validation/validation.go): at least one container, each with a DNS-label
  name and an image, probe periods >= 1, container ports 1-65535;
- Services: the published core/v1 schema (``schema``), then at least one port, ports
  1-65535, a known type, an immutable clusterIP;
- Secrets: the published core/v1 schema (``data`` values are base64, or the request does not
  decode: 400), then ``kubernetes.io/dockerconfigjson`` needs a ``.dockerconfigjson`` key
  holding JSON, and the type is immutable
  (https://kubernetes.io/docs/concepts/configuration/secret/#secret-types);
- HPAs (pkg/apis/autoscaling/validation): a scale target, ``1 <= minReplicas <= maxReplicas``,
  and the structure of the published autoscaling/v2 OpenAPI schema (``schema``);
- Ingresses (pkg/apis/networking/validation/validation.go, ValidateIngressSpec): the
  published networking/v1 schema (``schema``), rules or a default backend, hosts that are
  (wildcard) DNS-1123 subdomains and not IPs, a known ``pathType`` with an absolute path,
  a backend that is a service or a resource, its port by name or by a number 1-65535;
- unknown fields in the parts cloudship writes are refused as ``kubectl --validate=strict``
  and ``fieldValidation=Strict`` do, or — ``Warn``, the default, and ``Ignore`` — dropped
  before the object is stored, with a ``Warning`` header for each under ``Warn``
  (https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from cloudship_kubernetes.fake.schema import problems as schema_problems
from cloudship_kubernetes.fake.store import ApiError, Kind, Obj

#: how ``schema`` words a JSON type mismatch
UNDECODABLE = "Invalid value: expected"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Known fields of the objects' parts cloudship writes (API reference, v1.3x).
_KNOWN: dict[str, set[str]] = {
    "object": {
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
    },
    "metadata": {
        "name",
        "generateName",
        "namespace",
        "labels",
        "annotations",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    },
}


def _invalid(kind: Kind, name: str, problems: list[tuple[str, str]]) -> ApiError:
    title = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    text = ", ".join(f"{field}: {why}" for field, why in problems)
    return ApiError(
        422,
        "Invalid",
        f'{title} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": why, "field": field}
                for field, why in problems
            ],
        },
    )


def _unknown(obj: Any, known: str, where: str) -> list[str]:
    if not isinstance(obj, dict):
        return []
    return [f'unknown field "{where}{key}"' for key in obj if key not in _KNOWN[known]]


def _probe_problems(probe: Obj | None, where: str) -> list[tuple[str, str]]:
    if probe is None:
        return []
    problems = []
    for key in ("periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        value = probe.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(
                (f"{where}.{key}", f"Invalid value: {value}: must be greater than or equal to 1")
            )
    if not any(k in probe for k in ("httpGet", "tcpSocket", "exec", "grpc")):
        problems.append((where, "Required value: must specify a handler type"))
    return problems


def _pod_spec(spec: Obj, where: str) -> tuple[list[tuple[str, str]], list[str]]:
    problems: list[tuple[str, str]] = []
    unknown: list[str] = []  # the schema walk (``schema``) finds them
    containers = spec.get("containers") or []
    if not containers:
        problems.append((f"{where}.containers", "Required value"))
    for index, container in enumerate(containers):
        at = f"{where}.containers[{index}]"
        name = container.get("name") or ""
        if not _LABEL_1123.match(name) or len(name) > 63:
            problems.append((f"{at}.name", f"Invalid value: {name!r}: a lowercase RFC 1123 label"))
        if not container.get("image"):
            problems.append((f"{at}.image", "Required value"))
        if container.get("imagePullPolicy") not in (None, "Always", "IfNotPresent", "Never"):
            problems.append((f"{at}.imagePullPolicy", "Unsupported value"))
        for p, port in enumerate(container.get("ports") or []):
            value = port.get("containerPort")
            if not isinstance(value, int) or not 1 <= value <= 65535:
                problems.append(
                    (
                        f"{at}.ports[{p}].containerPort",
                        f"Invalid value: {value}: must be between 1 and 65535, inclusive",
                    )
                )
        for key in ("readinessProbe", "livenessProbe", "startupProbe"):
            problems += _probe_problems(container.get(key), f"{at}.{key}")
        for e, env in enumerate(container.get("env") or []):
            if not re.match(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", env.get("name") or ""):
                problems.append(
                    (f"{at}.env[{e}].name", "Invalid value: a valid environment variable name")
                )
    return problems, unknown


def _int_or_percent(value: Any) -> int:
    """The number in an IntOrString, as validation reads it (``"25%"`` → 25, unscaled)."""
    if isinstance(value, str) and value.endswith("%"):
        return int(value[:-1])
    return int(value or 0)


def _deployment(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    problems: list[tuple[str, str]] = []
    unknown: list[str] = []
    structural, unknown = schema_problems("io.k8s.api.apps.v1.DeploymentSpec", spec, "spec")
    problems += [(text.split(": ", 1)[0], text.split(": ", 1)[1]) for text in structural]
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown  # the API server stops at decoding
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector and "selector" in spec:
        problems.append(("spec.selector.matchLabels", "Required value"))
    elif any(labels.get(k) != v for k, v in selector.items()):
        problems.append(
            (
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            )
        )
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        problems.append(
            ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        )
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    if (
        rolling
        and _int_or_percent(rolling.get("maxSurge", "25%")) == 0
        and _int_or_percent(rolling.get("maxUnavailable", "25%")) == 0
    ):
        problems.append(
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                "Invalid value: 0: may not be 0 when `maxSurge` is 0",
            )
        )
    deadline, ready = spec.get("progressDeadlineSeconds", 600), spec.get("minReadySeconds", 0)
    if deadline <= ready:
        problems.append(
            (
                "spec.progressDeadlineSeconds",
                "Invalid value: must be greater than minReadySeconds",
            )
        )
    if old is not None and old["spec"].get("selector") != spec.get("selector"):
        problems.append(("spec.selector", "Invalid value: field is immutable"))
    pod_problems, pod_unknown = _pod_spec(template.get("spec") or {}, "spec.template.spec")
    problems += pod_problems
    unknown += pod_unknown
    return problems, unknown


def _pod(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    structural, unknown = schema_problems("io.k8s.api.core.v1.PodSpec", spec, "spec")
    problems = [(text.split(": ", 1)[0], text.split(": ", 1)[1]) for text in structural]
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown
    pod_problems, _ = _pod_spec(spec, "spec")
    return problems + pod_problems, unknown


def _structural(name: str, value: Any, where: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``value`` against the published schema ``name``: (type and required problems, unknown)."""
    structural, unknown = schema_problems(name, value, where)
    return [(text.split(": ", 1)[0], text.split(": ", 1)[1]) for text in structural], unknown


def _service(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    """core/v1 Service: the published schema (the whole object), then what it cannot say, from
    ValidateService and ValidateServiceUpdate (pkg/apis/core/validation/validation.go): a
    supported type, ports unless ExternalName, each 1-65535, an immutable clusterIP."""
    problems, unknown = _structural("io.k8s.api.core.v1.Service", obj, "")
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown  # the API server stops at decoding
    if spec.get("type", "ClusterIP") not in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
        "ExternalName",
    ):
        problems.append(("spec.type", f"Unsupported value: {spec.get('type')!r}"))
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName":
        problems.append(("spec.ports", "Required value"))
    for index, port in enumerate(ports):
        if "port" in port and not 1 <= port["port"] <= 65535:
            problems.append(
                (
                    f"spec.ports[{index}].port",
                    f"Invalid value: {port['port']}: must be between 1 and 65535, inclusive",
                )
            )
    if old is not None and spec.get("clusterIP") not in (
        None,
        "",
        old["spec"].get("clusterIP"),
    ):
        problems.append(("spec.clusterIP", "Invalid value: field is immutable"))
    return problems, unknown


def _secret(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    """core/v1 Secret: the published schema (string values, base64 ``data`` as the decoder
    reads ``format: byte``), then ValidateSecret and ValidateSecretUpdate
    (pkg/apis/core/validation/validation.go): a ``kubernetes.io/dockerconfigjson`` Secret holds
    a ``.dockerconfigjson`` key of JSON
    (https://kubernetes.io/docs/concepts/configuration/secret/#secret-types), and the type is
    immutable."""
    problems, unknown = _structural("io.k8s.api.core.v1.Secret", obj, "")
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown
    kind_of = obj.get("type", "Opaque")
    data = obj.get("data") or {}
    if kind_of == "kubernetes.io/dockerconfigjson":
        raw = data.get(".dockerconfigjson")
        if raw is None:
            problems.append(("data[.dockerconfigjson]", "Required value"))
        else:
            try:
                json.loads(base64.b64decode(raw))
            except ValueError:
                problems.append(
                    ("data[.dockerconfigjson]", "Invalid value: must be a valid JSON document")
                )
    if old is not None and old.get("type", "Opaque") != kind_of:
        problems.append(("type", "Invalid value: field is immutable"))
    return problems, unknown


def _autoscaler(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    problems: list[tuple[str, str]] = []
    structural, unknown = schema_problems(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", spec, "spec"
    )
    problems += [(text.split(": ", 1)[0], text.split(": ", 1)[1]) for text in structural]
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown
    target = spec.get("scaleTargetRef") or {}
    if not target.get("kind") or not target.get("name"):
        problems.append(("spec.scaleTargetRef", "Required value"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(high, int) or high < 1:
        problems.append(("spec.maxReplicas", "Invalid value: must be greater than or equal to 1"))
    elif low < 1 or low > high:
        problems.append(("spec.minReplicas", "Invalid value: must be between 1 and maxReplicas"))
    return problems, unknown


_PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
# a host may start with one wildcard label (pkg/apis/networking/validation/validation.go,
# validateIngressRules: IsWildcardDNS1123Subdomain or IsDNS1123Subdomain, and no IP address)
_WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _backend_problems(backend: Obj, where: str) -> list[tuple[str, str]]:
    """validateIngressBackend: a service or a resource, not both; a service port by name or
    number, not both, numbers 1-65535."""
    service, resource = backend.get("service"), backend.get("resource")
    if service and resource:
        return [(where, "Invalid value: cannot set both resource and service backends")]
    if not service and not resource:
        return [(where, "Invalid value: resource or service backend is required")]
    if not service:
        return []
    port = service.get("port") or {}
    if "name" in port and "number" in port:
        return [(f"{where}.service.port", "Invalid value: cannot set both port name & number")]
    number = port.get("number")
    if "name" not in port and (not isinstance(number, int) or not 1 <= number <= 65535):
        return [
            (
                f"{where}.service.port.number",
                f"Invalid value: {number}: must be between 1 and 65535, inclusive",
            )
        ]
    return []


def _ingress(obj: Obj, spec: Obj, old: Obj | None) -> tuple[list[tuple[str, str]], list[str]]:
    """networking/v1 Ingress: the published schema, then ValidateIngressSpec's rules."""
    structural, unknown = schema_problems("io.k8s.api.networking.v1.IngressSpec", spec, "spec")
    problems = [(text.split(": ", 1)[0], text.split(": ", 1)[1]) for text in structural]
    if any(why.startswith(UNDECODABLE) for _, why in problems):
        return problems, unknown
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        problems.append(
            ("spec.rules", "Required value: either `defaultBackend` or `rules` must be specified")
        )
    for index, rule in enumerate(rules):
        at = f"spec.rules[{index}]"
        host = rule.get("host")
        if host and not (
            (_SUBDOMAIN.match(host) and not re.match(r"^[0-9.]+$", host)) or _WILDCARD.match(host)
        ):
            problems.append(
                (f"{at}.host", f"Invalid value: {host!r}: a lowercase RFC 1123 subdomain")
            )
        for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
            here = f"{at}.http.paths[{p}]"
            if path.get("pathType") not in _PATH_TYPES:
                problems.append(
                    (f"{here}.pathType", f"Unsupported value: {path.get('pathType')!r}")
                )
            elif path.get("pathType") != "ImplementationSpecific" and not str(
                path.get("path", "")
            ).startswith("/"):
                problems.append((f"{here}.path", "Invalid value: must be an absolute path"))
            problems += _backend_problems(path.get("backend") or {}, f"{here}.backend")
    if spec.get("defaultBackend"):
        problems += _backend_problems(spec["defaultBackend"], "spec.defaultBackend")
    return problems, unknown


#: kinds whose whole object is walked against the published schema
_WHOLE = ("Service", "Secret")
_CHECKS = {
    "Deployment": _deployment,
    "Pod": _pod,
    "Service": _service,
    "Secret": _secret,
    "HorizontalPodAutoscaler": _autoscaler,
    "Ingress": _ingress,
}


def validate(kind: Kind, obj: Obj, old: Obj | None) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    unknown = _unknown(meta, "metadata", "metadata.")
    if kind.kind in _CHECKS and kind.kind not in _WHOLE:
        unknown += _unknown(obj, "object", "")  # the parts cloudship writes; others differ
    problems: list[tuple[str, str]] = []
    name_rule = _LABEL_1035 if kind.kind == "Service" else _SUBDOMAIN
    if not name_rule.match(name) or len(name) > (63 if kind.kind == "Service" else 253):
        problems.append(("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 name"))
    spec = obj.get("spec") or {}
    check = _CHECKS.get(kind.kind)
    if check is not None:
        more, strange = check(obj, spec, old)
        problems += more
        unknown += strange
    undecodable = [f"{field}: {why}" for field, why in problems if why.startswith(UNDECODABLE)]
    if undecodable:  # a wrong JSON type fails decoding, before validation: 400, not 422
        raise ApiError(
            400,
            "BadRequest",
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
            + "; ".join(undecodable),
        )
    if unknown:
        directive = getattr(_request, "field_validation", "Warn")
        if directive == "Strict":
            raise ApiError(400, "BadRequest", f"strict decoding error: {', '.join(unknown)}")
        for text in unknown:  # Warn and Ignore drop them, as the decoder does
            _drop(obj, text.split('"')[1])
        if directive != "Ignore":
            warnings = getattr(_request, "warnings", None)
            if warnings is not None:
                warnings.extend(unknown)
    if problems:
        raise _invalid(kind, name, problems)


#: the directive of the request being served (``fieldValidation``) and its warnings
_request = threading.local()
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@contextlib.contextmanager
def field_validation(directive: str | None) -> Iterator[list[str]]:
    """While serving one request: how unknown fields are treated, as the ``fieldValidation``
    query parameter says — ``Strict`` refuses them (400), ``Warn`` (the default when the
    client names none) drops each with a ``Warning`` header, ``Ignore`` drops them silently
    (https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation).
    Yields the list the warnings go to."""
    chosen = directive or "Warn"
    if chosen not in FIELD_VALIDATION:
        raise ApiError(
            400,
            "BadRequest",
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{chosen}"',
        )
    _request.field_validation, _request.warnings = chosen, []
    try:
        yield _request.warnings
    finally:
        del _request.field_validation, _request.warnings


def _drop(obj: Any, path: str) -> None:
    """Remove the field at ``path`` (``spec.template.spec.containers[0].foo``) from ``obj``."""
    steps = re.findall(r"\[(\d+)\]|([^.\[\]]+)", path)
    node = obj
    for index, (position, key) in enumerate(steps):
        last = index == len(steps) - 1
        if position:
            if not isinstance(node, list) or int(position) >= len(node):
                return
            node = node[int(position)]
        elif last:
            if isinstance(node, dict):
                node.pop(key, None)
            return
        else:
            if not isinstance(node, dict) or key not in node:
                return
            node = node[key]
