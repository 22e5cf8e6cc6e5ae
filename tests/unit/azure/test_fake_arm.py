"""The ARM fake, driven by the real azure-mgmt clients over HTTPS (and by raw HTTP where a
client would refuse to send what we want to see rejected). No Docker engine needed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.appcontainers.models import ContainerApp
from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from cloudship_azure.fake import ACR_PULL, FakeArmServer
from cloudship_azure.testing import StaticTokenCredential

TOKEN = "unit-test-token"
# any digest-pinned reference on the fake's registry: the fake checks who may pull, not what
PRIVATE_IMAGE = "pullfrom.azurecr.io/app@sha256:" + hashlib.sha256(b"some image").hexdigest()
RG = "rg1"


@pytest.fixture
def server() -> Iterator[FakeArmServer]:
    with FakeArmServer(tokens={TOKEN}, polls=2, poll_ms=1) as running:
        yield running


def _options(server: FakeArmServer) -> dict[str, Any]:
    return {"base_url": server.url, "connection_verify": server.ca_path, "polling_interval": 0}


@pytest.fixture
def sub(server: FakeArmServer) -> str:
    return next(iter(server.arm.subscriptions))


@pytest.fixture
def raw(server: FakeArmServer, sub: str) -> httpx.Client:
    client = httpx.Client(
        base_url=f"{server.url}/subscriptions/{sub}/resourceGroups/{RG}/providers",
        headers={"Authorization": f"Bearer {TOKEN}"},
        verify=__import__("ssl").create_default_context(cafile=server.ca_path),
    )
    client.put(
        f"{server.url}/subscriptions/{sub}/resourcegroups/{RG}",
        params={"api-version": "2025-04-01"},
        json={"location": "eastus"},
    ).raise_for_status()
    return client


def _acr(server: FakeArmServer, sub: str, token: str = TOKEN) -> ContainerRegistryManagementClient:
    return ContainerRegistryManagementClient(StaticTokenCredential(token), sub, **_options(server))


def _apps(server: FakeArmServer, sub: str) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(StaticTokenCredential(TOKEN), sub, **_options(server))


def test_registry_put_is_a_polled_operation(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    first = raw.put(
        "Microsoft.ContainerRegistry/registries/MyRegistry",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
    )
    assert first.status_code == 201
    assert first.json()["properties"]["provisioningState"] == "Creating"
    status_url = first.headers["Azure-AsyncOperation"]
    polls = [raw.get(status_url).json()["status"] for _ in range(3)]
    assert polls == ["InProgress", "InProgress", "Succeeded"]  # polls=2

    registry = _acr(server, sub).registries.get(RG, "MyRegistry")
    assert registry.properties is not None
    assert registry.properties.login_server == "myregistry.azurecr.io"
    assert registry.properties.provisioning_state == "Succeeded"
    assert registry.properties.admin_user_enabled is False


def test_sdk_poller_drives_create_to_succeeded(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    poller = _acr(server, sub).registries.begin_create(
        RG, "pollme1", {"location": "westus", "sku": {"name": "Basic"}}
    )
    registry = poller.result(timeout=10)
    assert registry.sku is not None and registry.sku.tier == "Basic"
    statuses = [p for m, p, s in server.arm.log if "operationStatuses" in p]
    assert len(statuses) >= 2  # InProgress was seen before Succeeded


def test_not_found_has_the_arm_error_shape(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    missing = raw.get(
        "Microsoft.ContainerRegistry/registries/nothere1", params={"api-version": "2025-11-01"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    assert "nothere1" in missing.json()["error"]["message"]
    with pytest.raises(ResourceNotFoundError):
        _acr(server, sub).registries.get(RG, "nothere1")
    no_group = raw.get(
        f"{server.url}/subscriptions/{sub}/resourcegroups/nogroup",
        params={"api-version": "2025-04-01"},
    )
    assert no_group.json()["error"]["code"] == "ResourceGroupNotFound"


def test_api_version_token_and_subscription_are_checked(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    path = "Microsoft.ContainerRegistry/registries/abcde"
    assert raw.get(path).json()["error"]["code"] == "MissingApiVersionParameter"
    wrong = raw.get(path, params={"api-version": "1999-01-01"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")
    with pytest.raises(HttpResponseError) as denied:
        _acr(server, sub, token="someone-else").registries.get(RG, "abcde")
    assert denied.value.status_code == 401
    with pytest.raises(HttpResponseError) as unknown:
        _acr(server, "11111111-2222-3333-4444-555555555555").registries.get(RG, "abcde")
    assert unknown.value.error is not None and unknown.value.error.code == "SubscriptionNotFound"


def test_registry_validation(raw: httpx.Client) -> None:
    bad_name = raw.put(
        "Microsoft.ContainerRegistry/registries/my-registry",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
    )
    assert bad_name.status_code == 400
    no_sku = raw.put(
        "Microsoft.ContainerRegistry/registries/goodname",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus"},
    )
    assert no_sku.status_code == 400 and "sku.name" in no_sku.json()["error"]["message"]


# -- container apps --------------------------------------------------------------------


def _environment(raw: httpx.Client) -> str:
    put = raw.put(
        "Microsoft.App/managedEnvironments/env1",
        params={"api-version": "2025-07-01"},
        json={"location": "eastus", "properties": {}},
    )
    assert put.status_code == 201
    assert put.json()["properties"]["provisioningState"] == "InitializationInProgress"
    assert _finish(raw, put.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    return str(put.json()["id"])


def _app_body(
    env_id: str, image: str = "docker.io/library/nginx:1", **config: Any
) -> dict[str, Any]:
    return {
        "location": "eastus",
        "properties": {
            "environmentId": env_id,
            "configuration": {
                "activeRevisionsMode": "Multiple",
                "ingress": {"external": True, "targetPort": 80},
                **config,
            },
            "template": {
                "containers": [
                    {"name": "app", "image": image, "resources": {"cpu": 0.25, "memory": "0.5Gi"}}
                ]
            },
        },
    }


def test_container_app_create_update_and_revisions(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    env_id = _environment(raw)
    apps = _apps(server, sub)
    created = apps.container_apps.begin_create_or_update(
        RG, "web", ContainerApp.from_dict(_app_body(env_id))
    ).result()
    # GET names the environment by the deprecated field only (ContainerApps_Get.json)
    assert created.managed_environment_id == env_id and created.environment_id is None
    assert created.running_status == "Running"
    assert created.configuration is not None and created.configuration.ingress is not None
    assert created.configuration.ingress.fqdn is not None
    assert created.configuration.ingress.fqdn.startswith("web.env1-")
    first = str(created.latest_revision_name)
    assert first.startswith("web--")
    assert created.latest_revision_fqdn is not None
    assert created.latest_revision_fqdn.startswith(first + ".")

    # same template → no new revision
    same = apps.container_apps.begin_create_or_update(
        RG, "web", ContainerApp.from_dict(_app_body(env_id))
    ).result()
    assert same.latest_revision_name == first
    # a new image → a new revision, which takes the traffic by default (latestRevision)
    changed = apps.container_apps.begin_create_or_update(
        RG, "web", ContainerApp.from_dict(_app_body(env_id, "docker.io/library/nginx:2"))
    ).result()
    second = str(changed.latest_revision_name)
    assert second != first
    revisions = {r.name: r for r in apps.container_apps_revisions.list_revisions(RG, "web")}
    assert set(revisions) == {first, second}
    assert revisions[second].traffic_weight == 100 and revisions[first].traffic_weight == 0
    assert revisions[second].provisioning_state == "Provisioned"


def test_container_app_body_is_checked(server: FakeArmServer, raw: httpx.Client) -> None:
    env_id = _environment(raw)
    path = "Microsoft.App/containerApps/strict"
    params = {"api-version": "2025-07-01"}

    no_mode = _app_body(env_id)
    del no_mode["properties"]["configuration"]["activeRevisionsMode"]
    answer = raw.put(path, params=params, json=no_mode)
    assert answer.status_code == 400 and "activeRevisionsMode" in answer.text

    odd_size = _app_body(env_id)
    odd_size["properties"]["template"]["containers"][0]["resources"] = {
        "cpu": 0.5,
        "memory": "3Gi",
    }
    answer = raw.put(path, params=params, json=odd_size)
    assert answer.status_code == 400 and "CPU - Memory combinations" in answer.text

    dangling = _app_body(env_id)
    dangling["properties"]["template"]["containers"][0]["env"] = [
        {"name": "X", "secretRef": "nope"}
    ]
    assert raw.put(path, params=params, json=dangling).status_code == 400

    traffic = _app_body(env_id)
    traffic["properties"]["configuration"]["ingress"]["traffic"] = [
        {"latestRevision": True, "weight": 50}
    ]
    assert raw.put(path, params=params, json=traffic).status_code == 400

    no_env = _app_body(env_id.replace("env1", "missing"))
    assert raw.put(path, params=params, json=no_env).status_code == 404
    assert server.arm.ids("Microsoft.App/containerApps") == []


def test_secrets_are_write_only(server: FakeArmServer, sub: str, raw: httpx.Client) -> None:
    env_id = _environment(raw)
    body = _app_body(env_id, secrets=[{"name": "api-key", "value": "hidden-value"}])
    body["properties"]["template"]["containers"][0]["env"] = [
        {"name": "API_KEY", "secretRef": "api-key"}
    ]
    apps = _apps(server, sub)
    app = apps.container_apps.begin_create_or_update(
        RG, "sec", ContainerApp.from_dict(body)
    ).result()
    assert "hidden-value" not in str(app.serialize(keep_readonly=True))
    listed = apps.container_apps.list_secrets(RG, "sec")
    assert [(s.name, s.value) for s in listed.value or []] == [("api-key", "hidden-value")]


def _registry_and_identity(raw: httpx.Client, server: FakeArmServer) -> tuple[str, str, str]:
    registry = raw.put(
        "Microsoft.ContainerRegistry/registries/pullfrom",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
    ).json()
    identity = raw.put(
        "Microsoft.ManagedIdentity/userAssignedIdentities/puller",
        params={"api-version": "2024-11-30"},
        json={"location": "eastus"},
    ).json()
    return registry["id"], identity["id"], identity["properties"]["principalId"]


def _revision_state(raw: httpx.Client, app: str) -> dict[str, Any]:
    listed = raw.get(
        f"Microsoft.App/containerApps/{app}/revisions", params={"api-version": "2025-07-01"}
    ).json()
    return dict(listed["value"][0]["properties"])


def test_system_assigned_identity_cannot_pull_on_first_deploy(
    server: FakeArmServer, raw: httpx.Client
) -> None:
    env_id = _environment(raw)
    _registry_and_identity(raw, server)
    body = _app_body(
        env_id,
        PRIVATE_IMAGE,
        registries=[{"server": "pullfrom.azurecr.io", "identity": "system"}],
    )
    body["identity"] = {"type": "SystemAssigned"}
    put = raw.put(
        "Microsoft.App/containerApps/sysid", params={"api-version": "2025-07-01"}, json=body
    )
    assert put.status_code == 201
    state = _revision_state(raw, "sysid")
    assert state["provisioningState"] == "Failed"
    assert (
        "unable to pull image using Managed identity system for registry"
        in (state["provisioningError"])
    )
    # the PUT's operation fails with Azure's code and wording (azure-container-apps#1061)
    status = _finish(raw, put.headers["Azure-AsyncOperation"])
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "ContainerAppOperationError"
    assert status["error"]["message"].startswith(
        "Failed to provision revision for container app 'sysid'. Error details: "
    )
    app = raw.get("Microsoft.App/containerApps/sysid", params={"api-version": "2025-07-01"})
    assert app.json()["properties"]["provisioningState"] == "Failed"


def _finish(raw: httpx.Client, status_url: str) -> dict[str, Any]:
    """Poll an operation until it is terminal (as a client would: a few times a second)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status: dict[str, Any] = raw.get(status_url).json()
        if status["status"] != "InProgress":
            return status
        time.sleep(0.02)
    raise AssertionError("the operation never ended")


