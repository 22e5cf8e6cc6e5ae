"""A good upgrade (and a rollback) on the local target drops no request: a monitor polling the
stable URL every 50 ms on fresh connections sees only the old answer, then only the new one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudship import HealthCheckFailed, rollback, ship, status
from cloudship.engine import Engine
from cloudship_local.runtime import wait_for_retirements
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app
from tests.integration.reliability.conftest import Poller, crashing_app, slow_app

#: docker-init passes SIGTERM to sh, whose trap takes 3 s to exit, as a draining app would
SLOW_STOP = '["sh", "-c", "trap \'sleep 3; exit 0\' TERM; busybox httpd -f -p 8000 -h /www & wait"]'


def test_good_upgrade_drops_no_request_and_the_gated_container_serves(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    with Poller(first.url) as poller:
        second = ship(write_app(tmp_path / "v2", "v2"), target, name=name)
    assert second.revision == "r2" and second.url == first.url
    poller.assert_switched("v1", "v2")
    # The container that passed the gate is the one serving: started once, never restarted.
    serving = cloudship_engine.client.containers.get(f"cloudship-{name}-r2")
    assert serving.attrs["RestartCount"] == 0
    assert serving.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert httpx.get(first.url).headers["X-Cloudship-Revision"] == "r2"
    wait_for_retirements()  # r1 stops after ship() returned, once its connections drained
    assert cloudship_engine.client.containers.get(f"cloudship-{name}-r1").status == "exited"


def test_ship_returns_while_the_old_revision_stops_and_the_next_ship_waits_for_it(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    """The old revision's graceful stop is its own time (here 3 s): ship() returns once the new
    one serves, the stop goes on under the service's lock, and the next ship of this process
    waits for it (no ConcurrentShipError, whatever lock_wait is)."""
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    ship(write_app(tmp_path / "v1", "v1", cmd=SLOW_STOP), target, name=name)
    second = ship(write_app(tmp_path / "v2", "v2", cmd=SLOW_STOP), target, name=name)
    assert second.url is not None and httpx.get(second.url).text.strip() == "v2"
    r1 = cloudship_engine.client.containers.get(f"cloudship-{name}-r1")
    assert r1.status == "running"  # still stopping: the ship did not wait for it
    third = ship(write_app(tmp_path / "v3", "v3", cmd=SLOW_STOP), target, name=name)
    assert third.revision == "r3" and httpx.get(second.url).text.strip() == "v3"
    r1.reload()
    assert r1.status == "exited"  # the third ship waited for r1's retirement first
    wait_for_retirements()
    states = {r.id: r.state for r in status(name, target).revisions}
    assert states == {"r3": "serving", "r2": "standby", "r1": "standby"}
    r2 = cloudship_engine.client.containers.get(f"cloudship-{name}-r2")
    assert r2.status == "exited"


def test_good_upgrade_drops_no_request_of_a_keep_alive_client(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    """nginx's graceful reload closes idle keep-alive connections of its old workers; a client
    that keeps one open must still see every request answered (no reset mid-request)."""
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    with Poller(first.url, keepalive=True) as poller:
        ship(write_app(tmp_path / "v2", "v2"), target, name=name)
        ship(write_app(tmp_path / "v3", "v3"), target, name=name)
    assert poller.failures == [], poller.summary()
    assert poller.answers() == ["v1", "v2", "v3"], poller.summary()


def test_upgrade_to_an_app_that_takes_seconds_to_start_drops_no_request(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    first = ship(slow_app(tmp_path / "v1", "v1", delay=2), target, name=name)
    assert first.url is not None
    with Poller(first.url) as poller:
        ship(slow_app(tmp_path / "v2", "v2", delay=3), target, name=name)
    poller.assert_switched("v1", "v2")


def test_failed_upgrade_and_rollback_drop_no_request(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    ship(write_app(tmp_path / "v2", "v2"), target, name=name)
    assert first.url is not None
    with Poller(first.url) as poller:
        with pytest.raises(HealthCheckFailed) as failed:
            ship(crashing_app(tmp_path / "bad"), target, name=name, timeout=30)
        back = rollback(name, target)
    assert failed.value.rolled_back_to == "r2"
    assert "exited with code 3" in str(failed.value)
    assert back.revision == "r1"
    poller.assert_switched("v2", "v1")
    states = {r.id: r.state for r in status(name, target).revisions}
    assert states == {"r1": "serving", "r2": "standby"}


def test_a_proxy_stopped_by_hand_is_started_again_by_the_next_ship(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    cloudship_engine.client.containers.get(f"cloudship-{name}-proxy").stop()
    second = ship(write_app(tmp_path / "v2", "v2"), target, name=name)
    assert second.url == first.url and second.url is not None
    assert httpx.get(second.url).text.strip() == "v2"


def test_an_unchanged_ship_does_not_wait_for_the_last_ships_retirement(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    """What serves is settled when ship() returns: an unchanged ship right after it says so
    while the old revision is still stopping (its stop takes 3 s here)."""
    target, name = cloudship_local_target.target(), cloudship_local_target.name("zd")
    ship(write_app(tmp_path / "v1", "v1", cmd=SLOW_STOP), target, name=name)
    v2 = write_app(tmp_path / "v2", "v2", cmd=SLOW_STOP)
    ship(v2, target, name=name)
    again = ship(v2, target, name=name)
    assert not again.changed and again.revision == "r2"
    r1 = cloudship_engine.client.containers.get(f"cloudship-{name}-r1")
    assert r1.status == "running"  # the no-op did not wait for r1's stop
    wait_for_retirements()
