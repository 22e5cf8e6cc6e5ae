"""The guide's FastAPI app, shipped for real: the layer-cache advice holds end to end."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from cloudship import ship
from cloudship.events import BuildStep, Event
from cloudship_local.testing import LocalTargetFactory

EXAMPLE = Path(__file__).parents[2] / "examples" / "monitor-app"


@pytest.mark.slow
def test_monitor_app_ships_and_code_change_rebuilds_only_after_copy(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    app = tmp_path / "monitor-app"
    shutil.copytree(EXAMPLE, app)
    target, name = cloudship_local_target.target(), cloudship_local_target.name("monitor")
    first = ship(app, target, name=name)  # port and health path come from its cloudship.toml
    assert first.url is not None
    health = httpx.get(first.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(first.url).json()["app"] == "mi-monitor-app"

    marker = uuid.uuid4().hex
    main = app / "main.py"
    main.write_text(
        main.read_text().replace(
            '"version": os.environ', f'"build": "{marker}",\n        "version": os.environ'
        )
    )
    events: list[Event] = []
    second = ship(app, target, name=name, on_event=events.append)
    steps = [(e.instruction, e.cached) for e in events if isinstance(e, BuildStep)]
    copy_all = next(i for i, (instruction, _) in enumerate(steps) if instruction == "COPY . .")
    assert all(cached for _, cached in steps[1:copy_all]), steps  # pip install came from cache
    assert not steps[copy_all][1]
    assert second.push is not None and second.push.layers_pushed == 1, second.push
    assert httpx.get(second.url or "").json()["build"] == marker
