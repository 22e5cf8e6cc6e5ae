"""Target names → providers, loaded on first use.

A target pairs a ``Registry`` with a ``Runtime``. Built-in names resolve through the sorted
table below (module path + the SDK it needs + the extra that installs it); third parties add
targets with the ``cloudship.providers`` entry-point group. Nothing is imported until a target
is asked for, and a missing SDK gives an install hint, while an ImportError from inside a
provider (a bug) propagates unchanged.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, NamedTuple

from cloudship.config import ConfigFile
from cloudship.errors import ConfigError, ProviderNotInstalledError
from cloudship.registry import Registry
from cloudship.runtime import Runtime


@dataclass(frozen=True)
class Target:
    """A registry and a runtime that can pull from it. Compose any pair freely."""

    registry: Registry
    runtime: Runtime
    name: str = "custom"


class Provider(ABC):
    """A named target factory: what an entry point in ``cloudship.providers`` points at."""

    name: ClassVar[str]

    @abstractmethod
    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        """Build the target from the config file's table for this provider, the environment
        and ``overrides`` (provider settings passed as keyword arguments)."""


class _Known(NamedTuple):
    module: str
    sdk: str | None
    extra: str | None


# name → where the provider lives, the SDK module it imports, and the extra that installs it.
KNOWN_TARGETS: dict[str, _Known] = dict(
    sorted(
        {
            "aws": _Known("cloudship_aws:provider", "boto3", "aws"),
            "azure": _Known("cloudship_azure:provider", "azure.mgmt.appcontainers", "azure"),
            "dockerhub": _Known("cloudship_dockerhub:provider", None, "dockerhub"),
            "local": _Known("cloudship_local:provider", None, None),
        }.items()
    )
)


def available() -> list[str]:
    """Every target name cloudship knows (built-in and from entry points), sorted."""
    names = set(KNOWN_TARGETS)
    names.update(ep.name for ep in entry_points(group="cloudship.providers"))
    return sorted(names)


def load_provider(name: str) -> Provider:
    """The provider for ``name``; raises ``ConfigError`` or ``ProviderNotInstalledError``."""
    known = KNOWN_TARGETS.get(name)
    spec = known.module if known else None
    if spec is None:
        for ep in entry_points(group="cloudship.providers", name=name):
            spec = ep.value
    if spec is None:
        raise ConfigError(
            f"unknown target {name!r}",
            fix=f"use one of: {', '.join(available())}, or a Target(registry=..., runtime=...)",
        )
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        hint = f"pip install 'cloudship[{known.extra}]'" if known and known.extra else None
        sdk = known.sdk if known else None
        if sdk and (missing == sdk.split(".")[0] or sdk.startswith(missing + ".")):
            raise ProviderNotInstalledError(
                f"target {name!r} needs the {sdk.split('.')[0]} SDK", fix=hint
            ) from exc
        if missing == module_name:
            raise ProviderNotInstalledError(
                f"target {name!r} is not included in this cloudship installation",
                fix=hint or "install the package that provides it",
            ) from exc
        raise
    provider = getattr(module, attribute) if attribute else module
    if not isinstance(provider, Provider):
        raise TypeError(f"{spec} is not a cloudship Provider")
    return provider


def resolve(
    target: str | Target, config: ConfigFile, overrides: dict[str, Any] | None = None
) -> Target:
    """A ``Target`` as given, or built by the named provider."""
    if isinstance(target, Target):
        return target
    if not isinstance(target, str) or not target:
        raise ConfigError(
            f"target must be a name or a Target, not {target!r}",
            fix=f"use one of: {', '.join(available())}",
        )
    return load_provider(target).target(config, dict(overrides or {}))
