"""Settings: ``cloudship.toml`` and ``[tool.cloudship]``, then ``CLOUDSHIP_…`` env, then kwargs.

Precedence, lowest to highest: model defaults < ``pyproject.toml``'s ``[tool.cloudship]`` <
``cloudship.toml`` < environment < keyword arguments. Both files are read from the first folder
that has either, looking in the source directory and then in the working directory and their
parents (or from ``$CLOUDSHIP_CONFIG`` alone)::

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

The layers are pydantic-settings' own sources, merged by pydantic-settings (key by key, tables
too): ``TomlConfigSettingsSource`` for ``cloudship.toml``, ``PyprojectTomlConfigSettingsSource``
for ``[tool.cloudship]``, ``EnvSettingsSource`` and ``InitSettingsSource`` for the rest
(https://docs.pydantic.dev/latest/concepts/pydantic_settings/#other-settings-source). This
module is imported on the first config read, never by ``import cloudship``: pydantic-settings
costs a fresh process tens of milliseconds.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
import typing
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

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


#: Sources a settings model reads beneath its own (init kwargs, environment …) while one
#: ``load_settings``/``find_config`` call builds it: the config file's layers. A context
#: variable, because pydantic-settings asks the class (``settings_customise_sources``), not the
#: call, for its sources, and two threads may load different folders at once.
_FILE_LAYERS: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar(
    "cloudship_file_layers", default=()
)


@contextmanager
def _file_layers(*sources: PydanticBaseSettingsSource) -> Iterator[None]:
    token = _FILE_LAYERS.set(sources)
    try:
        yield
    finally:
        _FILE_LAYERS.reset(token)


class ConfigFile(BaseSettings):
    """The config: the default target, ``[app]``, ``[targets.*]`` and one table per provider.

    Built by ``find_config`` from ``cloudship.toml`` over ``[tool.cloudship]``; ``ConfigFile()``
    is the empty config (it reads no environment: the environment belongs to each table's
    own settings model, ``CLOUDSHIP_APP_*``, ``CLOUDSHIP_LOCAL_*`` …).
    """

    model_config = SettingsConfigDict(extra="allow", frozen=True)

    #: the file that wins (``cloudship.toml`` when both are read); None: no file
    path: Path | None = None
    #: every file read, the one that wins first
    paths: tuple[Path, ...] = ()
    target: StrictStr | None = None
    app: dict[str, Any] = Field(default_factory=dict)
    #: named targets: ``[targets.staging] registry = "ecr"  runtime = "ecs"``
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, *_FILE_LAYERS.get())

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
        return ConfigFile.model_validate({**self.model_dump(), name: values})


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


class _CloudshipToml(TomlConfigSettingsSource):
    """``cloudship.toml`` (or ``$CLOUDSHIP_CONFIG``), read through ``_read_toml``'s checks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(ConfigFile, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return _read_toml(Path(file_path))


class _InPyproject(ConfigFile):
    """Where ``PyprojectTomlConfigSettingsSource`` finds the config: ``[tool.cloudship]``
    (never built; only its config is read, so ``ConfigFile`` itself, which is built without a
    pyproject layer too, does not declare a key its sources would ignore)."""

    model_config = SettingsConfigDict(pyproject_toml_table_header=("tool", "cloudship"))


