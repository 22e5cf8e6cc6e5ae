"""The types every user-given value is checked against, and one way to report a bad one.

Every value a user hands cloudship — ``ship()``/``plan()`` keywords, day-2 arguments
(``status``/``logs``/``rollback``/``destroy``), ``[app]`` keys and ``CLOUDSHIP_APP_*``
variables, the ``ServiceSpec`` a runtime receives — is checked by one of the types below
before anything is built, pushed or started. They are ``typing.Annotated`` aliases pydantic
understands, so a model declares a field once and gets the whole check::

    from pydantic import BaseModel, ConfigDict, ValidationError
    from cloudship.validation import Cpu, Port, Timeout, config_error

    class DeployOptions(BaseModel):
        model_config = ConfigDict(frozen=True, strict=True)  # keywords: Python values only
        port: Port | None = None
        cpu: Cpu | None = None
        timeout: Timeout = 300.0

    try:
        options = DeployOptions(**keywords)
    except ValidationError as exc:
        raise config_error(exc, DeployOptions, where="deploy() options") from None

(``cloudship.options.ShipOptions``, a ``TypedDict``, is declared the same way.)

================  =======================================================================
type              accepts
================  =======================================================================
``SourcePath``    str or PathLike, 1-4096 characters, components ≤ 255 bytes, no NUL
``TargetArg``     a target name (``TargetName``), a ``Target``, or a non-empty list of them
``TargetName``    1-64 of ``[A-Za-z0-9_.-]``, starting with a letter or digit
``ServiceName``   a DNS label: 1-63 of ``[a-z0-9-]``, no leading/trailing ``-``
``Tag``           Docker's tag grammar ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``
``Platform``      ``os/arch[/variant]``, ≤ 64 characters of ``[A-Za-z0-9_.-]`` and ``/``
``Port``          an int 1-65535 (not a bool)
``Cpu``           a finite number of vCPUs, 0.01-1024 (not a bool); runtimes add their own tables
``Memory``        a string with a unit, ``"512Mi"``, between 6 MiB and 1 PiB
``Replicas``      an int 0-10000 (not a bool)
``Timeout``       finite seconds, more than 0 and at most 86400 (not a bool)
``Tail``          an int 1-100000 (not a bool)
``HealthPath``    an absolute URL path (RFC 3986 characters, optional ``?query``), ≤ 1024
                  characters, no whitespace, control characters or ``#``
``EnvMap``        a mapping of variable names (``[A-Za-z_][A-Za-z0-9_]*``) to strings without NUL
``SecretMap``     the same, values ``str`` or ``SecretStr`` (stored as ``SecretStr``)
``BuildArgs``     a mapping of build-arg names to strings
``DockerfilePath`` a path ≤ 4096 characters without NUL (``sources.detect`` then refuses
                  absolute paths and any that leave the build context)
``RevisionId``    1-255 printable ASCII characters without spaces (``r2`` or a cloud's own id)
``Flag``          a bool (not ``1``/``"yes"`` in strict models)
================  =======================================================================

Bools are refused wherever a number is expected, even in lax models: ``True`` is an ``int``
in Python, so ``port=True`` would silently mean port 1. Lax models (``AppSettings``, which reads
environment variables) still accept numeric strings; strict models (keyword arguments) accept
only the Python type. Each type carries a ``Hint`` — what is accepted and an example — which
``config_error`` turns into the error's ``fix``. Messages name the field and the rule, never the
value given: values may be secrets.

``cloudship.options.ShipOptions`` declares ``ship()``/``plan()``'s options with these types;
``check_service_arguments`` applies them to ``status``/``logs``/``rollback``/``destroy``;
``check_source`` is what ``sources.detect`` checks first.
"""

from __future__ import annotations

import math
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
)

from cloudship.errors import ConfigError, SourceError
from cloudship.images import normalize_platform


@dataclass(frozen=True)
class Hint:
    """What a field accepts, with an example: the ``fix`` of a ``ConfigError`` about it."""

    text: str


# -- building blocks --------------------------------------------------------------------------


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a bool is not a number here")
    return value