def _grant_pull(
    server: FakeArmServer, sub: str, raw: httpx.Client, registry_id: str, principal: str
) -> None:
    raw.put(
        f"{server.url}{registry_id}/providers/Microsoft.Authorization/roleAssignments/"
        "3f0c9c8e-1111-4222-8333-444455556666",
        params={"api-version": "2022-04-01"},
        json={
            "properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{ACR_PULL}",
                "principalId": principal,
            }
        },
    ).raise_for_status()


def test_a_fresh_acr_pull_grant_is_not_in_effect_until_it_propagates(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    """Granted, then deployed at once: the pull is refused as Azure refuses it; a restart of
    the revision after the propagation delay pulls again and succeeds."""
    server.arm.role_propagation = 0.3
    env_id = _environment(raw)
    registry_id, identity_id, principal = _registry_and_identity(raw, server)
    _grant_pull(server, sub, raw, registry_id, principal)
    body = _app_body(
        env_id,
        PRIVATE_IMAGE,
        registries=[{"server": "pullfrom.azurecr.io", "identity": identity_id}],
    )
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}}
    params = {"api-version": "2025-07-01"}
    put = raw.put("Microsoft.App/containerApps/early", params=params, json=body)
    assert _finish(raw, put.headers["Azure-AsyncOperation"])["status"] == "Failed"
    state = _revision_state(raw, "early")
    assert (
        f"unable to pull image using Managed identity {identity_id}" in state["provisioningError"]
    )
    name = put.json()["properties"]["latestRevisionName"]
    activate = raw.post(
        f"Microsoft.App/containerApps/early/revisions/{name}/activate", params=params
    )
    assert activate.json()["error"]["code"] == "ContainerAppRevisionProvisioningFailed"

    import time

    time.sleep(0.35)
    restart = raw.post(f"Microsoft.App/containerApps/early/revisions/{name}/restart", params=params)
    assert restart.status_code == 200
    assert _revision_state(raw, "early")["provisioningState"] == "Provisioned"


