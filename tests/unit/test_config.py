from pathlib import Path

import pytest

from cloudship.config import AppSettings, ConfigFile, find_config, load_settings
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


# --- the layers: pyproject < cloudship.toml < environment < arguments (pydantic-settings) ---


def test_cloudship_toml_wins_over_pyproject_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.cloudship]\ntarget = "aws"\n'
        '[tool.cloudship.app]\nname = "web"\nport = 1000\n'
        "[tool.cloudship.local]\nhost_port = 9000\nkeep_revisions = 2\n"
    )
    (tmp_path / "cloudship.toml").write_text("[app]\nport = 2000\n[local]\nhost_port = 9001\n")
    config = find_config(tmp_path)
    assert config.path == tmp_path / "cloudship.toml"
    assert config.paths == (tmp_path / "cloudship.toml", tmp_path / "pyproject.toml")
    assert config.target == "aws"  # only pyproject has it
    assert config.app == {"name": "web", "port": 2000}  # tables merge, cloudship.toml wins
    assert config.section("local") == {"host_port": 9001, "keep_revisions": 2}


def test_every_layer_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.cloudship.app]\nname = "py"\nport = 1\nhealth_path = "/py"\ncpu = 0.5\n'
    )
    (tmp_path / "cloudship.toml").write_text('[app]\nport = 2\nhealth_path = "/toml"\n')
    monkeypatch.setenv("CLOUDSHIP_APP_HEALTH_PATH", "/env")
    monkeypatch.setenv("CLOUDSHIP_APP_NAME", "env")
    app = load_settings(AppSettings, find_config(tmp_path).app, {"name": "kw", "cpu": None})
    assert (app.cpu, app.port, app.health_path, app.name) == (0.5, 2, "/env", "kw")


def test_tables_merge_across_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIP_APP_ENV", '{"B": "env", "C": "env"}')
    app = load_settings(AppSettings, {"env": {"A": "file", "B": "file"}})
    assert app.env == {"A": "file", "B": "env", "C": "env"}
    assert type(app) is AppSettings


def test_a_provider_alias_from_the_environment_beats_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cloudship_dockerhub.settings import DockerHubSettings

    monkeypatch.setenv("DOCKERHUB_TOKEN", "from-env")
    settings = load_settings(DockerHubSettings, {"username": "u", "token": "from-file"})
    assert settings.token is not None and settings.token.get_secret_value() == "from-env"
    assert settings.username == "u"


def test_the_nearest_folder_is_the_config_folder(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "cloudship.toml").write_text('target = "aws"\n[app]\nport = 1\n')
    (inner / "pyproject.toml").write_text('[tool.cloudship.app]\nname = "inner"\n')
    config = find_config(inner)
    assert config.paths == (inner / "pyproject.toml",)
    assert (config.target, config.app) == (None, {"name": "inner"})


def test_an_error_names_the_file_it_is_in(tmp_path: Path) -> None:
    (tmp_path / "cloudship.toml").write_text("[app]\nport = 1\n")
    (tmp_path / "pyproject.toml").write_text('[tool.cloudship.app]\nport = "1"\n')
    with pytest.raises(ConfigError) as caught:
        find_config(tmp_path)
    assert str(tmp_path / "pyproject.toml") in str(caught.value)
    assert "cloudship.toml" not in str(caught.value)


def test_explicit_config_may_be_a_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cloudship]\ntarget = "azure"\n')
    (tmp_path / "cloudship.toml").write_text('target = "aws"\n')  # not read: explicit wins
    monkeypatch.setenv("CLOUDSHIP_CONFIG", str(tmp_path / "pyproject.toml"))
    assert find_config(tmp_path).paths == (tmp_path / "pyproject.toml",)
    assert find_config(tmp_path).target == "azure"


def test_tool_cloudship_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool]\ncloudship = "local"\n')
    with pytest.raises(ConfigError, match=r"\[tool\.cloudship\] must be a table, not str"):
        find_config(tmp_path)


def test_the_empty_config_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET", "aws")
    monkeypatch.setenv("APP", '{"port": 1}')
    assert ConfigFile() == ConfigFile(app={}, targets={})
    assert (ConfigFile().target, ConfigFile().app) == (None, {})


def test_a_provider_table_takes_every_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.cloudship.local]\nkeep_revisions = 2\nhost_port = 9000\nbind = '127.0.0.2'\n"
        "project = 'py'\n"
    )
    (tmp_path / "cloudship.toml").write_text("[local]\nhost_port = 9001\nbind = '127.0.0.3'\n")
    monkeypatch.setenv("CLOUDSHIP_LOCAL_BIND", "127.0.0.4")
    monkeypatch.setenv("CLOUDSHIP_LOCAL_PROJECT", "env")
    settings = load_settings(
        LocalSettings, find_config(tmp_path).section("local"), {"project": "kw", "lock_wait": None}
    )
    assert (settings.keep_revisions, settings.host_port) == (2, 9001)
    assert (settings.bind, settings.project, settings.lock_wait) == ("127.0.0.4", "kw", 0.0)
    assert type(settings) is LocalSettings


def test_threads_loading_at_once_each_get_their_own_file_values() -> None:
    """The file layer is per call (a context variable), not shared by the settings class."""
    from concurrent.futures import ThreadPoolExecutor

    def load(port: int) -> int | None:
        return load_settings(AppSettings, {"port": port, "env": {"P": str(port)}}).port

    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(load, range(1000, 1400)))
    assert ports == list(range(1000, 1400))
