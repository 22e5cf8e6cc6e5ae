"""Mistyped config names are errors that name the likely intent (`[lcoal]` → `[local]`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudship.cli import app
from cloudship.config import find_config, load_settings
from cloudship.errors import ConfigError
from cloudship_local.settings import LocalSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("CLOUDSHIP_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[lcoal]\nhost_port = 1\n", "unknown table [lcoal] (did you mean [local]?)"),
        ("[ap]\nport = 1\n", "unknown table [ap] (did you mean [app]?)"),
        ('targt = "aws"\n', "unknown key 'targt' (did you mean 'target'?)"),
        ("[app]\nprot = 8000\n", "unknown key 'prot' in [app] (did you mean 'port'?)"),
        ("[zzz]\n", "unknown table [zzz]"),
    ],
)
def test_unknown_names_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "cloudship.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        find_config(tmp_path)
    assert message in str(caught.value)
    assert str(tmp_path / "cloudship.toml") in str(caught.value)


def test_pyproject_tables_are_checked_too(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.cloudship.lcoal]\nhost_port = 1\n")
    with pytest.raises(ConfigError, match=r"did you mean \[local\]"):
        find_config(tmp_path)


def test_every_known_table_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "cloudship.toml").write_text(
        'target = "local"\n[app]\nport = 1\n[local]\n[aws]\n[azure]\n[dockerhub]\n'
        '[targets.hub]\nregistry = "dockerhub"\nruntime = "local"\n'
    )
    assert find_config(tmp_path).target == "local"


def test_a_mistyped_provider_setting_names_the_right_one() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown setting 'hostport' \(did you mean 'host_port'\?\)"
    ):
        load_settings(LocalSettings, {"hostport": 8080})


def test_the_cli_reports_it_as_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cloudship.toml").write_text("[lcoal]\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["targets"])
    assert result.exit_code == 2 and "did you mean [local]?" in result.stderr


def test_targets_names_the_file_each_named_target_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cloudship.toml").write_text(
        '[targets.staging]\nregistry = "local"\nruntime = "local"\n'
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n'
        '[tool.cloudship.targets.prod]\nregistry = "ecr"\nruntime = "ecs"\n'
        '[tool.cloudship.targets.staging]\nregistry = "ecr"\nruntime = "ecs"\n'
    )
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(app, ["targets"])
    assert listed.exit_code == 0, listed.output
    assert "prod ([tool.cloudship] of pyproject.toml: ecr + ecs)" in listed.stdout
    assert "staging (cloudship.toml: local + local)" in listed.stdout, "cloudship.toml wins"