def test_a_revision_that_never_provisions_expires_its_operation(
    server: FakeArmServer, raw: httpx.Client
) -> None:
    env_id = _environment(raw)
    server.arm.operation_timeout = 0.0

    class Slow:
        """A runner whose revisions stay Provisioning (an image that takes forever)."""

        def start(self, *args: object, **kwargs: object) -> None: ...
        def state(self, revision: str) -> tuple[str, str]:
            return "Provisioning", ""

        def stop(self, revision: str) -> None: ...
        def logs(self, revision: str, tail: int) -> list[str]:
            return []

        def route(self, fqdn: str, revision: str | None) -> None: ...
        def close(self) -> None: ...

    server.arm.apps.runner = Slow()
    put = raw.put(
        "Microsoft.App/containerApps/slow",
        params={"api-version": "2025-07-01"},
        json=_app_body(env_id),
    )
    status = _finish(raw, put.headers["Azure-AsyncOperation"])
    assert status["error"] == {
        "code": "ContainerAppOperationError",
        "message": "Failed to provision revision for container app 'slow'. "
        "Error details: Operation expired.",
    }


def test_user_assigned_identity_with_acr_pull_can_pull(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    env_id = _environment(raw)
    registry_id, identity_id, principal = _registry_and_identity(raw, server)
    server.arm.role_propagation = 0.0  # the grant was made long ago
    _grant_pull(server, sub, raw, registry_id, principal)
    body = _app_body(
        env_id,
        PRIVATE_IMAGE,
        registries=[{"server": "pullfrom.azurecr.io", "identity": identity_id}],
    )
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}}
    raw.put(
        "Microsoft.App/containerApps/userid", params={"api-version": "2025-07-01"}, json=body
    ).raise_for_status()
    assert _revision_state(raw, "userid")["provisioningState"] == "Provisioned"


