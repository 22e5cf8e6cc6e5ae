"""Typed progress events.

``ship(..., on_event=callback)`` calls ``callback(event)`` for every step of the flow, in order,
one call at a time (from worker threads when shipping to several targets at once). Events are
frozen dataclasses so a callback can keep them; ``target`` names the target an event belongs
to, ``None`` for the build, which all targets share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    target: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(Event):
    """Something the user should know that is not a step (e.g. an embedded registry started)."""

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuilderChosen(Event):
    """Which builder runs the build: ``"buildkit"`` normally, ``"classic"`` as a fallback, with
    the reason (``DOCKER_BUILDKIT=0``, or an engine API older than 1.39)."""

    builder: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildStepStarted(Event):
    """A Dockerfile instruction started (BuildKit builds only; ``stage`` names a multi-stage
    build's stage, None for the last or only one)."""

    step: int
    total: int
    instruction: str
    stage: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildLog(Event):
    """One line a running step printed (BuildKit builds only)."""

    step: int
    instruction: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildStep(Event):
    """One Dockerfile instruction finished; ``cached`` is True when the layer cache was hit.
    ``seconds`` is the step's own duration (0 for the classic builder, which does not say)."""

    step: int
    total: int
    instruction: str
    cached: bool
    seconds: float = 0.0
    stage: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerfileWarning(Event):
    """Advice about the Dockerfile (e.g. ``code="layer-order"``); also in ``Shipment.warnings``."""

    code: str
    line: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildFinished(Event):
    """The build ended; ``first_miss`` is the first step that was not in the cache (None when
    every step was), ``platform`` what it was built for."""

    image_id: str
    steps: int
    cache_hits: int
    seconds: float
    first_miss: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReused(Event):
    """No build ran: nothing the build cache keys on (context files, Dockerfile, build args,
    target, platform, base images) changed since the engine built ``image_id``, which stands
    for this build (``cloudship.build_fingerprint``); ``seconds`` is the time checking took."""

    image_id: str
    seconds: float
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PushProgress(Event):
    """A layer's push progress; ``status`` is the engine's word (Pushing, Pushed, ...)."""

    layer: str
    status: str
    current: int
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PushFinished(Event):
    """The push ended. ``skipped`` is True when the registry already had the manifest."""

    digest: str
    skipped: bool
    layers_pushed: int = 0
    layers_existing: int = 0
    bytes_pushed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployPhase(Event):
    """A runtime phase. The local runtime emits: waiting (for another ship's lock), unchanged,
    pull, start, probe (again as progress, with what the app answered), switch, rollback,
    done; other runtimes document their own."""

    phase: str
    detail: str = ""


EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    """The default sink."""
