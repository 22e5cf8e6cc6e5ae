"""The adapter's deadline math at Azure's pace: the fake plays every wait of a first deploy
(provider registration, environment provisioning, role propagation) at ``AZURE_DURATIONS``
times one scale, and the ship's timeout is scaled the same way, so the test sees what a user
on Azure would see with those timeouts — in seconds instead of minutes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloudship import ship
from cloudship.errors import HealthCheckFailed, ShipTimeoutError
from cloudship.options import DEFAULT_TIMEOUT
from cloudship_azure.fake.arm import AZURE_DURATIONS
from cloudship_azure.testing import AzureTargetFactory
from tests.conftest import write_app

SCALE = 1 / 15  # Azure's 5 minutes → 20 s


@pytest.mark.slow
def test_a_first_deploy_at_azures_pace_needs_more_than_the_default_timeout(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    arm = cloudship_azure_target.server.arm
    arm.set_time_scale(SCALE)
    arm.unregistered_providers.add("microsoft.app")
    waits = sum(AZURE_DURATIONS.values())  # what a first deploy into a new subscription waits
    assert waits > DEFAULT_TIMEOUT  # so the default timeout cannot fit it on Azure
    app = write_app(tmp_path / "app", "v1")
    settings = cloudship_azure_target.settings(poll_interval=0.2)
    # the default timeout, at the fake's pace: refused at its deadline, not after it
    started = time.monotonic()
    with pytest.raises((ShipTimeoutError, HealthCheckFailed)):
        ship(
            app,
            "azure",
            name=cloudship_azure_target.name("web"),
            port=8000,
            timeout=DEFAULT_TIMEOUT * SCALE,
            **settings,
        )
    # the registration wait (bounded by provider_wait, not by the ship's timeout) comes on
    # top; a ship that did not stop at its deadline would wait out the whole grant as well
    late = time.monotonic() - started - DEFAULT_TIMEOUT * SCALE
    assert late < AZURE_DURATIONS["provider_registration"] * SCALE + 15
    # a timeout that covers Azure's waits (with room for the build and the probe) succeeds,
    # through the registration, the environment and the propagation the first try left
    shipped = ship(
        app,
        "azure",
        name=cloudship_azure_target.name("web"),
        port=8000,
        timeout=(waits + 300) * SCALE + 30,
        **settings,
    )
    assert shipped.revision == "r1"
