"""The azure target's own logic: settings, the cpu/memory table, secret names, spec checks,
refresh-token expiry, and how ARM errors become cloudship errors (through the fake ARM)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from cloudship.config import ConfigFile
from cloudship.errors import AuthError, ConfigError
from cloudship.runtime import ServiceSpec
from cloudship.targets import Target, load_provider
from cloudship_azure import provider
from cloudship_azure.acr import AcrRegistry, refresh_token_expiry
from cloudship_azure.containerapps import ContainerAppsRuntime, container_size, secret_name
from cloudship_azure.fake import FakeArmServer
from cloudship_azure.testing import StaticTokenCredential

SUB = "00000000-0000-0000-0000-000000000001"


def _target(**settings: object) -> Target:
    return provider.target(
        ConfigFile(), {"subscription": SUB, "registry": "myregistry1", **settings}
    )


def test_known_target_resolves_to_this_provider() -> None:
    assert load_provider("azure") is provider


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (None, None, (0.5, "1Gi")),
        (0.25, "0.5Gi", (0.25, "0.5Gi")),
        (1.0, None, (1.0, "2Gi")),
        (None, "4Gi", (2.0, "4Gi")),
        (2.0, "4096Mi", (2.0, "4Gi")),
    ],
)
def test_container_sizes(
    cpu: float | None, memory: str | None, expected: tuple[float, str]
) -> None:
    assert container_size(ServiceSpec(name="ab", port=80, cpu=cpu, memory=memory)) == expected


@pytest.mark.parametrize(("cpu", "memory"), [(0.5, "2Gi"), (0.3, None), (4.25, None), (1.0, "1Gi")])
def test_container_sizes_refused(cpu: float, memory: str | None) -> None:
    with pytest.raises(ConfigError, match="allowed cpu/memory pairs"):
        container_size(ServiceSpec(name="ab", port=80, cpu=cpu, memory=memory))


def test_secret_names_and_collisions() -> None:
    assert secret_name("API_KEY") == "api-key"
    runtime = _target().runtime
    assert isinstance(runtime, ContainerAppsRuntime)
    with pytest.raises(ConfigError, match="same Container Apps secret name"):
        runtime.validate(
            ServiceSpec(
                name="ab", port=80, secrets={"API_KEY": SecretStr("1"), "api_key": SecretStr("2")}
            )
        )
    with pytest.raises(ConfigError, match="both an env variable and a secret"):
        runtime.validate(
            ServiceSpec(name="ab", port=80, env={"X": "1"}, secrets={"X": SecretStr("2")})
        )
    with pytest.raises(ConfigError, match="min replicas"):
        _target(max_replicas=2).runtime.validate(ServiceSpec(name="ab", port=80, replicas=3))


def test_only_linux_amd64() -> None:
    assert _target().runtime.supported_platforms() == frozenset({"linux/amd64"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"subscription": None}, "needs a subscription id"),
        ({"registry": None}, "needs a container registry name"),
        ({"registry": "my-registry"}, "must be 5-50 letters or digits"),
        ({"registry": "abc"}, "must be 5-50 letters or digits"),
        ({"min_replicas": 5, "max_replicas": 2}, "above max_replicas"),
        ({"probe_url": "http://x/"}, "must contain {fqdn} and {path}"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_settings(
    settings: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDSHIP_AZURE_SUBSCRIPTION", raising=False)
    monkeypatch.delenv("CLOUDSHIP_AZURE_REGISTRY", raising=False)
    overrides = {"subscription": SUB, "registry": "myregistry1", **settings}
    with pytest.raises(ConfigError, match=message):
        provider.target(ConfigFile(), {k: v for k, v in overrides.items() if v is not None})


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIP_AZURE_LOCATION", "westeurope")
    config = ConfigFile.model_validate(
        {"azure": {"location": "eastus", "environment": "from-file"}}
    )
    target = provider.target(config, {"subscription": SUB, "registry": "myregistry1"})
    assert isinstance(target.registry, AcrRegistry)
    settings = target.registry._settings
    assert (settings.location, settings.environment) == ("westeurope", "from-file")


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_refresh_token_expiry() -> None:
    assert refresh_token_expiry(_jwt({"exp": 2_000_000_000})) == datetime.fromtimestamp(
        2_000_000_000, UTC
    )
    assert refresh_token_expiry("not-a-jwt") is None
    assert refresh_token_expiry(_jwt({"no": "exp"})) is None


@pytest.fixture
def arm() -> Iterator[FakeArmServer]:
    with FakeArmServer(tokens={"good"}) as server:
        yield server


def _against(arm: FakeArmServer, token: str, **settings: object) -> Target:
    return provider.target(
        ConfigFile(),
        {
            "subscription": next(iter(arm.arm.subscriptions)),
            "registry": "myregistry1",
            "arm_endpoint": arm.url,
            "ca_bundle": arm.ca_path,
            "credential": StaticTokenCredential(token),
            "poll_interval": 0.05,
            **settings,
        },
    )


def test_arm_errors_are_translated_without_the_token(arm: FakeArmServer) -> None:
    with pytest.raises(AuthError) as denied:
        _against(arm, "bad-token-value").registry.prepare()
    assert "bad-token-value" not in str(denied.value) and "401" in str(denied.value)
    assert denied.value.__cause__ is not None

    with pytest.raises(ConfigError, match="SubscriptionNotFound"):
        _against(
            arm, "good", subscription="11111111-2222-3333-4444-555555555555"
        ).registry.prepare()

    with pytest.raises(ConfigError, match="Azure refuses the registry name 'bad-name'"):
        # the fake enforces ACR's own name rule too; bypass our settings check to see ARM's
        registry = _against(arm, "good").registry
        assert isinstance(registry, AcrRegistry)
        registry.name = "bad-name"
        registry.prepare()


def test_registry_created_basic_without_admin_and_address_is_lower_case(arm: FakeArmServer) -> None:
    target = _against(arm, "good", registry="MyRegistry1")
    assert target.registry.address == "myregistry1.azurecr.io"  # predicted, nothing created
    # looked up in its group, then in the whole subscription; nothing created
    assert [method for method, _, _ in arm.arm.log] == ["GET", "GET"] and arm.arm.resources == {}
    target.registry.prepare()
    created = arm.arm.get(arm.arm.ids("Microsoft.ContainerRegistry/registries")[0])
    assert created is not None
    assert created["sku"]["name"] == "Basic"
    assert created["properties"]["adminUserEnabled"] is False
    assert target.registry.address == "myregistry1.azurecr.io"


@pytest.mark.parametrize(
    ("provisioning", "running", "terminal"),
    [
        ("Provisioning", "Processing", False),
        ("Provisioned", "Running", False),
        ("Provisioned", "Unknown", False),
        ("Provisioned", "Degraded", True),
        ("Provisioned", "Failed", True),
        ("Provisioned", "Stopped", True),  # and inactive, below
        ("Provisioned", "Stopped-but-active", False),  # just activated: may be stale
        ("Failed", "Processing", True),
        ("Deprovisioned", "Stopped", True),
        ("Provisioned", "ActivationFailed", True),  # a newer "…Failed" state counts too
    ],
)
def test_terminal_revision_states_fail_fast(
    provisioning: str, running: str, terminal: bool
) -> None:
    """Every RevisionRunningState of the 2025-07-01 spec (ContainerAppsRevisions.json), read
    through the SDK's own model: a terminal one ends the gate at once, not at the timeout."""
    from azure.mgmt.appcontainers.models import Revision

    active = running != "Stopped"
    running = running.removesuffix("-but-active")
    revision = Revision.deserialize(
        {
            "name": "web--r1-abcd",
            "properties": {
                "provisioningState": provisioning,
                "runningState": running,
                "active": active,
                "provisioningError": "boom" if terminal else None,
            },
        }
    )
    failure = ContainerAppsRuntime._failure(revision)
    assert (failure is not None) == terminal
    if failure:
        assert running in failure and "boom" in failure


