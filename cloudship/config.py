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
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from cloudship.errors import ConfigError
from cloudship.validation import (
    BuildArgs,
    BuildTarget,
    Cpu,
    DockerfilePath,
    EnvMap,
    HealthPath,
    Memory,
    Platform,
    Port,
    Replicas,
    ServiceName,
    config_error,
)

S = TypeVar("S", bound=BaseSettings)


class AppSettings(BaseSettings):
    """Service defaults from ``[app]``; ``ship()`` keyword arguments override them."""

    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_APP_", extra="forbid")

    name: ServiceName | None = None
    port: Port | None = None
    health_path: HealthPath | None = None
    env: EnvMap = Field(default_factory=dict)
    cpu: Cpu | None = None
    memory: Memory | None = None
    replicas: Replicas | None = None
    #: autoscaling ceiling (``replicas`` is then the floor), where the runtime supports it
    max_replicas: Replicas | None = None
    #: reachable from the internet (default); False keeps it inside its network
    public: bool | None = None
    platform: Platform | None = None
    dockerfile: DockerfilePath = "Dockerfile"
    build_args: BuildArgs = Field(default_factory=dict)
    build_target: BuildTarget | None = None


# ``[app]`` as TOML gives it: the same fields, strictly typed. TOML has real types, so
# `port = true` or `port = "80"` there is a typo, while the same keys from the environment are
# strings and stay lax in AppSettings. (A settings model ignores ``strict=`` in validation, so
# this is a plain model built from AppSettings' own fields, never a second list of them.)
AppTable: type[BaseModel] = create_model(
    "AppTable",
    __config__=ConfigDict(strict=True, extra="forbid"),
    **{name: (info.annotation, info) for name, info in AppSettings.model_fields.items()},  # type: ignore[call-overload]
)


class ConfigFile(BaseModel):
    """The parsed config file: the default target, ``[app]`` and one table per provider."""

    model_config = ConfigDict(extra="allow", frozen=True)

    path: Path | None = None
    target: StrictStr | None = None
    app: dict[str, Any] = Field(default_factory=dict)
    #: named targets: ``[targets.staging] registry = "ecr"  runtime = "ecs"``
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _target_tables(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, table in value.items():
            for key in ("registry", "runtime"):
                if not isinstance(table.get(key), str):
                    raise ValueError(
                        f"[targets.{name}] {key} must be a string such as 'local' "
                        f"(found {_type_name(table.get(key))})"
                    )
            for key, sub in table.items():
                if key not in ("registry", "runtime") and not isinstance(sub, dict):
                    raise ValueError(
                        f"[targets.{name}] {key} must be a table of that provider's settings, "
                        f"e.g. {key} = {{ ... }} (found {_type_name(sub)})"
                    )
        return value

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


def _type_name(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def data_dir() -> Path:
    """Where cloudship keeps local state (embedded registry storage):
    ``$CLOUDSHIP_DATA_DIR``, else ``$XDG_DATA_HOME/cloudship``, else ``~/.local/share/cloudship``.
    """
    explicit = os.environ.get("CLOUDSHIP_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cloudship"


#: A config file is a few hundred bytes; refusing megabytes keeps a wrong path (a log, a
#: binary) from being parsed at all.
MAX_CONFIG_BYTES = 1024 * 1024
#: Tables and arrays nested deeper than this are not a cloudship config (ours is 3 deep).
MAX_CONFIG_DEPTH = 16


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; any way it is not a readable, sane TOML file is a ``ConfigError``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or type(exc).__name__}",
            fix="check the file's permissions, or point CLOUDSHIP_CONFIG elsewhere",
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; it is not a cloudship config",
            fix="check which file CLOUDSHIP_CONFIG or the search found (docs/configuration.md)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (invalid byte at offset {exc.start})",
            fix="save the file as UTF-8, as TOML requires",
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", fix="fix the syntax") from None
    except RecursionError:
        data = None
    if data is None or _too_deep(data):
        raise ConfigError(
            f"{path} nests tables or arrays more than {MAX_CONFIG_DEPTH} levels deep",
            fix="flatten the file: cloudship's settings are at most 3 levels deep",
        )
    return data


def _too_deep(data: object) -> bool:
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:  # iterative: the point is to survive input deep enough to break recursion
        value, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


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
        config = ConfigFile.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise config_error(
            exc, {"targets": "see docs/targets.md#named-targets-in-cloudshiptoml"}, where=str(path)
        ) from None
    try:
        AppTable.model_validate(config.app)
    except ValidationError as exc:
        raise config_error(exc, AppSettings, where=f"[app] in {path}") from None
    return config


def validation_problems(exc: ValidationError) -> str:
    """``field: message; …`` without the input values, which may be secrets."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def _refuse_bools_for_numbers(cls: type[BaseModel], values: Mapping[str, Any]) -> None:
    """pydantic's lax mode takes ``True`` for an int (``host_port=True`` → port 1): refuse it
    for every number-typed field of a settings model, whichever provider owns it."""
    for key, value in values.items():
        info = cls.model_fields.get(key)
        if info is None or not isinstance(value, bool):
            continue
        accepted = set(typing.get_args(info.annotation)) or {info.annotation}
        if bool not in accepted and accepted & {int, float}:
            raise ConfigError(
                f"invalid {cls.__name__} settings: {key}: a bool is not a number here",
                fix=f"give {key} a number, not true/false",
            )


def load_settings(
    cls: type[S], file_values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> S:
    """Build ``cls`` from file values < environment (the model's ``env_prefix``) < overrides.

    ``None`` overrides are ignored, so ``ship(port=None)`` means "not given".
    """
    prefix = cls.model_config.get("env_prefix", "")
    try:
        env_values = EnvSettingsSource(cls)()
    except SettingsError as exc:  # a dict/list-valued variable that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        variable = f"{prefix}{found[1]}".upper() if found else f"a {prefix}* variable"
        raise ConfigError(
            f"{variable} is not valid JSON for {cls.__name__}",
            fix=f"""set it to a JSON object, e.g. {variable}='{{"KEY": "value"}}', or unset it""",
        ) from None
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    _refuse_bools_for_numbers(cls, {**file_values, **given})
    merged = {**file_values, **env_values, **given}
    try:
        return cls(**merged)
    except ValidationError as exc:
        unknown = [
            str(error["loc"][0]) for error in exc.errors() if error["type"] == "extra_forbidden"
        ]
        if unknown:  # a mistyped key: name the one it was probably meant to be
            raise ConfigError(
                f"invalid {cls.__name__} settings: "
                + "; ".join(
                    f"unknown setting {key!r}{did_you_mean(key, cls.model_fields)}"
                    for key in unknown
                ),
                fix=f"check the config file, {prefix}* environment variables and arguments",
            ) from None
        raise config_error(
            exc,
            cls,
            where=f"{cls.__name__} settings",
            also=f"check the config file, {prefix}* environment variables and arguments",
        ) from None
