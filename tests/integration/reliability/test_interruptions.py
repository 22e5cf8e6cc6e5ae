"""A ship killed at any phase (SIGINT, SIGTERM, SIGKILL) leaves the previous revision serving,
or the new one after it passed its gate; ``status`` (or the next ship) tidies what it left, and
the lock of a killed ship is free again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cloudship import ConcurrentShipError, ServiceNotFoundError, ship, status
from cloudship.engine import Engine
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

CHILD = Path(__file__).with_name("ship_child.py")
REPO = Path(__file__).parents[3]
#: phases of a local deploy, in order; from "switch" on, the new revision has passed its gate
PHASES = ["pull", "start", "probe", "switch", "done"]


def start_child(app: Path, name: str, registry: str, phase: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(app), name, registry, phase],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("AT "):
            return child
    child.wait()
    raise AssertionError(f"the child never reached {phase}: {child.stderr.read()[-2000:]}")  # type: ignore[union-attr]


def running_revisions(engine: Engine, name: str) -> list[str]:
    found = engine.client.containers.list(filters={"label": f"org.cloudship.service={name}"})
    return sorted(c.name for c in found if not c.name.endswith("-proxy"))


#: SIGINT runs the ship's own cleanup (KeyboardInterrupt); SIGKILL runs none. A SIGTERM to this
#: child (the API, which sets no SIGTERM handler; the CLI turns SIGTERM into SIGINT) is the
#: kernel's default action, exactly a SIGKILL for the ship: it is kept once, at the phase with
#: the most to leave behind (a new revision started, not yet proven), and marked slow.
KILLS = [
    *(
        pytest.param(phase, sig, id=f"{phase}-{sig.name}")
        for phase in PHASES
        for sig in (signal.SIGINT, signal.SIGKILL)
    ),
    pytest.param("probe", signal.SIGTERM, id="probe-SIGTERM", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("phase", "sig"), KILLS)
def test_a_ship_killed_at_any_phase_leaves_the_service_up(
    phase: str,
    sig: signal.Signals,
    tmp_path: Path,
    cloudship_local_target: LocalTargetFactory,
    cloudship_engine: Engine,
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("sig")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    child = start_child(
        write_app(tmp_path / "v2", "v2"), name, cloudship_local_target.registry.address, phase
    )
    child.send_signal(sig)
    child.wait(timeout=30)
    assert child.returncode != 0 or phase == "done"
    if sig != signal.SIGINT:  # no handler ran: the kernel ended the ship (see KILLS)
        assert child.returncode == -sig, child.returncode
    expected = "v2" if PHASES.index(phase) > PHASES.index("switch") else "v1"
    if phase == "switch":
        # Killed while switching: the previous revision or the new, proven one serves (the
        # issue's rule); nginx may still finish a reload it had begun, so v1 may become v2.
        answers = [httpx.get(first.url, timeout=2).text.strip() for _ in range(10)]
        assert set(answers) <= {"v1", "v2"}, answers
        time.sleep(1.0)  # a reload under way has finished by now
        expected = httpx.get(first.url, timeout=2).text.strip()
    # Right after the kill, before anything tidied: something proven answers.
    for _ in range(10):
        assert httpx.get(first.url, timeout=2).text.strip() == expected

    current = status(name, target)  # tidies: the lock of the dead ship is free
    assert current.current is not None
    assert current.current.id == ("r2" if expected == "v2" else "r1")
    assert running_revisions(cloudship_engine, name) == [f"cloudship-{name}-{current.current.id}"]
    listed = {r.id for r in current.revisions}
    assert listed <= {"r1", "r2"} and current.current.id in listed

    third = ship(write_app(tmp_path / "v3", "v3"), target, name=name)
    assert (
        httpx.get(first.url).text.strip() == "v3" and third.previous_revision == current.current.id
    )


def test_a_ship_under_way_refuses_another_and_its_death_frees_the_lock(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("lock")
    ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    child = start_child(
        write_app(tmp_path / "v2", "v2"), name, cloudship_local_target.registry.address, "probe"
    )
    try:
        with pytest.raises(ConcurrentShipError) as refused:
            ship(write_app(tmp_path / "v3", "v3"), target, name=name)
        assert f"pid {child.pid}" in refused.value.holder
        assert "ship of" in refused.value.holder
        # status() leaves a ship under way alone: its revision in progress is neither listed
        # nor tidied away.
        during = status(name, target)
        assert [r.id for r in during.revisions] == ["r1"]
        assert f"cloudship-{name}-r2" in running_revisions(cloudship_engine, name)
    finally:
        child.kill()
        child.wait()
    again = ship(write_app(tmp_path / "v3", "v3"), target, name=name)
    assert again.url is not None and httpx.get(again.url).text.strip() == "v3"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_first_ship_killed_under_its_gate_never_served_and_leaves_nothing(
    sig: signal.Signals,
    tmp_path: Path,
    cloudship_local_target: LocalTargetFactory,
    cloudship_engine: Engine,
) -> None:
    """A first deploy starts its proxy beside the gate: until the gate passes, the stable port
    answers 503, not the unproven revision (which runs and would answer). Killed there, the
    ship leaves nothing once its own cleanup (SIGINT) or the next look (SIGKILL) has run."""
    target, name = cloudship_local_target.target(), cloudship_local_target.name("sig")
    child = start_child(
        write_app(tmp_path / "v1", "v1"), name, cloudship_local_target.registry.address, "probe"
    )
    try:
        proxy_name = f"cloudship-{name}-proxy"
        for _ in range(100):  # the proxy starts on a thread: give it its time
            found = cloudship_engine.client.containers.list(filters={"name": proxy_name})
            if found and found[0].attrs["NetworkSettings"]["Ports"].get("80/tcp"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the first deploy's proxy never started")
        port = found[0].attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        assert running_revisions(cloudship_engine, name) == [f"cloudship-{name}-r1"]
        answers = set()
        for _ in range(10):
            try:
                answers.add(httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code)
            except httpx.TransportError:
                answers.add(0)  # nginx not listening yet: refused, also never the app
            time.sleep(0.02)
        assert answers <= {0, 503} and 503 in answers, answers
    finally:
        child.send_signal(sig)
        child.wait(timeout=30)
    if sig == signal.SIGKILL:
        with pytest.raises(ServiceNotFoundError):  # it tidies the pending proxy and r1
            status(name, target)
    left = cloudship_engine.client.containers.list(
        all=True, filters={"label": f"org.cloudship.service={name}"}
    )
    assert left == []
    shipped = ship(write_app(tmp_path / "v1b", "v1"), target, name=name)
    assert shipped.url is not None and httpx.get(shipped.url).text.strip() == "v1"
