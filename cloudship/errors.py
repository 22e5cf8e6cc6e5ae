"""Every error cloudship raises, under one root.

::

    CloudshipError                      anything cloudship raises on purpose
    ├── ConfigError                     bad input: arguments, config files, references, specs
    │   ├── SourceError                 the source is not a build dir or an image reference
    │   └── PortInUseError              the host port a service needs is taken by something else
    ├── ProviderNotInstalledError       a target's SDK extra is missing (pip install hint)
    ├── EngineError                     the Docker engine is unreachable or failed
    │   └── BuildError                  `docker build` failed (carries the build log tail)
    ├── AuthError                       credentials missing, wrong or expired
    ├── RegistryError                   the registry is down or refused an operation
    │   └── PushError                   a push stream reported an error line
    ├── PlatformMismatchError           image os/arch not runnable on the target runtime
    ├── DeployError                     the runtime could not deploy
    │   ├── HealthCheckFailed           the new revision never became healthy (log tail,
    │   │                               what was rolled back)
    │   ├── RevisionNotFoundError       rollback target does not exist
    │   ├── ConcurrentShipError         another ship/rollback of the service is under way
    │   └── ServiceNotFoundError        the named service is not deployed on that target
    ├── ShipTimeoutError                an operation ran out of its time budget
    │                                   (``TimeoutError``: deprecated alias)
    └── MultiTargetError                some targets of a multi-target ship failed (carries
                                        the shipments that succeeded and each failure)

Messages say what was wrong and how to fix it. Providers translate SDK and HTTP errors into
these at one boundary and chain the original with ``raise ... from exc``. No message, ``str()``
or ``repr()`` of an error ever contains a credential.
"""

from __future__ import annotations

import builtins
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudship.shipment import Shipment


class CloudshipError(Exception):
    """Root of every error cloudship raises on purpose.

    ``fix`` is the hint shown to the user; it is appended to the message.
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)


class ConfigError(CloudshipError):
    """Bad input: an argument, a config file, an image reference or a service spec."""


class SourceError(ConfigError):
    """The source is neither a build directory nor a usable image reference."""


class PortInUseError(ConfigError):
    """The host port a service needs is already bound by something cloudship does not own."""


class ProviderNotInstalledError(CloudshipError):
    """A target needs an optional extra that is not installed."""


class EngineError(CloudshipError):
    """The Docker engine could not be reached, or an engine operation failed."""


class BuildError(EngineError):
    """``docker build`` failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, message: str, *, log_tail: list[str], fix: str | None = None) -> None:
        self.log_tail = log_tail
        tail = "\n".join(f"    {line}" for line in log_tail)
        # No output to show (a refused option, a Dockerfile problem found before building):
        # no empty "build output" block.
        text = f"{message}\n  build output (last lines):\n{tail}" if log_tail else message
        super().__init__(text, fix=fix)


class AuthError(CloudshipError):
    """Credentials are missing, wrong or expired."""


class RegistryError(CloudshipError):
    """The registry could not be reached or refused an operation."""


class PushError(RegistryError):
    """A push failed; the engine reported it as an error line in the progress stream."""


class PlatformMismatchError(CloudshipError):
    """The image's os/arch cannot run on the target runtime."""


class DeployError(CloudshipError):
    """The runtime could not deploy the image."""


class HealthCheckFailed(DeployError):
    """The new revision never answered its health probe.

    ``log_tail`` holds the container's last log lines; ``rolled_back_to`` names the revision
    that is serving again (``None`` when there was nothing to roll back to).
    """

    def __init__(
        self,
        message: str,
        *,
        log_tail: list[str],
        rolled_back_to: str | None,
        fix: str | None = None,
    ) -> None:
        self.log_tail = log_tail
        self.rolled_back_to = rolled_back_to
        restored = (
            f"  rolled back: revision {rolled_back_to} is serving again"
            if rolled_back_to
            else "  nothing to roll back to: the service has no earlier healthy revision"
        )
        tail = "\n".join(f"    {line}" for line in log_tail) or "    (no output)"
        super().__init__(f"{message}\n{restored}\n  container log (last lines):\n{tail}", fix=fix)


class RevisionNotFoundError(DeployError):
    """A rollback named a revision the service does not have."""


class ConcurrentShipError(DeployError):
    """Another ship (or rollback) of the same service holds its lock; ``holder`` names it."""

    def __init__(self, message: str, *, holder: str, fix: str | None = None) -> None:
        self.holder = holder
        super().__init__(message, fix=fix)


class ServiceNotFoundError(DeployError):
    """status/logs/rollback named a service the target does not run."""


class ShipTimeoutError(CloudshipError, builtins.TimeoutError):
    """An operation ran out of its time budget; also a builtin ``TimeoutError``.

    Named so that ``from cloudship import *`` does not shadow the builtin ``TimeoutError``;
    ``except TimeoutError`` (the builtin) still catches it.
    """


if TYPE_CHECKING:
    #: Deprecated alias of ``ShipTimeoutError``.
    TimeoutError = ShipTimeoutError


class MultiTargetError(CloudshipError):
    """``ship(src, target=[...])``: some targets failed; the others were not undone.

    ``shipped`` maps each target that succeeded to its Shipment; ``failed`` maps each target
    that failed to its error. ``exceptions`` lists the failures, as in an exception group.
    """

    def __init__(self, *, shipped: dict[str, Shipment], failed: dict[str, CloudshipError]) -> None:
        self.shipped = shipped
        self.failed = failed
        self.exceptions = tuple(failed.values())
        lines = [f"  {name}: {type(exc).__name__}: {exc.message}" for name, exc in failed.items()]
        ok = ", ".join(shipped) or "none"
        super().__init__(
            f"{len(failed)} of {len(failed) + len(shipped)} targets failed (succeeded: {ok}):\n"
            + "\n".join(lines),
            fix="fix each failed target's cause and ship again: the others are unchanged",
        )


def deprecated_timeout_alias(stacklevel: int = 2) -> type[ShipTimeoutError]:
    """``ShipTimeoutError``, with a DeprecationWarning for code that still says TimeoutError."""
    warnings.warn(
        "cloudship's TimeoutError is now ShipTimeoutError; the old name will be removed",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )
    return ShipTimeoutError


def __getattr__(name: str) -> type[ShipTimeoutError]:
    # The old name stays importable (``from cloudship.errors import TimeoutError``) with a
    # DeprecationWarning, but is left out of ``__all__``: a star import must not shadow the
    # builtin ``TimeoutError`` (whose ``except`` would then miss socket and asyncio timeouts).
    if name == "TimeoutError":
        return deprecated_timeout_alias(stacklevel=2)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthError",
    "BuildError",
    "CloudshipError",
    "ConcurrentShipError",
    "ConfigError",
    "DeployError",
    "EngineError",
    "HealthCheckFailed",
    "MultiTargetError",
    "PlatformMismatchError",
    "PortInUseError",
    "ProviderNotInstalledError",
    "PushError",
    "RegistryError",
    "RevisionNotFoundError",
    "ServiceNotFoundError",
    "ShipTimeoutError",
    "SourceError",
]
