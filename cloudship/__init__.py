"""cloudship: ship containers to any cloud with one call.

    from cloudship import ship
    result = ship("examples/monitor-app", target="local")
    print(result.url, result.digest, result.changed)

Importing ``cloudship`` is cheap: the flow, pydantic models, docker-py and every cloud SDK load
on first use of the name that needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cloudship.errors import (
    AuthError,
    BuildError,
    CloudshipError,
    ConcurrentShipError,
    ConfigError,
    DeployError,
    EngineError,
    HealthCheckFailed,
    MultiTargetError,
    PlatformMismatchError,
    PortInUseError,
    ProviderNotInstalledError,
    PushError,
    RegistryError,
    RevisionNotFoundError,
    ServiceNotFoundError,
    ShipTimeoutError,
    SourceError,
)

if TYPE_CHECKING:
    from cloudship.api import destroy, follow_logs, logs, plan, rollback, services, ship, status
    from cloudship.dev import DevIteration, dev
    from cloudship.events import (
        BuildFinished,
        BuildStep,
        DeployPhase,
        Event,
        Notice,
        PushFinished,
        PushProgress,
    )
    from cloudship.options import ShipOptions
    from cloudship.registry import Registry, RegistryAuth
    from cloudship.runtime import Deployment, Plan, Revision, Runtime, ServiceSpec, ServiceStatus
    from cloudship.shipment import Shipment, ShipPlan
    from cloudship.targets import Provider, Target, register_target

__version__ = "0.1.0"

_LAZY = {
    "ship": "cloudship.api",
    "plan": "cloudship.api",
    "status": "cloudship.api",
    "logs": "cloudship.api",
    "rollback": "cloudship.api",
    "destroy": "cloudship.api",
    "services": "cloudship.api",
    "follow_logs": "cloudship.api",
    "dev": "cloudship.dev",
    "DevIteration": "cloudship.dev",
    "Shipment": "cloudship.shipment",
    "ShipPlan": "cloudship.shipment",
    "Target": "cloudship.targets",
    "Provider": "cloudship.targets",
    "register_target": "cloudship.targets",
    "ShipOptions": "cloudship.options",
    "Plan": "cloudship.runtime",
    "Revision": "cloudship.runtime",
    "Event": "cloudship.events",
    "Notice": "cloudship.events",
    "BuildStep": "cloudship.events",
    "BuildFinished": "cloudship.events",
    "PushProgress": "cloudship.events",
    "PushFinished": "cloudship.events",
    "DeployPhase": "cloudship.events",
    "Registry": "cloudship.registry",
    "RegistryAuth": "cloudship.registry",
    "Runtime": "cloudship.runtime",
    "ServiceSpec": "cloudship.runtime",
    "ServiceStatus": "cloudship.runtime",
    "Deployment": "cloudship.runtime",
}


def __getattr__(name: str) -> Any:
    if name == "TimeoutError":  # deprecated alias of ShipTimeoutError, kept out of __all__
        from cloudship.errors import deprecated_timeout_alias

        return deprecated_timeout_alias(stacklevel=3)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudship' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
    "BuildError",
    "BuildFinished",
    "BuildStep",
    "CloudshipError",
    "ConcurrentShipError",
    "ConfigError",
    "DeployError",
    "DeployPhase",
    "Deployment",
    "DevIteration",
    "EngineError",
    "Event",
    "HealthCheckFailed",
    "MultiTargetError",
    "Notice",
    "Plan",
    "PlatformMismatchError",
    "PortInUseError",
    "Provider",
    "ProviderNotInstalledError",
    "PushError",
    "PushFinished",
    "PushProgress",
    "Registry",
    "RegistryAuth",
    "RegistryError",
    "Revision",
    "RevisionNotFoundError",
    "Runtime",
    "ServiceNotFoundError",
    "ServiceSpec",
    "ServiceStatus",
    "ShipOptions",
    "ShipPlan",
    "ShipTimeoutError",
    "Shipment",
    "SourceError",
    "Target",
    "__version__",
    "destroy",
    "dev",
    "follow_logs",
    "logs",
    "plan",
    "register_target",
    "rollback",
    "services",
    "ship",
    "status",
]
