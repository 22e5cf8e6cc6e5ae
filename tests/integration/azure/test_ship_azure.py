"""End to end: ship() to the azure target — the real azure-mgmt clients and azure-core pipeline
against the HTTPS ARM fake, a real push through the engine to the ACR-style token registry, and
each revision run on the engine so the health gate probes a real server."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

import cloudship
from cloudship import ship
from cloudship.errors import HealthCheckFailed, RevisionNotFoundError
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship.testing.token_registry import TokenRegistry
from cloudship_azure.clients import AzureClients
from cloudship_azure.fake import ACR_PULL, ArmError
from cloudship_azure.settings import AzureSettings
from cloudship_azure.testing import ACR_NAME, AzureTargetFactory
from tests.conftest import write_app

APPS = "Microsoft.App/containerApps"


def _serve(factory: AzureTargetFactory, url: str | None) -> str:
    """What the app answers on ``url`` (``https://<fqdn>``), through the fake's gateway."""
    assert url is not None and url.startswith("https://")
    fqdn = url.removeprefix("https://")
    return httpx.get(f"{factory.runner.gateway_url}/{fqdn}/", timeout=5).text


def _writes(factory: AzureTargetFactory) -> int:
    return sum(1 for method, _, _ in factory.server.arm.log if method != "GET")


def test_create_from_nothing(app_dir: Path, cloudship_azure_target: AzureTargetFactory) -> None:
    name = cloudship_azure_target.name("web")
    arm = cloudship_azure_target.server.arm
    shipment = ship(
        app_dir,
        "azure",
        name=name,
        port=8000,
        cpu=0.5,
        memory="1Gi",
        env={"MODE": "prod"},
        secrets={"API_KEY": "s3cret-value"},
        **cloudship_azure_target.settings(),
    )

    assert shipment.changed and shipment.push and not shipment.push.skipped
    assert shipment.image == f"{arm.login_servers[ACR_NAME]}/{name}@{shipment.digest}"
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"
    # the resources a first ship creates, and how
    assert sorted(r["type"] for r in arm.resources.values()) == [
        "Microsoft.App/containerApps",
        "Microsoft.App/managedEnvironments",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Resources/resourceGroups",
    ]
    registry = arm.get(next(i for i in arm.ids("Microsoft.ContainerRegistry/registries")))
    assert registry is not None
    assert registry["sku"]["name"] == "Basic"
    assert registry["properties"]["adminUserEnabled"] is False
    app = arm.get(arm.ids(APPS)[0])
    assert app is not None
    config = app["properties"]["configuration"]
    identity_id = next(iter(app["identity"]["userAssignedIdentities"]))
    assert config["registries"] == [
        {"server": arm.login_servers[ACR_NAME], "identity": identity_id}
    ]
    assert config["activeRevisionsMode"] == "Multiple"
    assert config["ingress"]["targetPort"] == 8000 and config["ingress"]["external"] is True
    assert config["secrets"] == [{"name": "api-key"}]  # values are never read back
    container = app["properties"]["template"]["containers"][0]
    assert container["image"] == shipment.image
    assert container["resources"]["cpu"] == 0.5 and container["resources"]["memory"] == "1Gi"
    assert {"name": "API_KEY", "secretRef": "api-key"} in container["env"]
    assert {"name": "MODE", "value": "prod"} in container["env"]
    assert "s3cret-value" not in str(app)
    # the pull identity holds AcrPull on the registry (a role assignment at its scope)
    # a workload-profiles environment, and the app on its Consumption profile
    env = arm.get(arm.ids("Microsoft.App/managedEnvironments")[0])
    assert env is not None
    assert env["properties"]["workloadProfiles"] == [
        {"name": "Consumption", "workloadProfileType": "Consumption"}
    ]
    assert app["properties"]["workloadProfileName"] == "Consumption"
    roles = [r for r in arm.resources.values() if r["type"].endswith("roleAssignments")]
    assert [r["properties"]["scope"] for r in roles] == [registry["id"]]
    assert roles[0]["properties"]["roleDefinitionId"].endswith(ACR_PULL)


def test_update_unchanged_and_rollback(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "v1")
    first = ship(app, "azure", name=name, port=8000, **settings)

    writes = _writes(cloudship_azure_target)
    again = ship(app, "azure", name=name, port=8000, **settings)
    assert not again.changed and again.push and again.push.skipped
    assert _writes(cloudship_azure_target) == writes  # not a single PUT/PATCH/POST/DELETE
    assert again.revision == first.revision
    status = cloudship.status(name, "azure", **settings)
    assert [r.id for r in status.revisions] == [first.revision]

    write_app(app, "v2")
    second = ship(app, "azure", name=name, port=8000, **settings)
    assert second.changed and second.revision != first.revision
    assert second.previous_revision == first.revision
    assert second.digest != first.digest
    assert _serve(cloudship_azure_target, second.url) == "v2\n"
    status = cloudship.status(name, "azure", **settings)
    assert status.current is not None and status.current.id == second.revision
    assert {r.id: (r.state, r.digest) for r in status.revisions} == {
        second.revision: ("serving", second.digest),
        first.revision: ("stopped", first.digest),
    }

    assert not cloudship.plan(app, "azure", name=name, port=8000, **settings).changed

    back = cloudship.rollback(name, "azure", **settings)  # default: the one before
    assert back.revision == first.revision and back.changed
    assert back.previous == second.revision
    assert _serve(cloudship_azure_target, back.url) == "v1\n"
    forward = cloudship.rollback(name, "azure", to=second.revision, **settings)
    assert forward.revision == second.revision
    assert _serve(cloudship_azure_target, forward.url) == "v2\n"
    with pytest.raises(RevisionNotFoundError):
        cloudship.rollback(name, "azure", to="nosuchrev", **settings)

    forced = ship(app, "azure", name=name, port=8000, force=True, **settings)
    assert forced.changed and forced.revision not in (first.revision, second.revision)
    assert forced.digest == second.digest


def test_running_revision_that_fails_its_probe_is_not_promoted(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """ARM says Succeeded and the revision runs, but its health path answers 404."""
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "v1")
    good = ship(app, "azure", name=name, port=8000, **settings)
    write_app(app, "v2")
    with pytest.raises(HealthCheckFailed, match="HTTP 404") as failure:
        ship(app, "azure", name=name, port=8000, health_path="/missing", timeout=6, **settings)
    assert failure.value.rolled_back_to == good.revision
    assert _serve(cloudship_azure_target, good.url) == "v1\n"


def test_first_deploy_failing_has_nothing_to_roll_back_to(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    app = write_app(tmp_path / "app", "x", cmd='["sh", "-c", "exit 7"]')
    with pytest.raises(HealthCheckFailed) as failure:
        ship(
            app,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            timeout=60,
            **cloudship_azure_target.settings(),
        )
    assert failure.value.rolled_back_to is None
    assert "exited with code 7" in str(failure.value)


def test_failing_revision_keeps_traffic_on_the_old_one(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "good")
    good = ship(app, "azure", name=name, port=8000, **settings)

    write_app(app, "bad", cmd='["sh", "-c", "echo boom-from-the-app; exit 3"]')
    with pytest.raises(HealthCheckFailed) as failure:
        ship(app, "azure", name=name, port=8000, timeout=60, **settings)

    assert failure.value.rolled_back_to == good.revision
    assert "boom-from-the-app" in "\n".join(failure.value.log_tail)
    assert _serve(cloudship_azure_target, good.url) == "good\n"
    status = cloudship.status(name, "azure", **settings)
    assert status.current is not None and status.current.id == good.revision
    states = {r.id: r.state for r in status.revisions}
    assert states == {good.revision: "serving", "r2": "failed"}
    # a failed revision is never a rollback target, by default or by name
    with pytest.raises(RevisionNotFoundError, match="failed its health gate"):
        cloudship.rollback(name, "azure", to="r2", **settings)
    failed = next(
        r
        for r in cloudship_azure_target.server.arm.apps.revisions[
            _app_key(cloudship_azure_target, name)
        ]
    )
    assert failed["properties"]["active"] is True  # r1 (the good one) is still active


def _app_key(factory: AzureTargetFactory, name: str) -> str:
    return next(i for i in factory.server.arm.ids(APPS) if i.endswith("/" + name)).lower()


def test_failed_operation_is_a_failed_revision_even_when_logs_are_denied(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT's operation ends Failed (ContainerAppOperationError: the pull is refused, and
    the grant is a day old, so no propagation wait can help); the log stream token is refused
    too (403 AuthorizationFailed, a principal without getAuthToken/action). The user gets
    HealthCheckFailed naming Azure's error, the bad revision is deactivated, r1 serves."""
    arm = cloudship_azure_target.server.arm
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "good")
    good = ship(app, "azure", name=name, port=8000, **settings)

    arm.role_propagation = 3600.0  # the existing grant stops working (e.g. moved to ABAC)
    for resource in arm.resources.values():
        if resource["type"].endswith("roleAssignments"):
            resource["properties"]["createdOn"] = "2020-01-01T00:00:00Z"

    def denied(*args: object) -> object:
        raise ArmError(403, "AuthorizationFailed", "The client does not have authorization.")

    monkeypatch.setattr(arm.apps, "_auth_token", denied)
    write_app(app, "v2")
    before = len(arm.log)
    with pytest.raises(HealthCheckFailed) as failure:
        ship(app, "azure", name=name, port=8000, timeout=60, **settings)
    message = str(failure.value)
    assert "Failed to provision revision for container app" in message
    assert "unable to pull image using Managed identity" in message
    assert failure.value.log_tail == [] and failure.value.rolled_back_to == good.revision
    assert not any(p.endswith("/restart") for _, p, _ in arm.log[before:]), "old grant: no retry"
    revisions = arm.apps.revisions[_app_key(cloudship_azure_target, name)]
    assert [r["properties"]["active"] for r in revisions] == [True, False]
    assert _serve(cloudship_azure_target, good.url) == "good\n"
    status = cloudship.status(name, "azure", **settings)
    assert {r.id: r.state for r in status.revisions} == {"r1": "serving", "r2": "failed"}


def test_first_deploy_waits_for_the_acr_pull_grant_to_propagate(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """Role assignments take effect after a delay (the fake's default, as in Azure): the first
    revision's pull is refused, the adapter restarts it with back-off until the grant works."""
    arm = cloudship_azure_target.server.arm
    arm.role_propagation = 1.5
    events: list[object] = []
    shipment = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        on_event=events.append,
        **cloudship_azure_target.settings(poll_interval=0.2),
    )
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"
    restarts = [p for m, p, _ in arm.log if m == "POST" and p.endswith("/restart")]
    assert restarts, "the refused pull was retried by restarting the revision"
    assert any("AcrPull role is not in effect yet" in str(e) for e in events)


def test_a_grant_that_never_takes_effect_fails_within_the_deadline(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    cloudship_azure_target.server.arm.role_propagation = 3600
    with pytest.raises(HealthCheckFailed) as failure:
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name("web"),
            port=8000,
            # the build and push count against it too: room for a busy machine, far less
            # than the grant's hour
            timeout=10,
            **cloudship_azure_target.settings(poll_interval=0.2),
        )
    assert "unable to pull image using Managed identity" in str(failure.value)
    assert failure.value.rolled_back_to is None


def test_logs_and_destroy(app_dir: Path, cloudship_azure_target: AzureTargetFactory) -> None:
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    shipment = ship(app_dir, "azure", name=name, port=8000, **settings)
    _serve(cloudship_azure_target, shipment.url)

    lines = cloudship.logs(name, "azure", **settings)
    assert any("GET /" in line or "response" in line.lower() for line in lines), lines

    cloudship.destroy(name, "azure", **settings)
    assert cloudship_azure_target.server.arm.ids(APPS) == []
    with pytest.raises(cloudship.errors.ServiceNotFoundError):
        cloudship.status(name, "azure", **settings)
    assert not cloudship.destroy(name, "azure", missing_ok=True, **settings)  # already gone


def test_credentials_never_leak(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    target = cloudship_azure_target.target()
    name = cloudship_azure_target.name("web")
    events: list[object] = []
    shipment = ship(
        app_dir,
        target,
        name=name,
        port=8000,
        secrets={"API_KEY": "s3cret-value"},
        on_event=events.append,
    )
    auth = target.registry.credentials()
    assert auth is not None
    refresh = auth.password.get_secret_value()
    aad = cloudship_azure_target.credential.get_token("x").token
    exposed = "\n".join(
        [
            caplog.text,
            repr(shipment),
            repr(auth),
            repr(target),
            repr(cloudship_azure_target.credential),
            *map(repr, events),
            repr(cloudship_azure_target.server.arm.log),
        ]
    )
    for secret in (refresh, aad, "s3cret-value"):
        assert secret not in exposed
    assert "Authorization" in caplog.text or "authorization" in caplog.text  # azure-core logged


def test_private_service_is_probed_from_inside_the_environment(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """Internal ingress: every address is under .internal., the outside gateway refuses it,
    and a cloudship running inside the environment's network probes and promotes it."""
    runner = cloudship_azure_target.runner
    public = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        **cloudship_azure_target.settings(),
    )
    target = cloudship_azure_target.target(
        inside_environment=True, probe_url=runner.inside_url + "/{fqdn}{path}"
    )
    spec = ServiceSpec(name=cloudship_azure_target.name("api"), port=8000, public=False)
    deployment = target.runtime.deploy(spec, ImageRef.parse(public.image), None, timeout=60)
    assert deployment.url is not None and ".internal." in deployment.url
    status = target.runtime.status(spec.name)
    assert status is not None and status.current is not None
    assert status.current.url is not None and ".internal." in status.current.url
    fqdn = deployment.url.removeprefix("https://")
    assert httpx.get(f"{runner.gateway_url}/{fqdn}/", timeout=5).status_code == 404
    assert httpx.get(f"{runner.inside_url}/{fqdn}/", timeout=5).text == "v1\n"


def test_environment_still_provisioning_and_lock_conflicts_are_waited_out(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """The environment takes its time (ManagedEnvironmentNotProvisioned until it is done), and
    later another operation holds the app (409 ContainerAppLockConflict): both are waited for
    within the deadline, with back-off, and the deploy succeeds."""
    arm = cloudship_azure_target.server.arm
    arm.environment_provisioning = 1.0
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings(poll_interval=0.1)
    events: list[object] = []
    app = write_app(tmp_path / "app", "v1")
    ship(app, "azure", name=name, port=8000, on_event=events.append, **settings)
    assert not any(status == 400 for _, _, status in arm.log), "no PUT into an unready env"

    # long enough to outlast the build and push of v2 on a busy machine
    arm.hold(next(i for i in arm.ids(APPS) if i.endswith("/" + name)), 4.0)
    write_app(app, "v2")
    second = ship(app, "azure", name=name, port=8000, **settings)
    assert _serve(cloudship_azure_target, second.url) == "v2\n"
    conflicts = [p for m, p, status in arm.log if status == 409]
    assert conflicts and all("containerApps" in p for p in conflicts)


def test_an_environment_left_provisioning_is_waited_for(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """An environment another run started (still InitializationInProgress) is not used before
    it is ready: cloudship waits, saying so."""
    arm = cloudship_azure_target.server.arm
    arm.environment_provisioning = 8.0  # longer than the build and push take, even when slow
    clients = _clients(cloudship_azure_target)
    clients.ensure_resource_group()
    # started and left alone (no poller): the next ship finds it provisioning
    clients.apps.managed_environments.begin_create_or_update(
        "cloudship-test", "cloudship-env", {"location": "eastus"}, polling=False
    )
    events: list[object] = []
    shipment = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        on_event=events.append,
        **cloudship_azure_target.settings(poll_interval=0.1),
    )
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"
    assert any("waiting for environment cloudship-env" in str(e) for e in events)
    assert not any(status == 400 for _, _, status in arm.log)


def _clients(factory: AzureTargetFactory) -> AzureClients:
    settings = factory.settings()
    credential = settings.pop("credential")
    return AzureClients(AzureSettings(**settings), credential)


def test_registry_in_another_group_is_found_and_abac_mode_is_honoured(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """The registry exists in a shared resource group, in ABAC mode (AcrPull is not honoured
    there): cloudship uses it where it is and grants the pull identity Repository Reader."""
    from cloudship_azure.fake import REPOSITORY_READER

    arm = cloudship_azure_target.server.arm
    clients = _clients(cloudship_azure_target)
    clients.resources.resource_groups.create_or_update("shared", {"location": "eastus"})
    shared = clients.registries.registries.begin_create(
        "shared",
        ACR_NAME,
        {
            "location": "eastus",
            "sku": {"name": "Basic"},
            "properties": {"roleAssignmentMode": "AbacRepositoryPermissions"},
        },
    ).result()
    events: list[object] = []
    shipment = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        on_event=events.append,
        **cloudship_azure_target.settings(),
    )
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"
    registries = [r["id"] for r in arm.resources.values() if r["type"].endswith("/registries")]
    assert registries == [shared.id]
    roles = [r for r in arm.resources.values() if r["type"].endswith("roleAssignments")]
    assert [r["properties"]["scope"] for r in roles] == [shared.id]
    assert roles[0]["properties"]["roleDefinitionId"].endswith(REPOSITORY_READER)
    assert any("of resource group shared" in str(e) for e in events)


def test_scale_to_zero_is_woken_by_the_gate(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """replicas=0: the revision provisions with no replica (no container runs); the health
    probe's request wakes it, as Azure's HTTP scaler does, and the deploy is promoted."""
    arm, runner = cloudship_azure_target.server.arm, cloudship_azure_target.runner
    name = cloudship_azure_target.name("idle")
    events: list[object] = []
    shipment = ship(
        app_dir,
        "azure",
        name=name,
        port=8000,
        replicas=0,
        on_event=events.append,
        **cloudship_azure_target.settings(),
    )
    revision = arm.apps.revisions[_app_key(cloudship_azure_target, name)][0]
    assert revision["properties"]["template"]["scale"]["minReplicas"] == 0
    assert runner.state(revision["name"]) == ("Running", "")  # woken by the probe
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"
    assert any(getattr(e, "phase", None) == "probe" for e in events)


def test_a_revision_scaled_to_zero_runs_nothing_until_requested(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    import docker

    from cloudship_azure.fake.runner import LABEL

    shipment = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        **cloudship_azure_target.settings(),
    )
    clients = _clients(cloudship_azure_target)
    body = clients.apps.container_apps.get("cloudship-test", shipment.name).serialize()
    body["properties"]["template"]["scale"]["minReplicas"] = 0
    body["properties"]["template"]["revisionSuffix"] = "cold"
    body["properties"]["configuration"]["ingress"]["traffic"] = [
        {"latestRevision": True, "weight": 100}
    ]
    from azure.mgmt.appcontainers.models import ContainerApp

    clients.apps.container_apps.begin_create_or_update(
        "cloudship-test", shipment.name, ContainerApp.from_dict(body)
    ).result()
    cold = f"{shipment.name}--cold"
    engine = docker.from_env()
    assert engine.containers.list(filters={"label": f"{LABEL}={cold}"}) == []
    assert cloudship_azure_target.runner.state(cold) == ("Running", "scaled to zero")
    assert _serve(cloudship_azure_target, shipment.url) == "v1\n"  # the request wakes it
    assert len(engine.containers.list(filters={"label": f"{LABEL}={cold}"})) == 1