def test_single_mode_moves_traffic_to_the_new_running_revision(raw: httpx.Client) -> None:
    env_id = _environment(raw)
    path = "Microsoft.App/containerApps/single"
    params = {"api-version": "2025-07-01"}
    body = _app_body(env_id)
    body["properties"]["configuration"]["activeRevisionsMode"] = "Single"
    raw.put(path, params=params, json=body).raise_for_status()
    body["properties"]["template"]["containers"][0]["image"] = "docker.io/library/nginx:2"
    raw.put(path, params=params, json=body).raise_for_status()
    listed = raw.get(f"{path}/revisions", params=params).json()["value"]
    newest, oldest = listed  # newest first
    assert (newest["properties"]["trafficWeight"], newest["properties"]["active"]) == (100, True)
    assert (oldest["properties"]["trafficWeight"], oldest["properties"]["active"]) == (0, False)


def test_patch_merges_and_delete_is_a_polled_operation(
    server: FakeArmServer, raw: httpx.Client
) -> None:
    env_id = _environment(raw)
    path = "Microsoft.App/containerApps/patched"
    params = {"api-version": "2025-07-01"}
    created = raw.put(path, params=params, json=_app_body(env_id)).json()
    patched = raw.patch(path, params=params, json={"tags": {"team": "a"}})
    assert patched.status_code == 202 and "Azure-AsyncOperation" in patched.headers
    after = raw.get(path, params=params).json()
    assert after["tags"] == {"team": "a"}
    assert after["properties"]["latestRevisionName"] == created["properties"]["latestRevisionName"]

    deleted = raw.delete(path, params=params)
    assert deleted.status_code == 202 and deleted.headers["Location"]
    assert raw.get(path, params=params).status_code == 404
    assert raw.delete(path, params=params).status_code == 204


