"""Settings: ``cloudship.toml`` or ``[tool.cloudship]``, then ``CLOUDSHIP_…`` env, then kwargs.

Precedence, lowest to highest: model defaults < config file < environment < keyword arguments.
The config file is the first of these found, looking in the source directory and then in the
working directory and its parents: ``$CLOUDSHIP_CONFIG``, ``cloudship.toml``, a
``pyproject.toml`` with ``[tool.cloudship]``::

    target = "local"          # default target

    [app]                     # service defaults; ship() keywords win
    name = "monitor-app"
    port = 8000
    health_path = "/health"
    env = { MODE = "dev" }

    [local]                   # provider settings, one table per provider
    registry = "127.0.0.1:5000"

    [targets.staging]         # a named target: any registry with any runtime
    registry = "dockerhub"
    runtime = "local"
    local = { host_port = 8080 }   # settings for this target only, over [local]

Environment: ``CLOUDSHIP_TARGET``, ``CLOUDSHIP_APP_PORT``, ``CLOUDSHIP_LOCAL_REGISTRY`` … (the
table name, then the key, upper-cased). Secrets in settings are ``SecretStr``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from cloudship.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


class AppSettings(BaseSettings):
    """Service defaults from ``[app]``; ``ship()`` keyword arguments override them."""

    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_APP_", extra="forbid")

    name: str | None = None
    port: int | None = None
    health_path: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cpu: float | None = None
    memory: str | None = None
    replicas: int | None = None
    platform: str | None = None
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = Field(default_factory=dict)
    build_target: str | None = None


class ConfigFile(BaseModel):
    """The parsed config file: the default target, ``[app]`` and one table per provider."""

    model_config = ConfigDict(extra="allow", frozen=True)

    path: Path | None = None
    target: str | None = None
    app: dict[str, Any] = Field(default_factory=dict)
    #: named targets: ``[targets.staging] registry = "ecr"  runtime = "ecs"``
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        extra = self.model_extra or {}
        value = extra.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{name}] must be a table, not {type(value).__name__}")
        return value

    def with_section(self, name: str, values: dict[str, Any]) -> ConfigFile:
        """A copy whose ``[name]`` table is ``values``."""
        return ConfigFile.model_validate(
            {**self.model_dump(), **(self.model_extra or {}), name: values}
        )


def data_dir() -> Path:
    """Where cloudship keeps local state (embedded registry storage):
    ``$CLOUDSHIP_DATA_DIR``, else ``$XDG_DATA_HOME/cloudship``, else ``~/.local/share/cloudship``.
    """
    explicit = os.environ.get("CLOUDSHIP_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cloudship"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", fix="fix the syntax") from exc


def find_config(*starts: Path) -> ConfigFile:
    """Load the first config file found (see the module docstring); empty when none."""
    explicit = os.environ.get("CLOUDSHIP_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"CLOUDSHIP_CONFIG names {path}, which is not a file",
                fix="point CLOUDSHIP_CONFIG at a cloudship.toml or unset it",
            )
        return _parse(path, _read_toml(path))
    seen: set[Path] = set()
    for start in starts:
        for folder in (start.resolve(), *start.resolve().parents):
            if folder in seen:
                break
            seen.add(folder)
            candidate = folder / "cloudship.toml"
            if candidate.is_file():
                return _parse(candidate, _read_toml(candidate))
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file():
                table = _read_toml(pyproject).get("tool", {}).get("cloudship")
                if isinstance(table, dict):
                    return _parse(pyproject, table)
    return ConfigFile()


def did_you_mean(word: str, choices: Iterable[str], *, table: bool = False) -> str:
    """`` (did you mean [local]?)`` for the closest of ``choices``, or ``""``."""
    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    if not found:
        return ""
    return f" (did you mean [{found[0]}]?)" if table else f" (did you mean {found[0]!r}?)"


def _check_names(path: Path, data: Mapping[str, Any]) -> None:
    """Unknown tables and ``[app]`` keys are mistakes (``[lcoal]``), never silently ignored."""
    from cloudship.targets import available

    providers = available()
    known = {"target", "app", "targets", *providers}
    tables = ", ".join(f"[{name}]" for name in providers)
    for key, value in data.items():
        if key in known:
            continue
        if isinstance(value, dict):
            raise ConfigError(
                f"{path}: unknown table [{key}]{did_you_mean(key, known, table=True)}",
                fix=f"use [app], [targets.NAME] or a target's table: {tables}",
            )
        raise ConfigError(
            f"{path}: unknown key {key!r}{did_you_mean(key, known)}",
            fix="the top level takes `target = NAME`; everything else goes in a table",
        )
    app = data.get("app")
    if isinstance(app, dict):
        fields = AppSettings.model_fields
        for key in app:
            if key not in fields:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [app]{did_you_mean(key, fields)}",
                    fix=f"[app] takes: {', '.join(fields)}",
                )


def _parse(path: Path, data: dict[str, Any]) -> ConfigFile:
    _check_names(path, data)
    try:
        return ConfigFile.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}", fix="see docs/configuration.md") from exc


def validation_problems(exc: ValidationError) -> str:
    """``field: message; …`` without the input values, which may be secrets."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def load_settings(
    cls: type[S], file_values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> S:
    """Build ``cls`` from file values < environment (the model's ``env_prefix``) < overrides.

    ``None`` overrides are ignored, so ``ship(port=None)`` means "not given".
    """
    env_values = EnvSettingsSource(cls)()
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    merged = {**file_values, **env_values, **given}
    try:
        return cls(**merged)
    except ValidationError as exc:
        problems = validation_problems(exc)
        unknown = [
            str(error["loc"][0]) for error in exc.errors() if error["type"] == "extra_forbidden"
        ]
        if unknown:  # a mistyped key: name the one it was probably meant to be
            problems = "; ".join(
                f"unknown setting {key!r}{did_you_mean(key, cls.model_fields)}" for key in unknown
            )
        prefix = cls.model_config.get("env_prefix", "")
        raise ConfigError(
            f"invalid {cls.__name__} settings: {problems}",
            fix=f"check the config file, {prefix}* environment variables and arguments",
        ) from None
