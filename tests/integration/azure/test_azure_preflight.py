"""The provider-registration preflight: a subscription that has not registered a namespace
the target uses is registered (and waited for) before anything is created, or refused with
the command that fixes it — never a 409 MissingSubscriptionRegistration halfway through."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudship import ship
from cloudship.errors import AuthError, ShipTimeoutError
from cloudship.events import Event, Notice
from cloudship_azure.testing import AzureTargetFactory


def _writes(factory: AzureTargetFactory) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in factory.server.arm.log if m != "GET"]


def test_unregistered_namespaces_are_registered_first_and_waited_for(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    arm = cloudship_azure_target.server.arm
    arm.unregistered_providers |= {"microsoft.app", "microsoft.containerregistry"}
    arm.provider_registration = 0.5  # Azure: minutes; the fake keeps them Registering meanwhile
    events: list[Event] = []
    result = ship(
        app_dir,
        "azure",
        name=cloudship_azure_target.name(),
        port=8000,
        on_event=events.append,
        **cloudship_azure_target.settings(),
    )
    assert result.url is not None
    assert httpx.get(cloudship_azure_target.runner.gateway_url + "/" + result.url[8:]).is_success
    writes = _writes(cloudship_azure_target)
    registers = [p for m, p in writes if p.endswith("/register")]
    assert sorted(p.split("/")[-2] for p in registers) == [
        "Microsoft.App",
        "Microsoft.ContainerRegistry",
    ]
    # both registrations come before the first write of anything else
    assert [p for _, p in writes[:2]] == registers
    conflicts = [(m, p) for m, p, status in arm.log if status == 409]
    assert not conflicts, conflicts  # no MissingSubscriptionRegistration
    # it polled while Azure said Registering
    polls = [p for m, p, _ in arm.log if m == "GET" and p.endswith("/providers/Microsoft.App")]
    assert len(polls) >= 2
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("registering resource provider Microsoft.App" in n for n in notices)
    # the default timeout (300 s) is short for a first deploy on Azure, and the ship says so
    assert any("may need timeout=900" in n for n in notices)


def test_registration_not_allowed_is_refused_with_who_can_fix_it(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    arm = cloudship_azure_target.server.arm
    arm.unregistered_providers.add("microsoft.managedidentity")
    arm.deny_provider_registration = True
    with pytest.raises(AuthError, match=r"Microsoft\.ManagedIdentity/register/action") as refused:
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            **cloudship_azure_target.settings(),
        )
    assert "az provider register -n Microsoft.ManagedIdentity" in str(refused.value)
    assert arm.resources == {}
    assert [p.rsplit("/", 2)[-2:] for _, p in _writes(cloudship_azure_target)] == [
        ["Microsoft.ManagedIdentity", "register"]
    ]


def test_a_registration_longer_than_the_wait_is_a_timeout_with_nothing_created(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    arm = cloudship_azure_target.server.arm
    arm.unregistered_providers.add("microsoft.app")
    arm.provider_registration = 60.0
    with pytest.raises(ShipTimeoutError, match=r"Microsoft\.App still registering") as late:
        ship(
            app_dir,
            "azure",
            name=cloudship_azure_target.name(),
            port=8000,
            **cloudship_azure_target.settings(provider_wait=0.5),
        )
    assert "ship again in a few minutes" in str(late.value)
    assert arm.resources == {}
    assert arm.provider_state("Microsoft.App") == "Registering"  # Azure goes on with it
