from pathlib import Path

import pytest

from cloudship.config import AppSettings, find_config, load_settings
from cloudship.errors import ConfigError
from cloudship_local.settings import LocalSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("CLOUDSHIP_"):
            monkeypatch.delenv(key)


def test_cloudship_toml_found_from_source_dir(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "cloudship.toml").write_text(
        'target = "local"\n[app]\nport = 8000\n[local]\nhost_port = 9000\n'
    )
    config = find_config(app)
    assert config.path == tmp_path / "cloudship.toml"
    assert config.target == "local"
    assert config.app == {"port": 8000}
    assert config.section("local") == {"host_port": 9000}
    assert config.section("aws") == {}


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cloudship.app]\nname = "web"\n')
    assert find_config(tmp_path).app == {"name": "web"}


def test_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "cloudship.toml").write_text('target = "aws"\n')
    assert find_config(inner).target == "aws"


def test_explicit_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "other.toml"
    file.write_text('target = "azure"\n')
    monkeypatch.setenv("CLOUDSHIP_CONFIG", str(file))
    assert find_config(Path("/")).target == "azure"
    monkeypatch.setenv("CLOUDSHIP_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        find_config(Path("/"))


def test_bad_toml_names_file(tmp_path: Path) -> None:
    (tmp_path / "cloudship.toml").write_text("target = \n")
    with pytest.raises(ConfigError, match=r"cloudship\.toml is not valid TOML"):
        find_config(tmp_path)


def test_precedence_file_env_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    file_values = {"port": 1000, "health_path": "/file", "name": "file"}
    monkeypatch.setenv("CLOUDSHIP_APP_PORT", "2000")
    monkeypatch.setenv("CLOUDSHIP_APP_HEALTH_PATH", "/env")
    app = load_settings(AppSettings, file_values, {"health_path": "/kw", "name": None})
    assert (app.port, app.health_path, app.name) == (2000, "/kw", "file")


def test_secret_settings_never_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIP_LOCAL_PASSWORD", "hunter2-secret")
    settings = load_settings(LocalSettings, {"username": "u"})
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    with pytest.raises(ConfigError) as info:
        load_settings(LocalSettings, {"host_port": "not-a-port"})
    assert "host_port" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="hots_port"):
        load_settings(LocalSettings, {}, {"hots_port": 1})