def test_role_assignment_rules(server: FakeArmServer, sub: str, raw: httpx.Client) -> None:
    registry_id, _, principal = _registry_and_identity(raw, server)
    url = f"{server.url}{registry_id}/providers/Microsoft.Authorization/roleAssignments"
    params = {"api-version": "2022-04-01"}
    role = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
    body = {"properties": {"roleDefinitionId": role, "principalId": principal}}
    first = "11111111-1111-4111-8111-111111111111"
    assert raw.put(f"{url}/{first}", params=params, json=body).status_code == 201
    again = raw.put(f"{url}/22222222-2222-4222-8222-222222222222", params=params, json=body)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "RoleAssignmentExists")
    stranger = {"properties": {"roleDefinitionId": role, "principalId": "no-such-principal"}}
    unknown = raw.put(f"{url}/33333333-3333-4333-8333-333333333333", params=params, json=stranger)
    assert unknown.json()["error"]["code"] == "PrincipalNotFound"
    listed = raw.get(url, params=params).json()["value"]
    assert [r["name"] for r in listed] == [first]


@pytest.mark.parametrize("name", ["Web", "1app", "a", "my--app", "app-", "a" * 33, "my_app"])
def test_container_app_names_follow_arms_rule(raw: httpx.Client, name: str) -> None:
    env_id = _environment(raw)
    answer = raw.put(
        f"Microsoft.App/containerApps/{name}",
        params={"api-version": "2025-07-01"},
        json=_app_body(env_id),
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ContainerAppInvalidName"
    assert f"Invalid ContainerApp name '{name}'" in answer.json()["error"]["message"]


def test_changes_during_an_operation_are_409_lock_conflicts(
    server: FakeArmServer, raw: httpx.Client
) -> None:
    params = {"api-version": "2025-07-01"}
    server.arm.environment_provisioning = 0.5
    env = raw.put(
        "Microsoft.App/managedEnvironments/busyenv", params=params, json={"location": "eastus"}
    )
    again = raw.put(
        "Microsoft.App/managedEnvironments/busyenv", params=params, json={"location": "eastus"}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (
        409,
        "ManagedEnvironmentOperationInProgress",
    )
    early = raw.put(
        "Microsoft.App/containerApps/tooearly", params=params, json=_app_body(env.json()["id"])
    )
    assert (early.status_code, early.json()["error"]["code"]) == (
        400,
        "ManagedEnvironmentNotProvisioned",
    )
    assert "has not been provisioned successfully" in early.json()["error"]["message"]
    assert _finish(raw, env.headers["Azure-AsyncOperation"])["status"] == "Succeeded"

    app = raw.put(
        "Microsoft.App/containerApps/held", params=params, json=_app_body(env.json()["id"])
    )
    app.raise_for_status()
    server.arm.hold(app.json()["id"], 0.3)
    blocked = raw.patch("Microsoft.App/containerApps/held", params=params, json={"tags": {}})
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (
        409,
        "ContainerAppLockConflict",
    )
    assert "Please retry the operation" in blocked.json()["error"]["message"]
    name = app.json()["properties"]["latestRevisionName"]
    action = raw.post(f"Microsoft.App/containerApps/held/revisions/{name}/restart", params=params)
    assert action.status_code == 409
    import time

    time.sleep(0.35)
    assert (
        raw.patch("Microsoft.App/containerApps/held", params=params, json={"tags": {}}).status_code
        == 202
    )


def test_workload_profile_names_must_exist(raw: httpx.Client) -> None:
    params = {"api-version": "2025-07-01"}
    env = raw.put(
        "Microsoft.App/managedEnvironments/wp",
        params=params,
        json={
            "location": "eastus",
            "properties": {
                "workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}]
            },
        },
    )
    _finish(raw, env.headers["Azure-AsyncOperation"])
    body = _app_body(env.json()["id"])
    body["properties"]["workloadProfileName"] = "D4"
    assert raw.put("Microsoft.App/containerApps/wp1", params=params, json=body).status_code == 400
    body["properties"]["workloadProfileName"] = "Consumption"
    made = raw.put("Microsoft.App/containerApps/wp1", params=params, json=body)
    assert made.json()["properties"]["workloadProfileName"] == "Consumption"


def test_registry_names_are_global(server: FakeArmServer, sub: str, raw: httpx.Client) -> None:
    acr = _acr(server, sub)
    server.arm.taken_registry_names.add("claimedname")
    taken = acr.registries.check_name_availability(
        {"name": "claimedName", "type": "Microsoft.ContainerRegistry/registries"}
    )
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    assert taken.message == "The registry claimedName is already in use."
    assert acr.registries.check_name_availability(
        {"name": "freename1", "type": "Microsoft.ContainerRegistry/registries"}
    ).name_available
    refused = raw.put(
        "Microsoft.ContainerRegistry/registries/claimedname",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "AlreadyInUse")
    # a registry in one group is found from the subscription, and its name is held
    acr.registries.begin_create(
        RG, "inonegroup", {"location": "eastus", "sku": {"name": "Basic"}}
    ).result()
    assert [r.name for r in acr.registries.list()] == ["inonegroup"]
    raw.put(
        f"{server.url}/subscriptions/{sub}/resourcegroups/other",
        params={"api-version": "2025-04-01"},
        json={"location": "eastus"},
    )
    elsewhere = raw.put(
        f"{server.url}/subscriptions/{sub}/resourceGroups/other/providers/"
        "Microsoft.ContainerRegistry/registries/inonegroup",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
    )
    assert elsewhere.status_code == 409


def test_abac_registry_ignores_acr_pull(server: FakeArmServer, sub: str, raw: httpx.Client) -> None:
    env_id = _environment(raw)
    server.arm.role_propagation = 0.0
    registry = raw.put(
        "Microsoft.ContainerRegistry/registries/pullfrom",
        params={"api-version": "2025-11-01"},
        json={
            "location": "eastus",
            "sku": {"name": "Basic"},
            "properties": {"roleAssignmentMode": "AbacRepositoryPermissions"},
        },
    ).json()
    assert registry["properties"]["roleAssignmentMode"] == "AbacRepositoryPermissions"
    identity = raw.put(
        "Microsoft.ManagedIdentity/userAssignedIdentities/puller",
        params={"api-version": "2024-11-30"},
        json={"location": "eastus"},
    ).json()
    _grant_pull(server, sub, raw, registry["id"], identity["properties"]["principalId"])
    body = _app_body(
        env_id,
        PRIVATE_IMAGE,
        registries=[{"server": "pullfrom.azurecr.io", "identity": identity["id"]}],
    )
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity["id"]: {}}}
    raw.put("Microsoft.App/containerApps/abac", params={"api-version": "2025-07-01"}, json=body)
    state = _revision_state(raw, "abac")
    assert state["provisioningState"] == "Failed"
    assert "unable to pull image using Managed identity" in state["provisioningError"]


