"""The `cloudship` command end to end, in process (typer's runner), on the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cloudship.cli import app
from cloudship_local.testing import LocalTargetFactory

runner = CliRunner()


def test_ship_status_logs_rollback_destroy(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    name = cloudship_local_target.name("cli")
    cloudship_local_target.target()  # registers cleanup for this registry
    settings = [
        "--set",
        f"registry={cloudship_local_target.registry.address}",
        "--set",
        "embedded=false",
    ]

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
    assert "no healthy revision older than r1" in refused.stderr

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


def test_ship_to_two_named_targets(
    app_dir: Path,
    cloudship_local_target: LocalTargetFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "two.toml"
    registry = cloudship_local_target.registry.address
    config.write_text(
        "".join(
            f'[targets.{name}]\nregistry = "local"\nruntime = "local"\n'
            f'local = {{ registry = "{registry}", embedded = false, project = "cli{name}" }}\n'
            for name in ("a", "b")
        )
    )
    monkeypatch.setenv("CLOUDSHIP_CONFIG", str(config))
    name = cloudship_local_target.name("two")
    shipped = runner.invoke(
        app, ["ship", str(app_dir), "--name", name, "-t", "a", "-t", "b", "--json"]
    )
    assert shipped.exit_code == 0, shipped.output
    listed = runner.invoke(app, ["targets"])
    assert "a (cloudship.toml: local + local)" in listed.stdout
    body = json.loads(shipped.stdout)
    assert [s["target"] for s in body["shipped"]] == ["a", "b"] and body["failed"] == {}
    assert "a pull" in shipped.stderr and "b pull" in shipped.stderr, "each target's phases"
    for target in ("a", "b"):
        assert runner.invoke(app, ["destroy", name, "-t", target]).exit_code == 0
