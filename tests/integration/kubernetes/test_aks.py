"""The aks target on the Azure ARM fake + a fake cluster: the kubeconfig comes from the AKS API
(azure-mgmt-containerservice against the fake's managedClusters), the API server takes only an
Entra ID token for the AKS audience, and the node pulls from the ACR-style token registry with
the kubelet identity — only once cloudship granted it AcrPull and the grant propagated."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cloudship import ship
from cloudship.errors import AuthError, CloudshipError, ConfigError, HealthCheckFailed
from cloudship_azure.fake import ACR_PULL
from cloudship_kubernetes.aks import AKS_SERVER_ID, AksApi
from cloudship_kubernetes.testing import AksTargetFactory


def _assignments(factory: AksTargetFactory) -> list[dict[str, Any]]:
    arm = factory.server.arm
    with arm.lock:
        return [
            r
            for r in arm.resources.values()
            if r["type"] == "Microsoft.Authorization/roleAssignments"
        ]


def _pod_events(factory: AksTargetFactory) -> list[str]:
    store = factory.cluster.store
    return [
        f"{e['reason']}: {e['message']}"
        for e in store.list(store.kind("events"), None)
        if e["involvedObject"]["kind"] == "Pod"
    ]


def test_ship_pulls_with_the_kubelet_identity(
    app_dir: Path, cloudship_aks_target: AksTargetFactory
) -> None:
    aks, cluster = cloudship_aks_target.aks, cloudship_aks_target.cluster
    cloudship_aks_target.server.arm.role_propagation = 2.0  # Azure: up to 10 minutes
    name = cloudship_aks_target.name("web")
    events: list[object] = []
    shipment = ship(
        app_dir,
        "aks",
        name=name,
        port=8000,
        on_event=events.append,
        **cloudship_aks_target.settings(),
    )
    assert shipment.url is not None
    assert httpx.get(shipment.url, timeout=10).text == "v1\n"

    # AcrPull on the registry for the kubelet identity, and no pull secret in the cluster
    kubelet = aks.kubelet_identity()["objectId"]
    granted = [a["properties"] for a in _assignments(cloudship_aks_target)]
    assert [g["principalId"] for g in granted] == [kubelet]
    assert granted[0]["roleDefinitionId"].endswith(ACR_PULL)
    assert "/Microsoft.ContainerRegistry/registries/" in granted[0]["scope"]
    secrets = cluster.store.list(cluster.store.kind("secrets"), "default")
    assert [s["metadata"]["name"] for s in secrets] == []
    template = cluster.store.get(cluster.store.kind("deployments"), "default", name)["spec"][
        "template"
    ]
    assert "imagePullSecrets" not in template["spec"]
    # the first pull was refused while the grant propagated; a new pod pulled once it had
    assert any("ErrImagePull" in e for e in _pod_events(cloudship_aks_target))
    assert any("AcrPull role is not in effect yet" in str(e) for e in events)
    assert aks.signed_in and set(aks.signed_in) == {"aad"}

    again = ship(app_dir, "aks", name=name, port=8000, **cloudship_aks_target.settings())
    assert not again.changed and again.revision == shipment.revision
    assert len(_assignments(cloudship_aks_target)) == 1  # the grant is found, not repeated


def test_without_acr_pull_the_node_cannot_pull(
    app_dir: Path, cloudship_aks_target: AksTargetFactory
) -> None:
    """A grant that never takes effect: the kubelet's pulls are refused (ErrImagePull) and the
    ship fails within its deadline, naming the pull, with nothing to roll back to."""
    cloudship_aks_target.server.arm.role_propagation = 3600
    with pytest.raises(HealthCheckFailed) as failure:
        ship(
            app_dir,
            "aks",
            name=cloudship_aks_target.name("web"),
            port=8000,
            timeout=8,
            **cloudship_aks_target.settings(),
        )
    # the reason (waited out while the grant could still propagate) or the pod's events
    assert "ErrImagePull" in str(failure.value)
    assert failure.value.rolled_back_to is None
    assert any("401" in e or "nauthorized" in e for e in _pod_events(cloudship_aks_target))


def test_no_right_to_assign_roles_falls_back_to_a_pull_secret(
    app_dir: Path, cloudship_aks_target: AksTargetFactory
) -> None:
    cloudship_aks_target.server.arm.deny_role_assignments = True
    name = cloudship_aks_target.name("web")
    events: list[object] = []
    shipment = ship(
        app_dir,
        "aks",
        name=name,
        port=8000,
        on_event=events.append,
        **cloudship_aks_target.settings(),
    )
    assert shipment.url is not None and httpx.get(shipment.url, timeout=10).text == "v1\n"
    assert any("pulling with a pull secret instead" in str(e) for e in events)
    store = cloudship_aks_target.cluster.store
    assert store.find(store.kind("secrets"), "default", f"{name}-pull") is not None
    assert _assignments(cloudship_aks_target) == []


def test_the_aks_api_as_azure_mgmt_containerservice_reads_it(
    cloudship_aks_target: AksTargetFactory,
) -> None:
    """The real management client parses the fake's cluster and credentials; the kubeconfig is
    kubelogin's, so cloudship swaps in a token for the AKS audience, and the API server refuses
    an ARM token."""
    target = cloudship_aks_target.target()
    api = target.runtime.api  # type: ignore[attr-defined]
    assert isinstance(api, AksApi)
    cluster = api.managed_cluster()
    assert cluster.provisioning_state == "Succeeded" and cluster.power_state.code == "Running"
    assert api.kubelet_object_id() == cloudship_aks_target.aks.kubelet_identity()["objectId"]
    settings = cloudship_aks_target.settings()
    credentials = api.managed_clusters.list_cluster_user_credentials(
        settings["resource_group"], settings["cluster"]
    )
    config = yaml.safe_load(bytes(credentials.kubeconfigs[0].value))
    user = config["users"][0]["user"]
    assert user["exec"]["command"] == "kubelogin" and AKS_SERVER_ID in user["exec"]["args"]
    assert target.runtime.status("nothing-here") is None  # signed in with the AKS token
    arm_token = cloudship_aks_target.credential.get_token(
        "https://management.azure.com/.default"
    ).token
    answer = httpx.get(
        f"{cloudship_aks_target.cluster.url}/api/v1/namespaces/default/pods",
        headers={"Authorization": f"Bearer {arm_token}"},
        verify=ssl.create_default_context(cafile=cloudship_aks_target.cluster.ca_path),
    )
    assert answer.status_code == 401


def test_a_cluster_that_is_not_there_or_settings_missing(
    cloudship_aks_target: AksTargetFactory,
) -> None:
    runtime = cloudship_aks_target.target(cluster="not-there").runtime
    with pytest.raises(CloudshipError, match="not-there"):
        runtime.status("web")
    settings = cloudship_aks_target.settings()
    del settings["cluster"]
    from cloudship.config import ConfigFile
    from cloudship_kubernetes.aks import provider

    with pytest.raises(ConfigError, match="cluster"):
        provider.target(ConfigFile(), settings)


def test_the_fake_node_pulls_only_with_a_granted_identity(
    cloudship_aks_target: AksTargetFactory,
) -> None:
    """The fake alone: a pod with no pull secret whose image is in the ACR gets ErrImagePull
    until the kubelet identity holds AcrPull."""
    aks = cloudship_aks_target.aks
    registry_host = next(iter(cloudship_aks_target.server.arm.login_servers.values()))
    assert aks.node_credentials(registry_host) is None  # no registry resource yet
    target = cloudship_aks_target.target()
    target.registry.prepare()  # the ACR exists now
    assert aks.node_credentials(registry_host) is None  # ... but nothing is granted
    from cloudship_azure.identity import grant_registry_pull

    cloudship_aks_target.server.arm.role_propagation = 0.3
    grant_registry_pull(
        target.runtime._clients,  # type: ignore[attr-defined]
        target.registry.resource_id,  # type: ignore[attr-defined]
        aks.kubelet_identity()["objectId"],
    )
    assert aks.node_credentials(registry_host) is None  # propagating
    time.sleep(0.4)
    login = aks.node_credentials(registry_host)
    assert login is not None and login["serveraddress"] == registry_host


def test_a_local_account_kubeconfig_is_used_as_it_is(
    cloudship_aks_target: AksTargetFactory,
) -> None:
    """A cluster without Entra ID integration hands out a kubeconfig with its own bearer
    token: cloudship asks the credential for no AKS token and signs in with that one."""
    aks = cloudship_aks_target.aks
    aks.aad = False
    runtime = cloudship_aks_target.target().runtime
    assert runtime.status("nothing-here") is None
    assert aks.signed_in and set(aks.signed_in) == {"local"}
    aks.local_token = "rotated"  # the API server no longer takes the old token
    with pytest.raises(AuthError, match="401"):
        runtime.status("nothing-here")  # a local token is not re-read within one target
    fresh = cloudship_aks_target.target().runtime
    assert fresh.status("nothing-here") is None  # a new target reads the new kubeconfig
