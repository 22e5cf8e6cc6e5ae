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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import (
    ConfigDict,
    SecretStr,
    SkipValidation,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from cloudship.deadline import DEFAULT_TIMEOUT
from cloudship.engine import Engine
from cloudship.errors import ConfigError
from cloudship.events import EventSink
from cloudship.validation import (
    BuildArgs,
    Cpu,
    DockerfilePath,
    EnvMap,
    EventCallback,
    Flag,
    HealthPath,
    Hint,
    Memory,
    Platform,
    Port,
    Replicas,
    SecretMap,
    ServiceName,
    Tag,
    Timeout,
    config_error,
)


@dataclass(frozen=True)
class CliFlag:
    """How an option appears on the command line (``ship`` and ``plan``)."""

    help: str
    flags: tuple[str, ...] = ()
    #: ``pairs``: repeatable ``KEY=VALUE`` folded into a mapping; ``secret``: same, and a bare
    #: ``KEY`` reads ``$KEY`` so values stay off the command line
    kind: Literal["value", "pairs", "secret", "flag"] = "value"
    ship_only: bool = False


class ShipOptions(TypedDict, total=False):
    """Keyword options of ``ship()`` and ``plan()``; each may be left out."""

    # strict: keyword arguments are Python values, so port="80" is as wrong as port=True.
    # The types (cloudship.validation) carry the ranges and rules and the fix hints.
    __pydantic_config__ = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=True)  # type: ignore[misc]

    name: Annotated[ServiceName | None, CliFlag("service name (default: the directory's name)")]
    tag: Annotated[Tag | None, CliFlag("image tag (default: git SHA, else content-derived)")]
    port: Annotated[Port | None, CliFlag("port the app listens on")]
    env: Annotated[EnvMap | None, CliFlag("KEY=VALUE (repeatable)", ("--env", "-e"), "pairs")]
    secrets: Annotated[
        SecretMap | None,
        CliFlag("KEY=VALUE, or KEY to read $KEY (repeatable)", ("--secret",), "secret"),
    ]
    health_path: Annotated[HealthPath | None, CliFlag("HTTP path the health gate probes")]
    cpu: Annotated[Cpu | None, CliFlag("vCPUs, e.g. 0.5")]
    memory: Annotated[Memory | None, CliFlag("memory, e.g. 512Mi")]
    replicas: Annotated[Replicas | None, CliFlag("replicas")]
    max_replicas: Annotated[
        Replicas | None, CliFlag("autoscaling ceiling (replicas is then the floor)")
    ]
    #: reachable from the internet (default True); False keeps the service inside its network
    public: Flag | None
    platform: Annotated[Platform | None, CliFlag("os/arch to build and run, e.g. linux/amd64")]
    dockerfile: Annotated[
        DockerfilePath | None,
        CliFlag("the Dockerfile (default: SOURCE/Dockerfile)", ("--file", "-f")),
    ]
    build_args: Annotated[
        BuildArgs | None,
        CliFlag("build argument KEY=VALUE (repeatable)", ("--build-arg",), "pairs"),
    ]
    no_cache: Annotated[Flag, CliFlag("rebuild every step", kind="flag")]
    force: Annotated[Flag, CliFlag("push and deploy even if unchanged", kind="flag")]
    timeout: Annotated[
        Timeout,
        CliFlag(
            "seconds the whole ship may take (default: twice what the rollout needs, at least 300)",
            ship_only=True,
        ),
    ]
    #: provider settings, e.g. ``{"host_port": 8080}``
    settings: Annotated[Mapping[str, Any] | None, Hint("pass settings={'host_port': 8080}")]
    on_event: EventCallback
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
    max_replicas: int | None = None
    public: bool | None = None
    platform: str | None = None
    dockerfile: str | None = None
    build_args: Mapping[str, str] | None = None
    no_cache: bool = False
    force: bool = False
    #: None: not given; ``ship`` derives it (``Runtime.rollout_seconds``, ``DEFAULT_TIMEOUT``)
    timeout: float | None = None
    settings: Mapping[str, Any] | None = None
    on_event: EventSink | None = None
    engine: Engine | None = None


@functools.cache
def _adapter() -> TypeAdapter[ShipOptions]:
    """Built on first use: building the schema costs a few milliseconds."""
    return TypeAdapter(ShipOptions)


def read_options(given: Mapping[str, Any]) -> Options:
    """Validate ``ship``/``plan`` keywords; unknown keywords become provider settings.

    Raises ``ConfigError`` naming each bad option and what it accepts (never its value: it
    may be a secret)."""
    options = {k: v for k, v in given.items() if k in OPTION_NAMES}
    extra = {k: v for k, v in given.items() if k not in OPTION_NAMES}
    given_settings = options.get("settings")
    if given_settings is not None and not isinstance(given_settings, Mapping):
        raise ConfigError(
            f"settings must be a mapping of names to values, not {type(given_settings).__name__}",
            fix="pass settings={'host_port': 8080}",
        )
    try:
        checked = _adapter().validate_python(options)
    except ValidationError as exc:
        raise config_error(exc, ShipOptions, where="options") from None
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