def test_missing_extra_is_reported_before_any_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the [azure] extra, ship() names the install command and never reaches the
    engine (the azure provider imports its SDKs lazily, so the check cannot rely on import)."""
    import sys

    from cloudship import ship
    from cloudship.engine import Engine
    from cloudship.errors import ProviderNotInstalledError

    monkeypatch.setitem(sys.modules, "azure.mgmt.appcontainers", None)

    def no_engine(*args: object, **kwargs: object) -> object:
        raise AssertionError("the engine was reached")

    monkeypatch.setattr(Engine, "shared", no_engine)
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    with pytest.raises(ProviderNotInstalledError) as info:
        ship(tmp_path, "azure", port=8000, subscription=SUB, registry="myregistry1")
    assert "azure.mgmt.appcontainers" in str(info.value)
    assert "pip install 'cloudship[azure]'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("a", "has 1 characters"),
        ("a" * 33, "has 33 characters"),
        ("my--app", "contains '--'"),
        ("1app", "must start with a lower-case letter"),
    ],
)
def test_container_app_names_are_checked_before_any_call(name: str, said: str) -> None:
    """Azure's own rule (ContainerAppInvalidName), checked without a request: the runtime has
    no reachable ARM here, so any call would fail differently."""
    from cloudship_azure.containerapps import check_app_name

    with pytest.raises(ConfigError, match="not a valid Container Apps name") as refused:
        _target().runtime.validate(ServiceSpec(name=name, port=80))
    assert said in str(refused.value)
    check_app_name("web-1")  # a good one passes


def test_private_service_is_refused_when_it_cannot_be_probed() -> None:
    """``public=False`` revisions answer only on ``*.internal.<domain>``: unless cloudship runs
    inside the environment's network, the gate could never pass, so it refuses up front."""
    spec = ServiceSpec(name="api", port=80, public=False)
    with pytest.raises(ConfigError, match="internal ingress") as refused:
        _target().runtime.validate(spec)
    assert "inside_environment=True" in str(refused.value)
    _target(inside_environment=True).runtime.validate(spec)
