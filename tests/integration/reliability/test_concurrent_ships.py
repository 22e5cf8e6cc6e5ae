"""Ships of one service at the same time: refused with ConcurrentShipError naming the ship
under way (never two successes with one revision, never a raw engine error), or queued with
lock_wait and then each its own revision."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from cloudship import CloudshipError, ConcurrentShipError, ship, status
from cloudship.shipment import Shipment
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app


def race(
    n: int, tmp_path: Path, name: str, target_factory: LocalTargetFactory, **settings: object
) -> tuple[list[Shipment], list[BaseException]]:
    apps = [write_app(tmp_path / f"c{i}", f"c{i}") for i in range(n)]
    targets = [target_factory.target(**settings) for _ in range(n)]
    barrier = threading.Barrier(n)
    done: list[Shipment] = []
    failed: list[BaseException] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            done.append(ship(apps[i], targets[i], name=name))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, failed


def test_concurrent_ships_one_wins_the_others_are_told_who(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    name = cloudship_local_target.name("race")
    ship(write_app(tmp_path / "v1", "v1"), cloudship_local_target.target(), name=name)
    done, failed = race(3, tmp_path, name, cloudship_local_target)
    assert all(isinstance(exc, CloudshipError) for exc in failed), failed
    refused = [exc for exc in failed if isinstance(exc, ConcurrentShipError)]
    assert len(done) >= 1 and len(done) + len(refused) == 3, (done, failed)
    assert all("ship of" in exc.holder for exc in refused)
    assert len({s.revision for s in done}) == len(done)
    serving = status(name, cloudship_local_target.target()).current
    assert serving is not None and serving.id == max(
        (s.revision for s in done), key=lambda r: int(r[1:])
    )
    assert done[0].url is not None
    assert httpx.get(done[0].url).headers["X-Cloudship-Revision"] == serving.id


def test_with_lock_wait_concurrent_ships_queue_and_each_gets_its_revision(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    name = cloudship_local_target.name("queue")
    ship(write_app(tmp_path / "v1", "v1"), cloudship_local_target.target(), name=name)
    done, failed = race(3, tmp_path, name, cloudship_local_target, lock_wait=120)
    assert failed == []
    assert sorted(s.revision for s in done) == ["r2", "r3", "r4"]
    current = status(name, cloudship_local_target.target())
    assert current.current is not None and current.current.id == "r4"
    states = sorted((r.id, r.state) for r in current.revisions)
    assert states == [("r1", "standby"), ("r2", "standby"), ("r3", "standby"), ("r4", "serving")]
