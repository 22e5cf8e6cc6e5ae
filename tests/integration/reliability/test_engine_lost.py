"""The Docker engine goes away mid-deploy (its socket is cut through a relay; the shared
dockerd is never touched): the ship ends in a CloudshipError, never a raw requests or urllib3
error, the proxy keeps serving the old revision, and ``status`` tidies the half-made one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudship import EngineError, ship, status
from cloudship.config import ConfigFile
from cloudship.engine import Engine
from cloudship.events import DeployPhase, Event
from cloudship.testing.faults import EngineSocketProxy
from cloudship_local import provider
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app
from tests.integration.reliability.conftest import Poller


@pytest.mark.parametrize("phase", ["pull", "start", "probe", "switch"])
def test_engine_lost_mid_deploy_is_an_engine_error_and_the_service_stays_up(
    phase: str, tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("eng")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    with EngineSocketProxy() as relay:
        # Not through the factory: its teardown destroys through every target it made.
        via_relay = provider.target(
            ConfigFile(),
            {
                "registry": cloudship_local_target.registry.address,
                "embedded": False,
                "docker_host": relay.docker_host,
            },
        )

        def cut_at(event: Event) -> None:
            if isinstance(event, DeployPhase) and event.phase == phase:
                relay.cut()

        with Poller(first.url) as poller, pytest.raises(EngineError) as lost:
            ship(
                write_app(tmp_path / "v2", "v2"),
                via_relay,
                name=name,
                engine=Engine(relay.docker_host),
                on_event=cut_at,
            )
    assert "lost the Docker engine" in lost.value.message or "not reachable" in lost.value.message
    expected = "v2" if phase == "switch" else "v1"
    assert httpx.get(first.url).text.strip() == expected
    assert poller.failures == [], poller.summary()
    after = status(name, target)  # through the real engine: tidies what the lost ship left
    assert after.current is not None
    running = cloudship_engine.client.containers.list(
        filters={"label": f"org.cloudship.service={name}"}
    )
    assert sorted(c.name for c in running) == sorted(
        [f"cloudship-{name}-proxy", f"cloudship-{name}-{after.current.id}"]
    )
