"""Target names → providers, loaded on first use.

A target pairs a ``Registry`` with a ``Runtime``. Built-in names resolve through the sorted
table below (module path + the SDK it needs + the extra that installs it); third parties add
targets with the ``cloudship.providers`` entry-point group or, in-process, with
``register_target(name, provider)``. Nothing is imported until a target is asked for, and a
missing SDK gives an install hint — checked when the target is resolved, before anything is
built, even for a provider that imports its SDK lazily — while an ImportError from inside a
provider (a bug) propagates unchanged.

A named target in ``cloudship.toml`` (``[targets.NAME] registry = … runtime = …``) names each
part by a provider's name (``"aws"``, or any plugin's) or by a kind a provider declares in
``registry_kinds`` / ``runtime_kinds`` (``"ecr"``, ``"ecs"``): there is no closed list, so a
plugin's registry or runtime composes with any other exactly as the built-in ones do.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel

from cloudship.errors import ConfigError, ProviderNotInstalledError
from cloudship.registry import Registry
from cloudship.runtime import Runtime

if TYPE_CHECKING:  # the config module loads pydantic-settings: only on first use
    from cloudship.config import ConfigFile


@dataclass(frozen=True)
class Target:
    """A registry and a runtime that can pull from it. Compose any pair freely.

    ``paired`` is set by providers for the registry/runtime pairs they build together (they
    know the pull path works, e.g. a test registry on loopback); for any other pair the
    runtime checks, before anything is pushed, that it can pull from the registry.
    """

    registry: Registry
    runtime: Runtime
    name: str = "custom"
    paired: bool = False

    def check_pull_path(self) -> None:
        if not self.paired:
            self.runtime.check_registry(self.registry)


class Provider(ABC):
    """A named target factory: what an entry point in ``cloudship.providers`` points at."""

    name: ClassVar[str]
    #: the provider's settings model (``[name]`` table, ``CLOUDSHIP_<NAME>_*`` env, kwargs)
    settings_model: ClassVar[type[BaseModel]]
    #: names a ``[targets.NAME]`` table may use for this provider's registry / runtime, besides
    #: the provider's own name (e.g. ``{"ecr"}`` / ``{"ecs"}`` for aws)
    registry_kinds: ClassVar[frozenset[str]] = frozenset()
    runtime_kinds: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        """Build the target from the config file's table for this provider, the environment
        and ``overrides`` (provider settings passed as keyword arguments)."""

    def registry(self, config: ConfigFile, overrides: dict[str, Any]) -> Registry:
        """This provider's registry alone, for a composed target."""
        return self.target(config, overrides).registry

    def runtime(self, config: ConfigFile, overrides: dict[str, Any]) -> Runtime:
        """This provider's runtime alone, for a composed target."""
        return self.target(config, overrides).runtime


class _Known(NamedTuple):
    module: str
    #: modules of the SDK the extra installs (any of them missing → install hint)
    sdk: tuple[str, ...]
    extra: str | None
    #: the kinds the provider declares, repeated here so composing needs no import to find them
    registry_kinds: frozenset[str] = frozenset()
    runtime_kinds: frozenset[str] = frozenset()


def _covers(sdk: tuple[str, ...], missing: str) -> bool:
    """True when module ``missing`` is (a parent or child of) one of the ``sdk`` modules."""
    return any(
        missing == m or missing.startswith(m + ".") or m.startswith(missing + ".") for m in sdk
    )


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # a parent package is missing
        return True


# name → where the provider lives, the SDK module it imports, and the extra that installs it.
KNOWN_TARGETS: dict[str, _Known] = dict(
    sorted(
        {
            "aks": _Known(
                "cloudship_kubernetes.aks:provider",
                (
                    "azure.identity",
                    "azure.mgmt.authorization",
                    "azure.mgmt.containerregistry",
                    "azure.mgmt.containerservice",
                    "azure.mgmt.resource",
                    "lightkube",
                    "httpx2",
                ),
                "aks",
                frozenset(),
                frozenset({"aks"}),
            ),
            "aws": _Known(
                "cloudship_aws:provider",
                ("boto3", "botocore"),
                "aws",
                frozenset({"ecr"}),
                frozenset({"ecs"}),
            ),
            "azure": _Known(
                "cloudship_azure:provider",
                (
                    "azure.identity",
                    "azure.mgmt.appcontainers",
                    "azure.mgmt.authorization",
                    "azure.mgmt.containerregistry",
                    "azure.mgmt.msi",
                    "azure.mgmt.resource",
                ),
                "azure",
                frozenset({"acr"}),
                frozenset({"containerapps"}),
            ),
            "dockerhub": _Known("cloudship_dockerhub:provider", (), "dockerhub"),
            "eks": _Known(
                "cloudship_kubernetes.eks:provider",
                ("boto3", "botocore", "lightkube", "httpx2"),
                "eks",
                frozenset(),
                frozenset({"eks"}),
            ),
            "kubernetes": _Known(
                "cloudship_kubernetes:provider",
                ("lightkube", "httpx2"),
                "kubernetes",
                frozenset(),
                frozenset({"kubernetes"}),
            ),
            "local": _Known("cloudship_local:provider", (), None),
        }.items()
    )
)

#: providers registered in this process with ``register_target``
_REGISTERED: dict[str, Provider] = {}


