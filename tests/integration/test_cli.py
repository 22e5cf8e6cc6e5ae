"""The `cloudship` command end to end, in process (typer's runner), on the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cloudship.cli import app
from cloudship.testing.plugin import LocalTargetFactory

runner = CliRunner()


def test_ship_status_logs_rollback_destroy(app_dir: Path, local_target: LocalTargetFactory) -> None:
    name = local_target.name("cli")
    local_target.target()  # registers cleanup for this registry
    settings = ["--set", f"registry={local_target.registry.address}", "--set", "embedded=false"]

    shipped = runner.invoke(app, ["ship", str(app_dir), "--name", name, "--json", *settings])
    assert shipped.exit_code == 0, shipped.output
    result = json.loads(shipped.stdout)
    assert result["changed"] is True and result["digest"].startswith("sha256:")
    assert httpx.get(result["url"]).text == "v1\n"

    again = runner.invoke(app, ["ship", str(app_dir), "--name", name, *settings])
    assert again.exit_code == 0
    assert "unchanged" in again.stdout and result["url"] in again.stdout

    state = runner.invoke(app, ["status", name, "--json", *settings])
    assert json.loads(state.stdout)["current"]["id"] == "r1"

    logged = runner.invoke(app, ["logs", name, "--tail", "5", *settings])
    assert logged.exit_code == 0 and "response:200" in logged.stdout

    refused = runner.invoke(app, ["rollback", name, *settings])
    assert refused.exit_code == 1
    assert "no revision before r1" in refused.stderr

    gone = runner.invoke(app, ["destroy", name, *settings])
    assert gone.exit_code == 0
    missing = runner.invoke(app, ["status", name, *settings])
    assert missing.exit_code == 1 and "not deployed" in missing.stderr


def test_bad_input_exit_code_and_targets() -> None:
    bad = runner.invoke(app, ["ship", "./no-such-dir"])
    assert bad.exit_code == 2 and "no such directory" in bad.stderr
    listed = runner.invoke(app, ["targets", "--json"])
    assert "local" in json.loads(listed.stdout)
    unknown = runner.invoke(app, ["status", "x", "--target", "nowhere"])
    assert unknown.exit_code == 2 and "unknown target 'nowhere'" in unknown.stderr
