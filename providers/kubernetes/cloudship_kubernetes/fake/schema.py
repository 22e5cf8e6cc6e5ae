"""Structural validation against fragments of Kubernetes' published OpenAPI v3 schemas.

The fragments live in ``schemas/*.json``, each naming the spec file and commit of
kubernetes/kubernetes it was cut from (descriptions dropped). The walker checks what the API
server's structural decoding checks: JSON types (``integer``, ``string``, ``boolean``,
``array``, ``object``), ``format: byte`` strings that must be base64 (the decoder's "illegal
base64 data"), ``required`` properties, the values of maps (``additionalProperties``), and
unknown properties (refused as ``fieldValidation=Strict`` refuses them). A ``$ref`` to a
schema not in the fragments is not checked: only what cloudship writes was cut out. So far:
autoscaling/v2 (the HPA spec), apps/v1 (the Deployment spec), core/v1 (its pod template:
PodSpec, Container, ContainerPort, Probe, EnvVar, EnvVarSource, SecretKeySelector,
ResourceRequirements; quantities, probe actions, volumes and security contexts are not cut
out yet; and Service and Secret whole, but for the Service's status conditions and load
balancer status) and networking.k8s.io/v1 (the Ingress spec, whole).
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from pathlib import Path
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@cache
def schemas() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted((Path(__file__).parent / "schemas").glob("*.json")):
        found.update(json.loads(path.read_text())["schemas"])
    return found


def problems(name: str, value: Any, where: str = "") -> tuple[list[str], list[str]]:
    """(type and required problems, unknown fields) of ``value`` against schema ``name``."""
    schema = schemas().get(name)
    if schema is None:
        return [], []
    return _walk(schema, value, where)


def _walk(schema: dict[str, Any], value: Any, where: str) -> tuple[list[str], list[str]]:
    if "$ref" in schema:
        return problems(schema["$ref"].rsplit("/", 1)[-1], value, where)
    if len(schema.get("allOf", [])) == 1:  # how the v3 spec wraps a $ref that has a default
        return _walk(schema["allOf"][0], value, where)
    if schema.get("format") == "int-or-string":
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{where}: Invalid value: expected an integer or a string"], []
        return [], []
    bad: list[str] = []
    unknown: list[str] = []
    kind = schema.get("type")
    allowed = _TYPES.get(kind or "")
    if allowed and (
        not isinstance(value, allowed) or (kind == "integer" and isinstance(value, bool))
    ):
        return [f"{where or '<root>'}: Invalid value: expected {kind}"], []
    if schema.get("format") == "byte" and isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            return [f"{where}: Invalid value: expected base64: illegal base64 data"], []
    if isinstance(value, dict) and "properties" in schema:
        for key in schema.get("required", []):
            if key not in value:
                bad.append(f"{where}{'.' if where else ''}{key}: Required value")
        for key, item in value.items():
            at = f"{where}{'.' if where else ''}{key}"
            sub = schema["properties"].get(key)
            if sub is None:
                unknown.append(f'unknown field "{at}"')
                continue
            more, strange = _walk(sub, item, at)
            bad += more
            unknown += strange
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            more, strange = _walk(schema["additionalProperties"], item, f"{where}[{key}]")
            bad += more
            unknown += strange
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            more, strange = _walk(schema["items"], item, f"{where}[{index}]")
            bad += more
            unknown += strange
    return bad, unknown