def _finite_number(value: object) -> object:
    _no_bool(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number, not inf or nan")
    return value


NoBool = BeforeValidator(_no_bool)
Finite = BeforeValidator(_finite_number)

_MAX_PATH = 4096  # PATH_MAX on Linux
_MAX_COMPONENT = 255  # NAME_MAX: longer components fail with ENAMETOOLONG


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot be a file system path, or None."""
    if not text:
        return "is empty"
    if "\x00" in text:
        return "contains a NUL character"
    if len(text) > _MAX_PATH:
        return f"is {len(text)} characters long; the limit is {_MAX_PATH}"
    longest = max(len(part.encode("utf-8", "surrogateescape")) for part in text.split("/"))
    if longest > _MAX_COMPONENT:
        return f"has a {longest}-byte path component; the limit is {_MAX_COMPONENT}"
    return None


def _source(value: object) -> str | os.PathLike[str]:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"must be a directory path or an image reference, not {_kind(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ValueError("must be a text path, not bytes")
    problem = path_problem(text)
    if problem:
        raise ValueError(problem)
    return value


def _kind(value: object) -> str:
    """A value's type for a message: never the value itself, which may be a secret."""
    return "None" if value is None else type(value).__name__


_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _target_name(value: str) -> str:
    if not _TARGET_NAME.match(value):
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', starting alphanumeric")
    return value


def _target_arg(value: object) -> object:
    from cloudship.targets import Target  # targets → runtime → here: import on use

    def one(item: object) -> object:
        if isinstance(item, Target):
            return item
        if isinstance(item, str):
            return _target_name(item)
        raise ValueError(f"must be a target name or a Target, not {_kind(item)}")

    if value is None or isinstance(value, str | Target):
        return None if value is None else one(value)
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("is an empty list")
        return [one(item) for item in value]
    raise ValueError(f"must be a target name, a Target or a list of them, not {_kind(value)}")


_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _service_name(value: str) -> str:
    if not _SERVICE_NAME.match(value):
        raise ValueError(
            "must be 1-63 lower-case letters, digits and '-', starting and ending with a "
            "letter or digit"
        )
    return value


def suggested_service_name(text: str) -> str:
    """A DNS label close to ``text``, for a fix hint."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-") or "app"


_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)


def _tag(value: str) -> str:
    if not _TAG.match(value):
        raise ValueError("must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
    return value


_PLATFORM = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+){1,2}$")


def _platform(value: str) -> str:
    if len(value) > 64 or not _PLATFORM.match(value):
        raise ValueError("must be 'os/arch' or 'os/arch/variant' (at most 64 characters)")
    try:
        normalize_platform(value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    return value


# -- memory -------------------------------------------------------------------------------

_MEMORY = re.compile(
    r"^\s*(\d{1,20}(?:\.\d{1,9})?)\s*(Ki|Mi|Gi|Ti|K|M|G|T|KB|MB|GB|TB|B)?\s*$", re.I
)
_UNITS = {
    "": 1,
    "b": 1,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
#: Docker refuses less than 6 MiB ("Minimum memory limit allowed is 6MB",
#: https://docs.docker.com/engine/containers/resource_constraints/), and no supported runtime
#: goes lower; Fargate and Container Apps start at 512 MiB and check their own tables.
MIN_MEMORY = 6 * 1024**2
MAX_MEMORY = 1024**5  # 1 PiB: far above any runtime's limit, far below int64 overflow


def parse_memory(text: str) -> int:
    """``"512Mi"`` → 536870912 (Kubernetes-style units); ``ValueError`` when unreadable."""
    match = _MEMORY.match(text)
    if not match:
        raise ValueError("must be a number with a unit, e.g. '512Mi' or '1Gi'")
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


def _memory(value: str) -> str:
    size = parse_memory(value)
    if size < MIN_MEMORY:
        raise ValueError("must be at least 6Mi")
    if size > MAX_MEMORY:
        raise ValueError("must be at most 1024Ti")
    return value


# -- URL paths ----------------------------------------------------------------------------

# RFC 3986 §3.3 path-absolute and §3.4 query: pchar = unreserved / pct-encoded / sub-delims
# / ":" / "@"; "/" separates segments and "?" starts the query. "#" (a fragment) is never sent.
_PCHAR = r"A-Za-z0-9\-._~!$&'()*+,;=:@"
_HEALTH_PATH = re.compile(
    rf"^/(?!/)(?:[{_PCHAR}/]|%[0-9A-Fa-f]{{2}})*(?:\?(?:[{_PCHAR}/?]|%[0-9A-Fa-f]{{2}})*)?$"
)
_MAX_HEALTH_PATH = 1024


def _health_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if len(value) > _MAX_HEALTH_PATH:
        raise ValueError(f"must be at most {_MAX_HEALTH_PATH} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain whitespace or control characters")
    if "#" in value:
        raise ValueError("must not contain '#' (a fragment is never sent to the server)")
    if value.startswith("//"):
        raise ValueError("must not start with '//' (that names a host, not a path)")
    if not _HEALTH_PATH.match(value):
        raise ValueError(
            "must be a URL path: ASCII letters, digits and -._~!$&'()*+,;=:@/ with other "
            "characters percent-encoded (%XX)"
        )
    return value


# -- mappings -----------------------------------------------------------------------------

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _string_mapping(what: str, *, secret: bool) -> Callable[[object], dict[str, Any]]:
    def check(value: object) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping of {what} names to strings, not {_kind(value)}")
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not _VAR_NAME.match(key) or len(key) > 255:
                shown = repr(key) if isinstance(key, str) and len(key) <= 64 else _kind(key)
                raise ValueError(f"{what} name {shown} must match [A-Za-z_][A-Za-z0-9_]*")
            if secret and isinstance(item, SecretStr):
                raw = item.get_secret_value()
            elif isinstance(item, str):
                raw = item
            else:  # the value's type only: the value may be a secret
                raise ValueError(f"{what} {key!r} must be a string, not {_kind(item)}")
            if "\x00" in raw:
                raise ValueError(f"{what} {key!r} contains a NUL character")
            result[key] = SecretStr(raw) if secret else raw
        return result

    return check


# -- the types ------------------------------------------------------------------------------

SourcePath = Annotated[
    Any,
    BeforeValidator(_source),
    Hint("pass a directory with a Dockerfile, or an image such as 'app:v1'"),
]
TargetName = Annotated[
    str,
    AfterValidator(_target_name),
    Hint("use a target name such as 'local' or 'aws' (`cloudship targets` lists them)"),
]
TargetArg = Annotated[
    Any,
    BeforeValidator(_target_arg),
    Hint("pass a target name such as 'local', a Target(registry=..., runtime=...), or a list"),
]
ServiceName = Annotated[
    str,
    AfterValidator(_service_name),
    Hint("use a DNS label such as name='monitor-app'"),
]
Tag = Annotated[str, AfterValidator(_tag), Hint("use a tag such as tag='v1'")]
Platform = Annotated[
    str, AfterValidator(_platform), Hint("use e.g. platform='linux/amd64' or 'linux/arm64'")
]
Port = Annotated[
    int, NoBool, Field(ge=1, le=65535), Hint("pass the port the app listens on, e.g. port=8000")
]
Cpu = Annotated[
    float,
    Finite,
    Field(ge=0.01, le=1024),
    Hint("pass vCPUs as a finite number of at least 0.01, e.g. cpu=0.5"),
]
Memory = Annotated[
    str, AfterValidator(_memory), Hint("pass a size with a unit of at least 6Mi, e.g. '512Mi'")
]
Replicas = Annotated[
    int, NoBool, Field(ge=0, le=10_000), Hint("pass a whole number of replicas, e.g. replicas=1")
]
Timeout = Annotated[
    float,
    Finite,
    Field(gt=0, le=86_400),
    Hint("pass seconds as a finite number above 0 (at most a day), e.g. timeout=300"),
]
Tail = Annotated[
    int, NoBool, Field(ge=1, le=100_000), Hint("pass a number of lines, e.g. tail=100")
]
HealthPath = Annotated[
    str, AfterValidator(_health_path), Hint("use an absolute URL path, e.g. '/health'")
]
EnvMap = Annotated[
    dict[str, str],
    BeforeValidator(_string_mapping("environment variable", secret=False)),
    Hint("pass a mapping of names to strings, e.g. env={'MODE': 'prod'}"),
]
SecretMap = Annotated[
    dict[str, SecretStr],
    BeforeValidator(_string_mapping("secret", secret=True)),
    Hint("pass a mapping of names to strings or SecretStr, e.g. secrets={'TOKEN': token}"),
]
BuildArgs = Annotated[
    dict[str, str],
    BeforeValidator(_string_mapping("build arg", secret=False)),
    Hint("use a table of names to strings, e.g. build_args = { PYTHON = '3.12' }"),
]


def _sane_path(value: str) -> str:
    # Where it points (inside the build context, not absolute) is checked by sources.detect,
    # which knows the context and raises SourceError.
    problem = path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


DockerfilePath = Annotated[
    str,
    AfterValidator(_sane_path),
    Hint("name a file inside the source directory, e.g. dockerfile = 'Dockerfile.prod'"),
]
_REVISION = re.compile(r"^[!-~]{1,255}$")


def _revision(value: str) -> str:
    if not _REVISION.match(value):
        raise ValueError("must be 1-255 printable characters without spaces")
    return value


RevisionId = Annotated[
    str, AfterValidator(_revision), Hint("name a revision from `cloudship status`, e.g. to='r2'")
]
Flag = Annotated[StrictBool, Hint("pass True or False")]
BuildTarget = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    Hint("name a stage of the Dockerfile (FROM ... AS NAME)"),
]


def _callable(value: object) -> object:
    if value is not None and not callable(value):
        raise ValueError(f"must be a callable taking an Event, not {_kind(value)}")
    return value


EventCallback = Annotated[
    Any, BeforeValidator(_callable), Hint("pass a function that takes one Event, or None")
]


# -- reporting ----------------------------------------------------------------------------


def _hint_in(annotation: object) -> str | None:
    """The ``Hint`` inside ``annotation`` (also through ``X | None`` and ``Optional``)."""
    if typing.get_origin(annotation) is Annotated:
        for meta in getattr(annotation, "__metadata__", ()):
            if isinstance(meta, Hint):
                return meta.text
    for arg in typing.get_args(annotation):
        found = _hint_in(arg)
        if found:
            return found
    return None


def field_hints(model: type) -> dict[str, str]:
    """Field name → its type's ``Hint``, for every field of ``model`` (a pydantic model or a
    ``TypedDict``) that has one."""
    hints: dict[str, str] = {}
    if isinstance(model, type) and issubclass(model, BaseModel):
        for name, info in model.model_fields.items():
            found = next((m.text for m in info.metadata if isinstance(m, Hint)), None)
            found = found or _hint_in(info.annotation)
            if found:
                hints[name] = found
        return hints
    for name, annotation in typing.get_type_hints(model, include_extras=True).items():
        found = _hint_in(annotation)
        if found:
            hints[name] = found
    return hints


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, rule)`` pairs of ``exc``, without the input values (they may be secrets)."""
    found = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "value"
        message = error["msg"].removeprefix("Value error, ")
        found.append((field, message))
    return found


