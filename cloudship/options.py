"""The options of ``ship()`` and ``plan()``, declared once.

``ShipOptions`` is the one declaration: ``ship``, its overloads and ``plan`` take
``**options: Unpack[ShipOptions]`` (so type checkers and IDEs know every keyword), the values
are validated against it before anything is built (``read_options``), and the CLI derives its
``ship``/``plan`` flags from the same annotations (``CliFlag`` metadata). Adding an option is
one edit here.

Provider settings (``host_port=8080`` for ``local``, ``cluster="prod"`` for ``aws``) go in
``settings={...}``; as a convenience, keywords that are not options are taken as provider
settings too (type checkers flag those: use ``settings=`` in typed code).
"""

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    SecretStr,
    SkipValidation,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from cloudship.engine import Engine
from cloudship.errors import ConfigError
from cloudship.events import EventSink

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class CliFlag:
    """How an option appears on the command line (``ship`` and ``plan``)."""

    help: str
    flags: tuple[str, ...] = ()
    #: ``pairs``: repeatable ``KEY=VALUE`` folded into a mapping; ``secret``: same, and a bare
    #: ``KEY`` reads ``$KEY`` so values stay off the command line
    kind: Literal["value", "pairs", "secret", "flag"] = "value"
    ship_only: bool = False


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Cpu = Annotated[
    float,
    AfterValidator(_finite),
    Field(ge=0.01, le=1024),
]
Seconds = Annotated[float, AfterValidator(_finite), Field(gt=0, le=86400)]


class ShipOptions(TypedDict, total=False):
    """Keyword options of ``ship()`` and ``plan()``; each may be left out."""

    __pydantic_config__ = ConfigDict(extra="forbid", arbitrary_types_allowed=True)  # type: ignore[misc]

    name: Annotated[str | None, CliFlag("service name (default: the directory's name)")]
    tag: Annotated[str | None, CliFlag("image tag (default: git SHA, else content-derived)")]
    port: Annotated[StrictInt | None, Field(ge=1, le=65535), CliFlag("port the app listens on")]
    env: Annotated[
        Mapping[str, str] | None, CliFlag("KEY=VALUE (repeatable)", ("--env", "-e"), "pairs")
    ]
    secrets: Annotated[
        Mapping[str, str | SecretStr] | None,
        CliFlag("KEY=VALUE, or KEY to read $KEY (repeatable)", ("--secret",), "secret"),
    ]
    health_path: Annotated[str | None, CliFlag("HTTP path the health gate probes")]
    cpu: Annotated[Cpu | None, CliFlag("vCPUs, e.g. 0.5")]
    memory: Annotated[str | None, CliFlag("memory, e.g. 512Mi")]
    replicas: Annotated[StrictInt | None, Field(ge=0, le=1000), CliFlag("replicas")]
    platform: Annotated[str | None, CliFlag("os/arch to build and run, e.g. linux/amd64")]
    force: Annotated[StrictBool, CliFlag("push and deploy even if unchanged", kind="flag")]
    timeout: Annotated[Seconds, CliFlag("seconds the whole ship may take", ship_only=True)]
    #: provider settings, e.g. ``{"host_port": 8080}``
    settings: Mapping[str, Any] | None
    on_event: Annotated[Callable[..., object] | None, SkipValidation]
    engine: Annotated[Engine | None, SkipValidation]


#: what the CLI builds its flags from, in declaration order
OPTION_NAMES: tuple[str, ...] = tuple(ShipOptions.__annotations__)


@dataclass(frozen=True)
class Options:
    """Validated options, with every default filled in."""

    name: str | None = None
    tag: str | None = None
    port: int | None = None
    env: Mapping[str, str] | None = None
    secrets: Mapping[str, str | SecretStr] | None = None
    health_path: str | None = None
    cpu: float | None = None
    memory: str | None = None
    replicas: int | None = None
    platform: str | None = None
    force: bool = False
    timeout: float = DEFAULT_TIMEOUT
    settings: Mapping[str, Any] | None = None
    on_event: EventSink | None = None
    engine: Engine | None = None


@functools.cache
def _adapter() -> TypeAdapter[ShipOptions]:
    """Built on first use: building the schema costs a few milliseconds."""
    return TypeAdapter(ShipOptions)


def read_options(given: Mapping[str, Any]) -> Options:
    """Validate ``ship``/``plan`` keywords; unknown keywords become provider settings.

    Raises ``ConfigError`` naming each bad option (never its value: it may be a secret)."""
    from cloudship.config import validation_problems

    options = {k: v for k, v in given.items() if k in OPTION_NAMES}
    extra = {k: v for k, v in given.items() if k not in OPTION_NAMES}
    for key in ("env", "secrets", "settings"):
        if options.get(key) is not None and not isinstance(options[key], Mapping):
            raise ConfigError(
                f"{key} must be a mapping of names to values, not a {type(options[key]).__name__}",
                fix=f"pass {key}={{'NAME': 'value'}}",
            )
    if options.get("on_event") is not None and not callable(options["on_event"]):
        raise ConfigError("on_event must be callable", fix="pass a function taking an Event")
    try:
        checked = _adapter().validate_python(options)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid options: {validation_problems(exc)}",
            fix="see help(cloudship.ship) for each option's type and range",
        ) from None
    settings = {**(checked.get("settings") or {}), **extra}
    values: dict[str, Any] = {k: v for k, v in checked.items() if v is not None and k != "settings"}
    return Options(**values, settings=settings)


def cli_flags() -> list[tuple[str, Any, CliFlag]]:
    """``(option, annotation, CliFlag)`` for each option the CLI offers."""
    hints = get_type_hints(ShipOptions, include_extras=True)
    found: list[tuple[str, Any, CliFlag]] = []
    for option in OPTION_NAMES:
        metadata = getattr(hints[option], "__metadata__", ())
        flag = next((m for m in metadata if isinstance(m, CliFlag)), None)
        if flag is not None:
            found.append((option, hints[option], flag))
    return found


__all__ = [
    "DEFAULT_TIMEOUT",
    "OPTION_NAMES",
    "CliFlag",
    "Options",
    "ShipOptions",
    "cli_flags",
    "read_options",
]
