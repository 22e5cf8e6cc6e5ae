"""What ``ship()`` and ``plan()`` return."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BuildSummary(BaseModel):
    image_id: str
    steps: int
    cache_hits: int


class PushSummary(BaseModel):
    skipped: bool
    layers_pushed: int = 0
    layers_existing: int = 0
    bytes_pushed: int = 0


class Shipment(BaseModel):
    """One source shipped to one target.

    ``image`` is the digest-pinned reference the runtime pulled; ``changed`` is False when
    nothing had to move (no push, no new revision).
    """

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


class ShipPlan(BaseModel):
    """What ``ship()`` would do; computed with a local build and read-only registry and
    runtime look-ups, changing nothing remote."""

    target: str
    name: str
    image: str
    digest: str | None
    changed: bool
    actions: list[str]