def config_error(
    exc: ValidationError,
    model: type | Mapping[str, str],
    *,
    where: str,
    also: str | None = None,
    error: type[ConfigError] = ConfigError,
) -> ConfigError:
    """A ``ConfigError`` naming each bad field of ``exc`` and, as the fix, what it accepts.

    ``model`` gives the hints (a model whose fields use the types above, or a field → hint
    mapping); ``where`` says what was read (``"ship() arguments"``, ``"[app] in
    ./cloudship.toml"``); ``also`` is a last hint added to the fix.
    """
    hints = field_hints(model) if isinstance(model, type) else dict(model)
    found = problems(exc)
    fixes: list[str] = []
    for field, _ in found:
        top = field.split(".")[0]
        hint = hints.get(top)
        if hint and f"{top}: {hint}" not in fixes:
            fixes.append(f"{top}: {hint}")
    if also:
        fixes.append(also)
    return error(
        f"invalid {where}: " + "; ".join(f"{field}: {rule}" for field, rule in found),
        fix="; ".join(fixes) or "see docs/configuration.md",
    )


# -- the public functions' arguments ------------------------------------------------------


class ServiceArguments(BaseModel):
    """``status``/``logs``/``rollback``/``destroy``'s arguments."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", defer_build=True)

    name: ServiceName
    target: TargetArg = None
    tail: Tail | None = None
    to: RevisionId | None = None
    timeout: Timeout | None = None
    on_event: EventCallback = None


class LogsArguments(ServiceArguments):
    """``logs``: ``tail`` is a number of lines, never ``None``."""

    tail: Tail = 100


#: ``follow_logs``' ``tail`` may be 0: only the lines written from now on, as
#: ``docker logs -f --tail 0``
FollowTail = Annotated[
    int,
    NoBool,
    Field(ge=0, le=100_000),
    Hint("pass a number of lines, e.g. tail=100 (0: new only)"),
]


class FollowArguments(ServiceArguments):
    """``follow_logs``: ``tail`` is a number of lines (0 allowed), never ``None``."""

    tail: FollowTail = 100


def check_source(source: object) -> None:
    """Raise ``SourceError`` unless ``source`` can be a path or an image reference."""
    try:
        _source(source)
    except ValueError as exc:
        raise SourceError(
            f"invalid source: {exc}",
            fix="pass a directory with a Dockerfile (str or Path), or an image reference "
            "such as 'app:v1'",
        ) from None


def check_service_arguments(name: object, call: str, **arguments: Any) -> None:
    """Refuse bad day-2 arguments (``name``, ``target``, ``tail``, ``to``, ``timeout``,
    ``on_event``) with ``ConfigError``, before any remote call."""
    model: type[ServiceArguments] = (
        (FollowArguments if call == "follow_logs" else LogsArguments)
        if "tail" in arguments
        else ServiceArguments
    )
    try:
        model.model_validate({"name": name, **arguments})
    except ValidationError as exc:
        raise config_error(exc, model, where=f"{call}() arguments") from None


__all__ = [
    "BuildArgs",
    "BuildTarget",
    "Cpu",
    "DockerfilePath",
    "EnvMap",
    "EventCallback",
    "Flag",
    "HealthPath",
    "Hint",
    "LogsArguments",
    "Memory",
    "Platform",
    "Port",
    "Replicas",
    "RevisionId",
    "SecretMap",
    "ServiceArguments",
    "ServiceName",
    "SourcePath",
    "Tag",
    "Tail",
    "TargetArg",
    "TargetName",
    "Timeout",
    "check_service_arguments",
    "check_source",
    "config_error",
    "field_hints",
    "parse_memory",
    "path_problem",
    "problems",
    "suggested_service_name",
]