def test_get_has_azures_shape_and_a_re_put_of_it_is_no_template_change(
    server: FakeArmServer, sub: str, raw: httpx.Client
) -> None:
    """GET carries read-only fields and platform defaults (ContainerApps_Get.json); PUTting
    that back (without read-only fields, as the SDK serializes it) makes no new revision."""
    env_id = _environment(raw)
    apps = _apps(server, sub)
    apps.container_apps.begin_create_or_update(
        RG, "shape", ContainerApp.from_dict(_app_body(env_id))
    ).result()
    got = raw.get("Microsoft.App/containerApps/shape", params={"api-version": "2025-07-01"})
    props = got.json()["properties"]
    assert "environmentId" not in props and props["managedEnvironmentId"] == env_id
    assert props["template"]["scale"] == {
        "minReplicas": 0,
        "maxReplicas": 10,
        "cooldownPeriod": 300,
        "pollingInterval": 30,
    }
    assert props["template"]["containers"][0]["resources"]["ephemeralStorage"] == "1Gi"
    before = props["latestRevisionName"]
    app = apps.container_apps.get(RG, "shape")
    again = apps.container_apps.begin_create_or_update(
        RG, "shape", ContainerApp.from_dict(app.serialize(keep_readonly=False))
    ).result()
    assert again.latest_revision_name == before
    assert len(list(apps.container_apps_revisions.list_revisions(RG, "shape"))) == 1