class _PyprojectTable(PyprojectTomlConfigSettingsSource):
    """``[tool.cloudship]`` of a ``pyproject.toml``; ``found`` says whether it has the table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.found = False
        super().__init__(_InPyproject, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = _read_toml(Path(file_path))
        tool = data.get("tool")
        table = tool.get("cloudship") if isinstance(tool, dict) else None
        if isinstance(tool, dict) and "cloudship" in tool and not isinstance(table, dict):
            raise ConfigError(
                f"{self.path}: [tool.cloudship] must be a table, not {_type_name(table)}",
                fix="write the settings as [tool.cloudship] and [tool.cloudship.app] tables",
            )
        self.found = isinstance(table, dict)
        # the source walks ("tool", "cloudship") itself; hand it only what it can walk
        return {"tool": {"cloudship": table}} if self.found else {}


_FileSource = _CloudshipToml | _PyprojectTable


def find_config(*starts: Path) -> ConfigFile:
    """Load the config (see the module docstring); empty when there is none."""
    explicit = os.environ.get("CLOUDSHIP_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"CLOUDSHIP_CONFIG names {path}, which is not a file",
                fix="point CLOUDSHIP_CONFIG at a cloudship.toml or unset it",
            )
        if path.name == "pyproject.toml":
            return _load(_PyprojectTable(path))
        return _load(_CloudshipToml(path))
    seen: set[Path] = set()
    for start in starts:
        for folder in (start.resolve(), *start.resolve().parents):
            if folder in seen:
                break
            seen.add(folder)
            layers: list[_FileSource] = []
            if (folder / "cloudship.toml").is_file():
                layers.append(_CloudshipToml(folder / "cloudship.toml"))
            if (folder / "pyproject.toml").is_file():
                pyproject = _PyprojectTable(folder / "pyproject.toml")
                if pyproject.found:
                    layers.append(pyproject)
            if layers:
                return _load(*layers)
    return ConfigFile()


def _load(*layers: _FileSource) -> ConfigFile:
    """Check each file on its own (so an error names the file it is in), then let
    pydantic-settings merge them, the first over the rest."""
    for layer in layers:
        _check(layer.path, layer.toml_data)
    paths = tuple(layer.path for layer in layers)
    with _file_layers(*layers):
        try:
            return ConfigFile(path=paths[0], paths=paths)
        except ValidationError as exc:  # each file passed on its own: only the merge is left
            raise config_error(
                exc,
                {"targets": "see docs/targets.md#named-targets-in-cloudshiptoml"},
                where=" over ".join(str(path) for path in paths),
            ) from None


def where_targets_are(config: ConfigFile) -> dict[str, Path]:
    """The file each named target of ``config`` comes from (the winning file when both files
    name it): ``cloudship targets`` says which file to edit."""
    found: dict[str, Path] = {}
    for path in reversed(config.paths):  # lowest layer first: the winner writes last
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("cloudship", {})
        tables = data.get("targets") if isinstance(data, dict) else None
        if isinstance(tables, dict):
            found.update(dict.fromkeys(tables, path))
    return found


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


def _check(path: Path, data: dict[str, Any]) -> None:
    """One file's names and types, before it is merged with anything."""
    _check_names(path, data)
    try:
        ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise config_error(
            exc, {"targets": "see docs/targets.md#named-targets-in-cloudshiptoml"}, where=str(path)
        ) from None
    try:
        AppTable.model_validate(data.get("app", {}))
    except ValidationError as exc:
        raise config_error(exc, AppSettings, where=f"[app] in {path}") from None


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


@functools.cache
def _over_file(cls: type[S]) -> type[S]:
    """``cls`` with the file's table as its lowest source, beneath whatever sources ``cls``
    itself declares (init kwargs > environment > …). Only its values are used: the instance
    ``load_settings`` returns is a ``cls``."""

    class OverFile(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls_,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            own = super().settings_customise_sources(
                settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
            )
            return (*own, *_FILE_LAYERS.get())

    OverFile.__name__, OverFile.__qualname__ = cls.__name__, cls.__qualname__
    return cast("type[S]", OverFile)


def load_settings(
    cls: type[S], file_values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> S:
    """Build ``cls`` from file values < environment (the model's ``env_prefix``) < overrides.

    pydantic-settings merges the layers (key by key, tables too). ``None`` overrides are
    ignored, so ``ship(port=None)`` means "not given".
    """
    prefix = cls.model_config.get("env_prefix", "")
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    _refuse_bools_for_numbers(cls, {**file_values, **given})
    layered = _over_file(cls)
    try:
        with _file_layers(InitSettingsSource(layered, init_kwargs=dict(file_values))):
            built = layered(**given)
    except SettingsError as exc:  # a dict/list-valued variable that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        variable = f"{prefix}{found[1]}".upper() if found else f"a {prefix}* variable"
        raise ConfigError(
            f"{variable} is not valid JSON for {cls.__name__}",
            fix=f"""set it to a JSON object, e.g. {variable}='{{"KEY": "value"}}', or unset it""",
        ) from None
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
    # validated above with the same fields and validators: construct, so the result is a ``cls``
    return cls.model_construct(
        _fields_set=built.model_fields_set,
        **{name: getattr(built, name) for name in cls.model_fields},
    )
