"""``ship()``, ``plan()``, ``status()``, ``services()``, ``logs()``, ``rollback()``, ``destroy()``.

The public, typed signatures. Each function imports the flow (``cloudship.flow``: pydantic,
docker-py, the targets) on its first call, so ``from cloudship import ship`` costs a fresh
process almost nothing (benchmarks/import_time.py). ``ship`` runs::

    source → build (layer cache) → platform check → spec check → registry ready + credentials
           → skip push if the registry has the digest → push → deploy by digest → Shipment

Everything that can be refused (bad input, a platform the runtime cannot run, a spec it cannot
honour) is refused before anything remote is created or pushed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack, overload

from cloudship.deadline import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from cloudship.events import EventSink
    from cloudship.flow import ManyTargets, TargetArg
    from cloudship.options import ShipOptions
    from cloudship.runtime import Deployment, ServiceStatus
    from cloudship.shipment import Shipment, ShipPlan
    from cloudship.targets import Target


@overload
def ship(
    source: str | Path, target: TargetArg = None, **options: Unpack[ShipOptions]
) -> Shipment: ...


@overload
def ship(
    source: str | Path, target: ManyTargets, **options: Unpack[ShipOptions]
) -> list[Shipment]: ...


def ship(
    source: str | Path,
    target: TargetArg | ManyTargets = None,
    **options: Unpack[ShipOptions],
) -> Shipment | list[Shipment]:
    """Build ``source``, push it, deploy it by digest to ``target``, and return a Shipment.

    ``source`` is a directory with a Dockerfile, a local image (``app:v1``) or a remote
    digest-pinned reference (deployed as is, nothing pushed). ``target`` defaults to the config
    file's ``target``, then ``"local"``. ``port`` is the port the app listens on in the
    container (default: the image's single EXPOSE). ``tag`` defaults to the git short SHA of a
    clean tree, else a content-derived tag; the deploy always uses the digest. Provider
    settings go in ``settings={"host_port": 8080}`` (other keywords are taken as provider
    settings too). The options are ``cloudship.options.ShipOptions``.

    A directory is built with BuildKit for the platform each target runs (``platform=``
    overrides; one build per distinct platform), with ``dockerfile=`` (relative to the
    directory), ``build_args=`` and ``no_cache=`` as ``docker build`` takes them. On an engine
    that never built the source, the layers of the image a target serves now are reused (a
    registry cache). Dockerfile advice such as the layer-order tip is in ``Shipment.warnings``.

    Re-shipping an unchanged source pushes nothing, restarts nothing and returns
    ``changed=False``; ``force=True`` pushes and deploys a new revision anyway.

    With a list of targets the image is built once, then pushed and deployed to every target
    concurrently, and a list of Shipments (in the order given) is returned. Every target is
    checked (spec, platform, pull path) before anything is pushed anywhere — the same checks
    ``plan()`` runs; a target that fails later does not undo the others: ``MultiTargetError``
    then carries both the shipments that succeeded and each failure with its cause.
    ``on_event`` may then be called from worker threads, one call at a time.
    """
    from cloudship import flow

    return flow.ship(source, target, **options)


@overload
def plan(
    source: str | Path, target: TargetArg = None, **options: Unpack[ShipOptions]
) -> ShipPlan: ...


@overload
def plan(
    source: str | Path, target: ManyTargets, **options: Unpack[ShipOptions]
) -> list[ShipPlan]: ...


def plan(
    source: str | Path,
    target: TargetArg | ManyTargets = None,
    **options: Unpack[ShipOptions],
) -> ShipPlan | list[ShipPlan]:
    """What ``ship()`` would do, with the same options and the same checks in the same order:
    a plan refuses exactly what the ship would refuse. Builds locally (to know the image) and
    only reads from the registry and the runtime: nothing is pushed, created or started."""
    from cloudship import flow

    return flow.plan(source, target, **options)


def status(name: str, target: str | Target | None = None, **settings: Any) -> ServiceStatus:
    """The service's serving revision and history; ``ServiceNotFoundError`` if not deployed."""
    from cloudship import flow

    return flow.status(name, target, **settings)


def services(target: str | Target | None = None, **settings: Any) -> list[str]:
    """The names of the services ``target`` runs (those cloudship deployed), sorted."""
    from cloudship import flow

    return flow.services(target, **settings)


def logs(
    name: str, target: str | Target | None = None, tail: int = 100, **settings: Any
) -> list[str]:
    """The serving revision's last ``tail`` log lines."""
    from cloudship import flow

    return flow.logs(name, target, tail, **settings)


def follow_logs(
    name: str,
    target: str | Target | None = None,
    tail: int = 100,
    *,
    stop: threading.Event | None = None,
    **settings: Any,
) -> Iterator[str]:
    """The last ``tail`` log lines, then each new line as the service writes it, until
    ``stop`` is set (or the caller stops iterating). Follows the service across deploys."""
    from cloudship import flow

    return flow.follow_logs(name, target, tail, stop=stop, **settings)


def rollback(
    name: str,
    target: str | Target | None = None,
    to: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    **settings: Any,
) -> Deployment:
    """Serve an earlier revision: ``to`` (e.g. ``"r2"``), else the one before the current."""
    from cloudship import flow

    return flow.rollback(name, target, to, timeout=timeout, on_event=on_event, **settings)


def destroy(
    name: str, target: str | Target | None = None, *, missing_ok: bool = False, **settings: Any
) -> bool:
    """Remove the service and all its revisions (images stay in the registry); True when
    there was something to remove.

    A service the target does not run raises ``ServiceNotFoundError`` (a mistyped name is
    not silently "destroyed"), unless ``missing_ok=True``: then it returns False."""
    from cloudship import flow

    return flow.destroy(name, target, missing_ok=missing_ok, **settings)
