"""Two ships of one container app at once: one wins, the other is refused with
ConcurrentShipError naming the winner's ship, and never moves traffic — on the fake's ETags
(If-Match → 412 PreconditionFailed) and, for the tag check, also on an ARM that ignores
If-Match (``etags=False``: the Microsoft.App spec documents no ETag for container apps)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudship import CloudshipError, ConcurrentShipError, ship, status
from cloudship.events import DeployPhase, Event
from cloudship.shipment import Shipment
from cloudship_azure.clients import AzureClients
from cloudship_azure.containerapps import SHIP_TAG
from cloudship_azure.settings import AzureSettings
from cloudship_azure.testing import AzureTargetFactory
from tests.conftest import write_app

OTHER = "other-host:4242:0abcde"


def _clients(factory: AzureTargetFactory) -> AzureClients:
    settings = factory.settings()
    credential = settings.pop("credential")
    return AzureClients(AzureSettings(**settings), credential)


def _other_ship_writes(factory: AzureTargetFactory, name: str) -> None:
    """Another ship's write of the app, through azure-mgmt-appcontainers' own PATCH."""
    from azure.mgmt.appcontainers.models import ContainerApp

    apps = _clients(factory).apps.container_apps
    found = apps.get("cloudship-test", name)
    tags = {**(found.tags or {}), SHIP_TAG: OTHER}
    apps.begin_update("cloudship-test", name, ContainerApp(location="eastus", tags=tags)).result()


def _interleaved(factory: AzureTargetFactory, name: str, phase: str) -> tuple[Any, list[str]]:
    """An ``on_event`` that lets the other ship write once, when this one reaches ``phase``;
    and the list that records that it did."""
    wrote: list[str] = []

    def hook(event: Event) -> None:
        if isinstance(event, DeployPhase) and event.phase == phase and not wrote:
            _other_ship_writes(factory, name)
            wrote.append(phase)

    return hook, wrote


def _serving(factory: AzureTargetFactory, name: str) -> str | None:
    current = status(name, "azure", **factory.settings()).current
    return current.id if current is not None else None


def test_a_write_between_read_and_put_is_a_412_and_a_concurrent_ship_error(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """Deterministic: the other ship writes after this one read the app and before its PUT
    (at the "start" phase): the PUT's If-Match is stale, ARM answers 412, nothing changes."""
    arm = cloudship_azure_target.server.arm
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "v1")
    ship(app, "azure", name=name, port=8000, **settings)
    revisions_before = len(status(name, "azure", **settings).revisions)

    write_app(app, "v2")
    hook, seen = _interleaved(cloudship_azure_target, name, "start")
    with pytest.raises(ConcurrentShipError) as refused:
        ship(app, "azure", name=name, port=8000, on_event=hook, **settings)
    assert OTHER in refused.value.holder and "traffic was not switched" in str(refused.value)
    assert any(status_ == 412 for _, _, status_ in arm.log)
    assert _serving(cloudship_azure_target, name) == "r1"
    assert len(status(name, "azure", **settings).revisions) == revisions_before  # no revision
    assert seen == ["start"]


@pytest.mark.parametrize("etags", [True, False], ids=["etags", "if-match-ignored"])
def test_a_write_during_the_gate_stops_the_promote(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory, etags: bool
) -> None:
    """Deterministic: the other ship writes while this one probes its new revision: this ship
    does not move traffic (the app's ship tag names the other), with or without ETags."""
    arm = cloudship_azure_target.server.arm
    arm.etags = etags
    name = cloudship_azure_target.name("web")
    settings = cloudship_azure_target.settings()
    app = write_app(tmp_path / "app", "v1")
    ship(app, "azure", name=name, port=8000, **settings)

    write_app(app, "v2")
    hook, _ = _interleaved(cloudship_azure_target, name, "probe")
    with pytest.raises(ConcurrentShipError) as refused:
        ship(app, "azure", name=name, port=8000, on_event=hook, **settings)
    assert refused.value.holder == f"ship {OTHER}"
    assert _serving(cloudship_azure_target, name) == "r1"  # the new r2 took no traffic
    states = {r.id: r.state for r in status(name, "azure", **settings).revisions}
    assert states["r1"] == "serving" and states["r2"] != "serving"


def test_two_ships_racing_one_wins_the_other_is_told_who(
    tmp_path: Path, cloudship_azure_target: AzureTargetFactory
) -> None:
    """Two ships of a new app started together: never two successes, the loser names the
    winner's ship, and the winner's revision serves."""
    name = cloudship_azure_target.name("race")
    apps = [write_app(tmp_path / f"c{i}", f"c{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    done: dict[int, Shipment] = {}
    failed: list[BaseException] = []

    def one(i: int) -> None:
        settings = cloudship_azure_target.settings()
        barrier.wait()
        try:
            done[i] = ship(apps[i], "azure", name=name, port=8000, **settings)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(exc, CloudshipError) for exc in failed), failed
    assert len(done) >= 1 and len(done) + len(failed) == 2, (done, failed)
    assert all(isinstance(exc, ConcurrentShipError) for exc in failed), failed
    # never two successes with one revision
    assert len({s.revision for s in done.values()}) == len(done)
    final = status(name, "azure", **cloudship_azure_target.settings())
    assert final is not None and final.current is not None
    winner = max(done, key=lambda i: int(done[i].revision[1:]))
    last = done[winner]
    assert final.current.id == last.revision and final.current.digest == last.digest
    for exc in failed:
        assert isinstance(exc, ConcurrentShipError) and exc.holder.startswith("ship ")
    assert last.url is not None
    fqdn = last.url.removeprefix("https://")
    answer = httpx.get(f"{cloudship_azure_target.runner.gateway_url}/{fqdn}/", timeout=5).text
    assert answer == f"c{winner}\n"
