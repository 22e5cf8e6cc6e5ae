"""The registry fails the way registries and networks fail (cloudship.testing.faults): calls
that may be repeated are retried with bounded back-off, a hung registry ends the ship with
TimeoutError within its timeout, and the serving revision keeps answering throughout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudship import ShipTimeoutError, ship
from cloudship.testing.faults import FaultyRegistry
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app
from tests.integration.reliability.conftest import Poller


@pytest.fixture
def faulty(cloudship_registry: ThrowawayRegistry) -> Iterator[FaultyRegistry]:
    with FaultyRegistry(upstream=cloudship_registry.address) as proxy:
        yield proxy


def test_one_500_on_the_manifest_put_is_retried(
    tmp_path: Path, faulty: FaultyRegistry, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = (
        cloudship_local_target.target(registry=faulty.address),
        cloudship_local_target.name("flt"),
    )
    faulty.fail("PUT", r"/manifests/", status=500, times=1)
    shipped = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert shipped.url is not None and httpx.get(shipped.url).text.strip() == "v1"
    puts = [what for method, path, what in faulty.log if method == "PUT" and "/manifests/" in path]
    assert puts[0] == "500" and puts[-1] == "201", faulty.log


def test_a_manifest_refused_for_a_blob_still_uploading_is_retried(
    tmp_path: Path, faulty: FaultyRegistry, cloudship_local_target: LocalTargetFactory
) -> None:
    """Two pushes of the same layers at once race in the registry and the loser's manifest is
    refused MANIFEST_BLOB_UNKNOWN (the distribution spec's code; seen in CI with two targets on
    one registry): by the next attempt the blobs are there."""
    target, name = (
        cloudship_local_target.target(registry=faulty.address),
        cloudship_local_target.name("flt"),
    )
    faulty.fail(
        "PUT",
        r"/manifests/",
        status=400,
        error=("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"),
    )
    shipped = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert shipped.url is not None and httpx.get(shipped.url).text.strip() == "v1"
    puts = [what for method, path, what in faulty.log if method == "PUT" and "/manifests/" in path]
    assert puts[0] == "400" and puts[-1] == "201", faulty.log


def test_5xx_429_and_resets_on_blobs_and_pulls_are_retried_while_the_old_revision_serves(
    tmp_path: Path, faulty: FaultyRegistry, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = (
        cloudship_local_target.target(registry=faulty.address),
        cloudship_local_target.name("flt"),
    )
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    faulty.fail("GET", r"^/v2/$", status=503, times=1)  # the push starts with this ping
    faulty.fail("POST", r"/blobs/uploads/", status=429, times=1)
    faulty.fail("PUT", r"/blobs/uploads/", action="reset", times=1)
    # the pull: HEAD when the engine has the image (just pushed) and only checks it, else GET
    faulty.fail(None, r"/manifests/sha256:", status=502, times=1)
    with Poller(first.url) as poller:
        second = ship(write_app(tmp_path / "v2", "v2"), target, name=name)
    assert second.revision == "r2"
    poller.assert_switched("v1", "v2")
    injected = [what for _, _, what in faulty.log if what in ("503", "429", "reset", "502")]
    assert sorted(injected) == ["429", "502", "503", "reset"], faulty.log


@pytest.mark.parametrize("where", ["mid-push", "everything"])
def test_a_hung_registry_ends_in_timeout_within_the_timeout(
    where: str, tmp_path: Path, faulty: FaultyRegistry, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = (
        cloudship_local_target.target(registry=faulty.address),
        cloudship_local_target.name("hang"),
    )
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    if where == "mid-push":
        faulty.fail(None, r"/blobs/uploads/", action="hang", times=None)
    else:
        faulty.hang()
    budget = 12.0
    started = time.monotonic()
    with Poller(first.url) as poller, pytest.raises(ShipTimeoutError) as timed_out:
        ship(write_app(tmp_path / "v2", "v2"), target, name=name, timeout=budget)
    took = time.monotonic() - started
    faulty.release()
    assert took < budget + 3, f"took {took:.1f} s for a {budget:.0f} s timeout"
    assert "urllib3" not in str(timed_out.value)
    assert poller.failures == [] and poller.answers() == ["v1"], poller.summary()
