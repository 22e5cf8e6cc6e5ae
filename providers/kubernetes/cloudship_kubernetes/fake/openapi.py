"""``/openapi/v3``: the discovery document and one OpenAPI v3 document per group version,
shaped as the API server serves them
(https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3).

The discovery document maps ``api/v1``, ``apis/apps/v1``, … to a ``serverRelativeURL`` that
carries the document's hash. Each document has ``paths`` — an operation per verb the fake
serves, each marked with ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind`` and
listing the query parameters the fake honours — and ``components.schemas``: the fragments in
``schemas/*.json`` the group version's kinds reach (``schema``), so a ``$ref`` to a schema not
cut out stays unresolved, as in the fragments.

What kubectl reads of it: before sending an object with ``--validate=strict`` (its default),
it looks for the PATCH operation of the object's group-version-kind and, when that operation
lists ``fieldValidation``, leaves the checking to the server (``?fieldValidation=Strict``)
instead of validating against the OpenAPI v2 document, which the fake does not serve
(k8s.io/cli-runtime pkg/resource/query_param_verifier_v3.go, supportsQueryParamV3).
PATCH lists only ``application/apply-patch+yaml``, the one patch the fake serves; so kubectl's
client-side ``apply`` of an object that exists finds no strategic-merge patch here.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from cloudship_kubernetes.fake.schema import schemas
from cloudship_kubernetes.fake.store import KINDS, Kind

_PACKAGES = {"": "core", "apps": "apps", "autoscaling": "autoscaling"}


def _path_of(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def schema_name(kind: Kind) -> str:
    """The kind's name in the published spec: ``io.k8s.api.apps.v1.Deployment``."""
    package = _PACKAGES.get(kind.group, kind.group.split(".")[0])
    return f"io.k8s.api.{package}.{kind.version}.{kind.kind}"


def _reached(name: str, found: dict[str, Any]) -> None:
    schema = schemas().get(name)
    if schema is None or name in found:
        return
    found[name] = schema
    for ref in _refs(schema):
        _reached(ref, found)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _parameter(name: str, kind: str = "string", where: str = "query") -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "in": where,
        "name": name,
        "schema": {"type": kind, "uniqueItems": True},
    }
    if where == "path":
        parameter["required"] = True
    return parameter


def _content(kind: Kind, media: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name(kind)}"}
    return {m: {"schema": ref} for m in media}


def _operation(kind: Kind, action: str, verb: str, scope: str) -> dict[str, Any]:
    gv = f"{kind.group.split('.')[0].title() if kind.group else 'Core'}{kind.version.title()}"
    ok = {"content": _content(kind), "description": "OK"}
    operation: dict[str, Any] = {
        "operationId": f"{verb}{gv}{scope}{kind.kind}",
        "responses": {"200": ok, "401": {"description": "Unauthorized"}},
        "tags": [_path_of(kind.group, kind.version).split("/", 1)[1].replace("/", "_")],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": kind.group,
            "kind": kind.kind,
            "version": kind.version,
        },
    }
    writes = action in ("post", "put", "patch")
    if writes:
        operation["parameters"] = [_parameter("fieldManager"), _parameter("fieldValidation")]
        operation["requestBody"] = {"content": _content(kind), "required": True}
    if action == "post":
        operation["responses"]["201"] = {"content": _content(kind), "description": "Created"}
    if action == "patch":
        operation["parameters"].append(_parameter("force", "boolean"))
        operation["requestBody"]["content"] = {
            "application/apply-patch+yaml": {"schema": {"type": "object"}}
        }
    return operation


def _paths(kind: Kind) -> dict[str, Any]:
    base = f"/{_path_of(kind.group, kind.version)}"
    scope = "Namespaced" if kind.namespaced else ""
    collection = (
        f"{base}/namespaces/{{namespace}}/{kind.plural}"
        if kind.namespaced
        else (f"{base}/{kind.plural}")
    )
    around = [_parameter("namespace", where="path")] if kind.namespaced else []
    return {
        collection: {
            "get": _operation(kind, "list", "list", scope),
            "post": _operation(kind, "post", "create", scope),
            "parameters": around,
        },
        f"{collection}/{{name}}": {
            "get": _operation(kind, "get", "read", scope),
            "put": _operation(kind, "put", "replace", scope),
            "patch": _operation(kind, "patch", "patch", scope),
            "delete": _operation(kind, "delete", "delete", scope),
            "parameters": [_parameter("name", where="path"), *around],
        },
    }


@cache
def documents() -> dict[str, bytes]:
    """Each group version's document (``api/v1``: its JSON bytes)."""
    served: dict[str, bytes] = {}
    for group, version in sorted({(k.group, k.version) for k in KINDS}):
        kinds = [k for k in KINDS if (k.group, k.version) == (group, version)]
        paths: dict[str, Any] = {}
        components: dict[str, Any] = {}
        for kind in kinds:
            paths.update(_paths(kind))
            _reached(schema_name(kind), components)
        document = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0-cloudship-fake"},
            "paths": paths,
            "components": {"schemas": dict(sorted(components.items()))},
        }
        served[_path_of(group, version)] = json.dumps(document, sort_keys=True).encode()
    return served


def digest(document: bytes) -> str:
    """The hash the discovery document names a document by (a SHA-512, in upper-case hex)."""
    return hashlib.sha512(document).hexdigest().upper()


def discovery() -> dict[str, Any]:
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest(body)}"}
            for path, body in documents().items()
        }
    }