def register_target(name: str, provider: Provider) -> None:
    """Make ``provider`` available as target ``name`` in this process (as an entry point in
    ``cloudship.providers`` does for an installed package); a later call replaces it."""
    if not isinstance(provider, Provider):
        raise ConfigError(
            f"register_target({name!r}, ...) needs a cloudship Provider, "
            f"not a {type(provider).__name__}",
            fix="subclass cloudship.Provider and pass an instance",
        )
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid target name {name!r}", fix="use letters, digits, '-' and '_'")
    _REGISTERED[name] = provider


def available() -> list[str]:
    """Every target name cloudship knows (built-in, registered, from entry points), sorted."""
    names = set(KNOWN_TARGETS) | set(_REGISTERED)
    from importlib.metadata import entry_points  # scans every installed distribution

    names.update(ep.name for ep in entry_points(group="cloudship.providers"))
    return sorted(names)


def load_provider(name: str) -> Provider:
    """The provider for ``name``; raises ``ConfigError`` or ``ProviderNotInstalledError``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    known = KNOWN_TARGETS.get(name)
    spec = known.module if known else None
    if spec is None:
        from importlib.metadata import entry_points

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
        if known and _covers(known.sdk, missing):
            raise ProviderNotInstalledError(
                f"target {name!r} needs the {missing.split('.')[0]} SDK (module {missing} is "
                "missing)",
                fix=hint,
            ) from exc
        if missing == module_name:
            raise ProviderNotInstalledError(
                f"target {name!r} is not included in this cloudship installation",
                fix=hint or "install the package that provides it",
            ) from exc
        raise
    absent = [m for m in known.sdk if _absent(m)] if known else []
    if absent and known:  # a provider that imports its SDK lazily would fail mid-deploy
        raise ProviderNotInstalledError(
            f"target {name!r} needs {', '.join(absent)} (not installed)",
            fix=f"pip install 'cloudship[{known.extra}]'" if known.extra else None,
        )
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
    named = config.targets.get(target)
    if named is not None:
        return _compose(target, named, config, dict(overrides or {}))
    return load_provider(target).target(config, dict(overrides or {}))


def route_settings(
    target: str, overrides: dict[str, Any], owners: dict[str, set[str]]
) -> dict[str, dict[str, Any]]:
    """Split keyword settings between the parts of a target by the setting names each part
    has (a name several parts have goes to each); a name none has is a ``ConfigError``."""
    routed: dict[str, dict[str, Any]] = {part: {} for part in owners}
    for key, value in overrides.items():
        parts = [part for part, names in owners.items() if key in names]
        if not parts:
            known = "; ".join(
                f"{part}: {', '.join(sorted(names))}" for part, names in owners.items()
            )
            raise ConfigError(
                f"target {target!r} has no setting {key!r}", fix=f"settings are {known}"
            )
        for part in parts:
            routed[part][key] = value
    return routed


def _kind(table: dict[str, Any], key: str, target: str) -> Provider:
    """The provider whose registry (``key="registry"``) or runtime a named target names: by
    provider name, or by a kind a built-in row or a loaded plugin declares."""
    value = table.get(key)
    if isinstance(value, str) and value in available():
        return load_provider(value)
    declared = "registry_kinds" if key == "registry" else "runtime_kinds"
    for name, known in KNOWN_TARGETS.items():
        if value in getattr(known, declared):
            return load_provider(name)
    plugins = [n for n in available() if n not in KNOWN_TARGETS]
    kinds = {k for known in KNOWN_TARGETS.values() for k in getattr(known, declared)}
    for name in plugins:  # only plugins are imported to read their kinds
        provider = load_provider(name)
        kinds |= getattr(provider, declared)
        if value in getattr(provider, declared):
            return provider
    raise ConfigError(
        f"target {target!r}: {key} = {value!r} is not a provider or a {key} kind cloudship knows",
        fix=f"use one of: {', '.join(sorted(kinds | set(available())))}",
    )


def _compose(
    name: str, table: dict[str, Any], config: ConfigFile, overrides: dict[str, Any]
) -> Target:
    """A named target from ``[targets.NAME]``: a registry from one provider, a runtime from
    another (or the same), with per-target settings over each provider's own table."""
    registry_provider = _kind(table, "registry", name)
    runtime_provider = _kind(table, "runtime", name)
    providers = {registry_provider.name: registry_provider, runtime_provider.name: runtime_provider}
    unknown = set(table) - {"registry", "runtime", *providers}
    if unknown:
        raise ConfigError(
            f"target {name!r}: unknown keys {sorted(unknown)}",
            fix=f"per-provider settings go in tables named {sorted(providers)}",
        )
    for provider_name in providers:
        config = config.with_section(
            provider_name, {**config.section(provider_name), **table.get(provider_name, {})}
        )
    routed = route_settings(
        name, overrides, {p: set(prov.settings_model.model_fields) for p, prov in providers.items()}
    )
    if registry_provider is runtime_provider:
        built = registry_provider.target(config, routed[registry_provider.name])
        return Target(registry=built.registry, runtime=built.runtime, name=name, paired=True)
    return Target(
        registry=registry_provider.registry(config, routed[registry_provider.name]),
        runtime=runtime_provider.runtime(config, routed[runtime_provider.name]),
        name=name,
    )