# -- optimistic concurrency (ETags) and provider registration ----------------------------


def _registry_put(raw: httpx.Client, name: str, **headers: str) -> httpx.Response:
    return raw.put(
        f"/Microsoft.ContainerRegistry/registries/{name}",
        params={"api-version": "2025-11-01"},
        json={"location": "eastus", "sku": {"name": "Basic"}},
        headers=headers,
    )


def test_every_write_changes_the_etag_and_a_stale_if_match_is_412(
    server: FakeArmServer, raw: httpx.Client, sub: str
) -> None:
    """The ETag rules of azure-resource-manager-rpc v1.0/Addendum.md, "ETags for Resources"."""
    assert _registry_put(raw, "etagreg1", **{"If-Match": '"nothing"'}).status_code == 412
    created = _registry_put(raw, "etagreg1", **{"If-None-Match": "*"})
    assert created.status_code == 201
    first = created.headers["ETag"]
    read = raw.get(
        "/Microsoft.ContainerRegistry/registries/etagreg1", params={"api-version": "2025-11-01"}
    )
    assert read.headers["ETag"] == first
    again = _registry_put(raw, "etagreg1", **{"If-None-Match": "*"})
    assert again.status_code == 412
    assert again.json() == {
        "error": {"code": "PreconditionFailed", "message": again.json()["error"]["message"]}
    }
    assert _registry_put(raw, "etagreg1", **{"If-Match": first}).status_code == 200
    second = raw.get(
        "/Microsoft.ContainerRegistry/registries/etagreg1", params={"api-version": "2025-11-01"}
    ).headers["ETag"]
    assert second != first
    stale = _registry_put(raw, "etagreg1", **{"If-Match": first})
    assert stale.status_code == 412 and second in stale.json()["error"]["message"]
    assert _registry_put(raw, "etagreg1", **{"If-Match": "*"}).status_code == 200  # any ETag
    # the same refusal through azure-mgmt-containerregistry's own pipeline
    with pytest.raises(HttpResponseError) as refused:
        _acr(server, sub).registries.begin_create(
            RG,
            "etagreg1",
            {"location": "eastus", "sku": {"name": "Basic"}},
            headers={"If-Match": first},
        )
    assert refused.value.status_code == 412
    assert refused.value.error is not None and refused.value.error.code == "PreconditionFailed"
    # an RP that ignores If-Match (the Container Apps spec documents none)
    server.arm.etags = False
    assert _registry_put(raw, "etagreg1", **{"If-Match": first}).status_code == 200


def test_unregistered_namespace_until_registration_completes(
    server: FakeArmServer, raw: httpx.Client, sub: str
) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    providers = ResourceManagementClient(
        StaticTokenCredential(TOKEN), sub, **_options(server)
    ).providers
    assert providers.get("Microsoft.ContainerRegistry").registration_state == "Registered"
    server.arm.unregistered_providers.add("microsoft.containerregistry")
    server.arm.provider_registration = 0.3
    assert providers.get("Microsoft.ContainerRegistry").registration_state == "NotRegistered"
    refused = _registry_put(raw, "regreg01")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "MissingSubscriptionRegistration"
    assert providers.register("Microsoft.ContainerRegistry").registration_state == "Registering"
    assert _registry_put(raw, "regreg01").status_code == 409  # not yet
    time.sleep(0.35)
    assert providers.get("Microsoft.ContainerRegistry").registration_state == "Registered"
    assert _registry_put(raw, "regreg01").status_code == 201
