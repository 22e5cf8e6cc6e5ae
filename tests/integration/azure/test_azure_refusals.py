"""Everything the azure target refuses is refused before Azure is touched: a clear
CloudshipError, not a single ARM request, nothing pushed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudship import ship
from cloudship.errors import ConfigError, PlatformMismatchError
from cloudship.testing.token_registry import TokenRegistry
from cloudship_azure.testing import AzureTargetFactory


def _untouched(factory: AzureTargetFactory, registry: TokenRegistry, pushes_before: int) -> None:
    assert factory.server.arm.log == []
    assert factory.server.arm.resources == {}
    assert len(registry.tokens.requests) == pushes_before


@pytest.mark.parametrize(
    ("cpu", "memory", "said"),
    [(0.5, "3Gi", "cpu=0.5 with memory=3Gi"), (0.3, None, "cpu=0.3"), (8.0, "16Gi", "cpu=8")],
)
def test_invalid_cpu_memory(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
    cpu: float,
    memory: str | None,
    said: str,
) -> None:
    before = len(cloudship_acr_token_registry.tokens.requests)
    with pytest.raises(ConfigError, match="allowed cpu/memory pairs") as refused:
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            cpu=cpu,
            memory=memory,
            **cloudship_azure_target.settings(),
        )
    assert said in str(refused.value)
    _untouched(cloudship_azure_target, cloudship_acr_token_registry, before)


def test_bad_registry_name(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    before = len(cloudship_acr_token_registry.tokens.requests)
    with pytest.raises(ConfigError, match="registry name 'my-registry'"):
        ship(app_dir, "azure", port=8000, **cloudship_azure_target.settings(registry="my-registry"))
    _untouched(cloudship_azure_target, cloudship_acr_token_registry, before)


def test_missing_subscription(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOUDSHIP_AZURE_SUBSCRIPTION", raising=False)
    before = len(cloudship_acr_token_registry.tokens.requests)
    settings = cloudship_azure_target.settings()
    del settings["subscription"]
    with pytest.raises(ConfigError, match="needs a subscription id") as refused:
        ship(app_dir, "azure", port=8000, **settings)
    assert "CLOUDSHIP_AZURE_SUBSCRIPTION" in str(refused.value)
    _untouched(cloudship_azure_target, cloudship_acr_token_registry, before)


def test_non_amd64_image_refused_before_push(
    tmp_path: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    # FROM scratch with no RUN builds for any platform without emulation
    (tmp_path / "hello.txt").write_text("hi\n")
    (tmp_path / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /\nCMD ["/x"]\n')
    before = len(cloudship_acr_token_registry.tokens.requests)
    with pytest.raises(PlatformMismatchError, match="linux/arm64 but target 'azure' runs"):
        ship(
            tmp_path,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            platform="linux/arm64",
            **cloudship_azure_target.settings(),
        )
    _untouched(cloudship_azure_target, cloudship_acr_token_registry, before)


@pytest.mark.parametrize("name", ["my--app", "a" * 33, "9lives"])
def test_invalid_container_app_name(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
    name: str,
) -> None:
    """Azure refuses these names (ContainerAppInvalidName) only at the app PUT, after the
    build and push; cloudship refuses them first."""
    before = len(cloudship_acr_token_registry.tokens.requests)
    with pytest.raises(ConfigError, match="not a valid Container Apps name"):
        ship(app_dir, "azure", name=name, port=8000, **cloudship_azure_target.settings())
    _untouched(cloudship_azure_target, cloudship_acr_token_registry, before)


def test_registry_name_taken_elsewhere(
    app_dir: Path,
    cloudship_azure_target: AzureTargetFactory,
    cloudship_acr_token_registry: TokenRegistry,
) -> None:
    """ACR names are global: a name another tenant holds is refused after
    checkNameAvailability, before anything is created or pushed."""
    cloudship_azure_target.server.arm.taken_registry_names.add("someoneelses")
    before = len(cloudship_acr_token_registry.tokens.requests)
    with pytest.raises(ConfigError, match="'someoneelses' is taken") as refused:
        ship(
            app_dir, "azure", port=8000, **cloudship_azure_target.settings(registry="someoneelses")
        )
    assert "AlreadyExists" in str(refused.value)
    arm = cloudship_azure_target.server.arm
    assert arm.resources == {}
    assert all(method == "GET" or "checkNameAvailability" in path for method, path, _ in arm.log)
    assert len(cloudship_acr_token_registry.tokens.requests) == before


def test_unregistered_provider_and_missing_role_rights_say_what_to_do(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """A subscription that never registered Microsoft.App, with registering left to the user
    (``register_providers=False``), and a principal that may not write role assignments (403
    AuthorizationFailed): each is the cloudship error naming the fix, and no app is created
    (the registration case: nothing at all, before the build's push)."""
    from cloudship.errors import AuthError

    arm = cloudship_azure_target.server.arm
    arm.unregistered_providers.add("microsoft.app")
    with pytest.raises(ConfigError, match=r"az provider register -n Microsoft\.App --wait"):
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            **cloudship_azure_target.settings(register_providers=False),
        )
    assert arm.resources == {}
    assert {method for method, _, _ in arm.log} == {"GET"}
    arm.unregistered_providers.clear()

    arm.deny_role_assignments = True
    with pytest.raises(AuthError, match="roleAssignments/write") as denied:
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            **cloudship_azure_target.settings(),
        )
    assert "User Access Administrator" in str(denied.value)
    assert arm.ids("Microsoft.App/containerApps") == []
