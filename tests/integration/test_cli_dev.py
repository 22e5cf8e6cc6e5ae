"""``cloudship.dev()`` / ``cloudship dev``: the save → serving loop on the real engine.

The test edits the app from ``on_iteration`` (which runs between two passes, as a person saving
in an editor would while the loop waits), so each pass sees exactly the edit made before it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cloudship import BuildError, HealthCheckFailed, SourceError
from cloudship.cli import app
from cloudship.dev import DevIteration, dev
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

EXITS = '["busybox", "false"]'


def test_each_save_ships_failures_keep_the_last_good_version(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    # content of this run's own: a layer the registry has from an earlier run is not pushed
    run = uuid.uuid4().hex[:8]
    v1, v2, v3 = (f"{v}-{run}" for v in ("v1", "v2", "v3"))
    folder = write_app(tmp_path / "web", v1)
    (folder / ".dockerignore").write_text("notes.txt\n")
    target = cloudship_local_target.target()
    name = cloudship_local_target.name("dev")
    seen: list[DevIteration] = []
    answers: list[str] = []

    def edit(iteration: DevIteration) -> None:
        seen.append(iteration)
        answers.append(httpx.get(iteration.url).text if iteration.url else "")
        step = iteration.number
        if step == 1:
            (folder / "notes.txt").write_text("not in the build context\n")
            (folder / "www" / "index.html").write_text(v2 + "\n")
        elif step == 2:
            (folder / "Dockerfile").write_text(
                (folder / "Dockerfile").read_text().replace("COPY www", "RUN false\nCOPY www")
            )
        elif step == 3:
            write_app(folder, v2, cmd=EXITS)  # builds, then never answers: gate fails
        elif step == 4:
            write_app(folder, v3)

    history = dev(
        folder,
        target,
        name=name,
        timeout=60,
        iterations=5,
        debounce=0.3,  # write_app writes two files: one batch even on a loaded machine
        on_iteration=edit,
        rm=True,
    )

    assert [i.number for i in history] == [1, 2, 3, 4, 5]
    first, edited, broken, unhealthy, fixed = history
    assert first.ok and first.changed == () and first.shipment is not None
    assert first.shipment.revision == "r1"
    # .dockerignore'd notes.txt never counts as a change
    assert edited.ok and edited.changed == ("www/index.html",)
    assert edited.shipment is not None and edited.shipment.build is not None
    assert edited.shipment.build.cache_hits >= 1  # the layers before COPY www came from cache
    assert edited.shipment.revision == "r2" and edited.shipment.push is not None
    assert 0 < edited.shipment.push.bytes_pushed < 100_000  # the www layer, not busybox again
    assert 0 < edited.seconds < 60
    assert isinstance(broken.error, BuildError) and broken.changed == ("Dockerfile",)
    assert isinstance(unhealthy.error, HealthCheckFailed)
    assert unhealthy.error.rolled_back_to == "r2"
    assert fixed.ok and fixed.shipment is not None
    assert set(fixed.changed) == {"Dockerfile", "www/index.html"}
    # what served after each pass: the new version, or the last good one after a failure
    assert answers == [f"{v}\n" for v in (v1, v2, v2, v2, v3)]
    assert broken.url == unhealthy.url == edited.url
    # rm=True destroyed the service once the loop stopped
    assert target.runtime.status(name) is None


def test_a_stop_event_ends_the_loop_and_leaves_the_service(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    import threading

    folder = write_app(tmp_path / "web", "v1")
    target = cloudship_local_target.target()
    name = cloudship_local_target.name("dev")
    stop = threading.Event()
    history = dev(folder, target, name=name, stop=stop, on_iteration=lambda _: stop.set())
    assert len(history) == 1 and history[0].ok
    status = target.runtime.status(name)
    assert status is not None and status.url == history[0].url
    assert httpx.get(status.url or "").text == "v1\n"


def test_bad_input_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such directory"):
        dev(tmp_path / "missing", "local")
    result = CliRunner().invoke(app, ["dev", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such directory" in result.stderr
