"""Every request body cloudship sends validates against the published REST spec of its
operation (transcribed in tests/data/azure-specs/, each file naming its source files and
commits): container apps and managed environments (Microsoft.App 2025-07-01), registries
(Microsoft.ContainerRegistry 2025-11-01), user-assigned identities (Microsoft.ManagedIdentity
2024-11-30) and role assignments (Microsoft.Authorization 2022-04-01). No property the spec
does not define, no read-only property, the right types and enums. The bodies are the ones a
create, an update, a failed update and a rollback really sent to the ARM fake through the
azure-mgmt clients."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import cloudship
from cloudship import ship
from cloudship.errors import HealthCheckFailed
from cloudship_azure.testing import AzureTargetFactory
from tests.conftest import write_app

SPECS = Path(__file__).parents[2] / "data" / "azure-specs"
SPEC = SPECS / "containerapp-request-2025-07-01.json"
_APP_PATH = re.compile(r"/providers/Microsoft\.App/containerApps/[^/]+$", re.I)
#: the other resource types cloudship writes: the path of one, and its spec
OTHER_BODIES = {
    "managed environment": (
        re.compile(r"/providers/Microsoft\.App/managedEnvironments/[^/]+$", re.I),
        SPECS / "managedenvironment-request-2025-07-01.json",
    ),
    "registry": (
        re.compile(r"/providers/Microsoft\.ContainerRegistry/registries/[^/]+$", re.I),
        SPECS / "registry-request-2025-11-01.json",
    ),
    "user-assigned identity": (
        re.compile(r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$", re.I),
        SPECS / "identity-request-2024-11-30.json",
    ),
    "role assignment": (
        re.compile(r"/providers/Microsoft\.Authorization/roleAssignments/[^/]+$", re.I),
        SPECS / "roleassignment-request-2022-04-01.json",
    ),
}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Swagger → a request validator: an object the spec describes accepts only the
    properties it names that are not read-only."""
    out = {k: v for k, v in schema.items() if k != "readOnly"}
    if "properties" in schema:
        out["properties"] = {
            name: _strict(prop)
            for name, prop in schema["properties"].items()
            if not prop.get("readOnly")
        }
        out.setdefault("additionalProperties", False)
    if isinstance(schema.get("items"), dict):
        out["items"] = _strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    return out


def validator(*, patch: bool = False, path: Path = SPEC) -> jsonschema.Draft7Validator:
    spec = json.loads(path.read_text())
    definitions = {name: _strict(d) for name, d in spec["definitions"].items()}
    root = copy.deepcopy(definitions[spec["root"]])
    if patch:
        root.pop("required", None)
    return jsonschema.Draft7Validator({**root, "definitions": definitions})


def _problems(body: Any, *, patch: bool = False, path: Path = SPEC) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))} ({'/'.join(map(str, e.schema_path))}): {e.message}"
        for e in validator(patch=patch, path=path).iter_errors(body)
    ]


def test_the_other_specs_catch_what_azure_would_not_accept() -> None:
    env = OTHER_BODIES["managed environment"][1]
    good_env = {
        "location": "eastus",
        "properties": {"workloadProfiles": [{"name": "Consumption", "workloadProfileType": "C"}]},
    }
    assert _problems(good_env, path=env) == []
    assert _problems({**good_env, "properties": {"workloadProfiles": [{"name": "x"}]}}, path=env)
    assert _problems({**good_env, "properties": {"defaultDomain": "x.io"}}, path=env)  # read-only
    registry = OTHER_BODIES["registry"][1]
    good_registry = {"location": "eastus", "sku": {"name": "Basic"}}
    assert _problems(good_registry, path=registry) == []
    assert _problems({"location": "eastus"}, path=registry)  # sku is required
    assert _problems({**good_registry, "sku": {"name": "Free"}}, path=registry)
    assert _problems({**good_registry, "properties": {"loginServer": "x"}}, path=registry)
    identity = OTHER_BODIES["user-assigned identity"][1]
    assert _problems({"location": "eastus"}, path=identity) == []
    assert _problems({"location": "e", "properties": {"principalId": "p"}}, path=identity)
    role = OTHER_BODIES["role assignment"][1]
    good_role = {"properties": {"roleDefinitionId": "r", "principalId": "p"}}
    assert _problems(good_role, path=role) == []
    assert _problems({"properties": {"roleDefinitionId": "r"}}, path=role)
    assert _problems({"properties": {**good_role["properties"], "scope": "/s"}}, path=role)
    assert _problems(
        {"properties": {**good_role["properties"], "principalType": "Robot"}}, path=role
    )


def test_the_validator_catches_what_azure_would_not_accept() -> None:
    good = {"location": "eastus", "properties": {"template": {"containers": [{"image": "x"}]}}}
    assert _problems(good) == []
    assert _problems({"properties": {}})  # location is required
    read_only = copy.deepcopy(good)
    read_only["properties"]["latestRevisionName"] = "web--x"
    assert any("latestRevisionName" in p for p in _problems(read_only))
    typo = copy.deepcopy(good)
    typo["properties"]["template"]["containers"][0]["imagee"] = "x"
    assert any("imagee" in p for p in _problems(typo))
    bad_enum = {"location": "e", "properties": {"configuration": {"activeRevisionsMode": "multi"}}}
    assert any("activeRevisionsMode" in p for p in _problems(bad_enum))
    storage = copy.deepcopy(good)
    storage["properties"]["template"]["containers"][0]["resources"] = {"ephemeralStorage": "2Gi"}
    assert _problems(storage)


def test_every_container_app_body_cloudship_sends_follows_the_spec(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "v1")
    ship(
        app, "azure", name=name, port=8000, env={"MODE": "x"}, secrets={"API_KEY": "k"}, **settings
    )
    write_app(app, "v2")
    ship(app, "azure", name=name, port=8000, replicas=0, secrets={"API_KEY": "k"}, **settings)
    write_app(app, "bad", cmd='["sh", "-c", "exit 3"]')
    with pytest.raises(HealthCheckFailed):
        ship(app, "azure", name=name, port=8000, timeout=60, secrets={"API_KEY": "k"}, **settings)
    cloudship.rollback(name, "azure", **settings)

    sent = [
        (method, body)
        for method, path, body in cloudship_azure_target.server.arm.bodies
        if _APP_PATH.search(path) and method in ("PUT", "PATCH")
    ]
    assert {m for m, _ in sent} == {"PUT", "PATCH"}  # the failed-revision mark is a PATCH
    assert len(sent) >= 6
    for method, body in sent:
        assert _problems(body, patch=method == "PATCH") == [], (method, body)

    writes = cloudship_azure_target.server.arm.bodies
    for kind, (pattern, spec) in OTHER_BODIES.items():
        bodies = [(m, b) for m, p, b in writes if pattern.search(p) and m in ("PUT", "PATCH")]
        assert bodies, f"no {kind} was written"
        for method, body in bodies:
            assert _problems(body, patch=method == "PATCH", path=spec) == [], (kind, body)
