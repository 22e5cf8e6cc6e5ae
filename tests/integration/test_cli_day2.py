"""Living with a service from the CLI: services, logs -f, destroy of a missing one, bad paths."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner

import cloudship
from cloudship.cli import app
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

runner = CliRunner()


def project_settings(
    cloudship_local_target: LocalTargetFactory,
) -> tuple[list[str], dict[str, object]]:
    """A project of its own, so `services` lists only what this test shipped."""
    project = f"cli{uuid.uuid4().hex[:8]}"
    cloudship_local_target.target(project=project)  # the fixture destroys the test's services there
    values = {
        "registry": cloudship_local_target.registry.address,
        "embedded": False,
        "project": project,
    }
    flags = [part for k, v in values.items() for part in ("--set", f"{k}={v}")]
    return flags, values


def test_services_lists_what_runs(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    flags, _ = project_settings(cloudship_local_target)
    empty = runner.invoke(app, ["services", "--json", *flags])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    names = sorted([cloudship_local_target.name("b"), cloudship_local_target.name("a")])
    for name in names:
        shipped = runner.invoke(app, ["ship", str(app_dir), "--name", name, *flags])
        assert shipped.exit_code == 0, shipped.output
    listed = runner.invoke(app, ["services", "--json", *flags])
    body = json.loads(listed.stdout)
    assert [s["name"] for s in body] == names
    assert all(s["revision"] == "r1" and s["digest"].startswith("sha256:") for s in body)
    assert httpx.get(body[0]["url"]).text == "v1\n"
    human = runner.invoke(app, ["services", *flags])
    assert all(name in human.stdout for name in names) and body[1]["url"] in human.stdout


def test_destroy_of_a_missing_service_is_an_error_unless_missing_ok(
    cloudship_local_target: LocalTargetFactory,
) -> None:
    flags, _ = project_settings(cloudship_local_target)
    missing = runner.invoke(app, ["destroy", "never-shipped", *flags])
    assert missing.exit_code == 1
    assert "service 'never-shipped' is not deployed on target 'local'" in missing.stderr
    assert "destroyed" not in missing.stdout
    tolerated = runner.invoke(app, ["destroy", "never-shipped", "--missing-ok", *flags])
    assert tolerated.exit_code == 0 and "not deployed: nothing to destroy" in tolerated.stdout
    # status, logs and rollback word it the same way
    for command in ("status", "logs", "rollback"):
        same = runner.invoke(app, [command, "never-shipped", *flags])
        assert same.exit_code == 1
        assert "service 'never-shipped' is not deployed on target 'local'" in same.stderr


def test_a_mistyped_path_is_named_as_a_path(tmp_path: Path, monkeypatch: object) -> None:
    result = runner.invoke(app, ["ship", "exampels/monitor-app"])
    assert result.exit_code == 2
    assert "no such directory: exampels/monitor-app" in result.stderr
    assert "is not in the local Docker engine" not in result.stderr


def test_follow_logs_streams_new_lines_across_a_deploy(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    _, settings = project_settings(cloudship_local_target)
    folder = write_app(tmp_path / "web", "v1")
    name = cloudship_local_target.name("logs")
    first = cloudship.ship(folder, "local", name=name, settings=settings)
    stop = threading.Event()
    lines: list[str] = []

    def follow() -> None:
        for line in cloudship.follow_logs(name, "local", tail=0, stop=stop, **settings):
            lines.append(line)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        assert first.url is not None
        wait_for(
            lambda: (
                httpx.get(first.url).status_code == 200
                and any("response:200" in line for line in lines)
            )
        )
        write_app(folder, "v2")
        second = cloudship.ship(folder, "local", name=name, settings=settings)
        assert second.revision == "r2"
        wait_for(
            lambda: (
                httpx.get(first.url + "/missing").status_code == 404
                and any("response:404" in line for line in lines)
            )
        )
    finally:
        stop.set()
        reader.join(timeout=10)
    assert not reader.is_alive(), "setting stop ends the stream"
    marker = next(i for i, line in enumerate(lines) if "r2 is serving now" in line)
    # busybox httpd logs no path: r1 answered 200s, r2 (after the marker) the 404
    assert any("response:200" in line for line in lines[:marker])
    assert any("response:404" in line for line in lines[marker:])
    assert not any("response:404" in line for line in lines[:marker])


def wait_for(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
