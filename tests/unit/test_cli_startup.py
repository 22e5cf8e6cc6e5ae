"""The command's surface: --version, clean help, and what starting it loads (fast --help)."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import cloudship
from cloudship.cli import app

runner = CliRunner()
COMMANDS = ("ship", "dev", "plan", "status", "logs", "rollback", "destroy", "services", "targets")


def loaded_by(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"cloudship {cloudship.__version__}\n"


def test_help_lists_every_command_without_type_metavars() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in top.stdout
    for command in COMMANDS:
        shown = runner.invoke(app, [command, "--help"])
        assert shown.exit_code == 0, shown.output
        assert "<str>" not in shown.stdout and "<list" not in shown.stdout, shown.stdout
        assert "..." not in top.stdout.split("Commands:")[1], "a summary line was cut"
    dev = runner.invoke(app, ["dev", "--help"]).stdout
    for flag in ("--rm", "--debounce", "--port", "--name", "--target", "--env"):
        assert flag in dev


def test_help_does_not_load_pydantic_or_docker() -> None:
    code = "import sys; sys.argv = ['cloudship', '--help']\nfrom cloudship.cli import main\n"
    code += "try:\n    main()\nexcept SystemExit:\n    pass"
    loaded = loaded_by(code)
    for heavy in ("pydantic", "pydantic_settings", "docker", "httpx", "rich"):
        assert heavy not in loaded


def test_the_api_import_does_not_load_pydantic_or_docker() -> None:
    """The functions' signatures are in cloudship.api; the flow (pydantic, docker-py, the
    targets) loads on the first call."""
    loaded = loaded_by("from cloudship import ship, dev, services, DevIteration")
    for heavy in ("pydantic", "pydantic_settings", "docker", "httpx", "rich", "typer"):
        assert heavy not in loaded
    assert "watchfiles" not in loaded


def test_the_first_call_loads_the_flow() -> None:
    code = "from cloudship import services\ntry:\n    services('x')\nexcept Exception:\n    pass"
    assert "pydantic" in loaded_by(code)
