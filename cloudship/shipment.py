"""What ``ship()`` and ``plan()`` return.

Models here and in ``runtime``/``registry`` use ``defer_build``: their schemas are built on first
use, not at import, which keeps ``from cloudship import ship`` fast (benchmarks/import_time.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BuildSummary(BaseModel):
    """``first_miss`` is the first step that was not in the layer cache (None: all were).
    ``reused`` is True when no build ran: nothing the build cache keys on had changed, so the
    engine's previous image stands for it (``steps`` and ``cache_hits`` are then 0)."""

    model_config = ConfigDict(defer_build=True)

    image_id: str
    steps: int
    cache_hits: int
    first_miss: str | None = None
    platform: str | None = None
    builder: str | None = None  # "buildkit", or "classic" for the fallback
    seconds: float | None = None
    reused: bool = False


class BuildWarning(BaseModel):
    """Advice about the Dockerfile; ``code`` names the check (``"layer-order"``), ``line`` the
    Dockerfile line it is about."""

    model_config = ConfigDict(defer_build=True)

    code: str
    line: int
    message: str


class PushSummary(BaseModel):
    """What the push moved: ``bytes_pushed`` is the size of the layers the registry lacked."""

    model_config = ConfigDict(defer_build=True)

    skipped: bool
    layers_pushed: int = 0
    layers_existing: int = 0
    bytes_pushed: int = 0


class Shipment(BaseModel):
    """One source shipped to one target.

    ``image`` is the digest-pinned reference the runtime pulled; ``changed`` is False when
    nothing had to move (no push, no new revision).
    """

    model_config = ConfigDict(defer_build=True)

    target: str
    name: str
    image: str
    digest: str
    tag: str | None
    url: str | None
    revision: str
    previous_revision: str | None
    changed: bool
    build: BuildSummary | None = None
    push: PushSummary | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    warnings: list[BuildWarning] = Field(default_factory=list)


class ShipPlan(BaseModel):
    """What ``ship()`` would do; computed with a local build and read-only registry and
    runtime look-ups, changing nothing remote."""

    model_config = ConfigDict(defer_build=True)

    target: str
    name: str
    image: str
    digest: str | None
    changed: bool
    actions: list[str]
    warnings: list[BuildWarning] = Field(default_factory=list)
    build: BuildSummary | None = None
